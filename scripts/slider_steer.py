"""What attribute steering (``model.slider_steer``) does to an attribute-conditioned melody VAE's sliders
(docs/autoencoders.md, "Steering the slider positions"): for each weight w,

* Spearman(slider value, attribute) over -3..3 in 13 steps from the sliders' centre, and its mean over 8 codes
  drawn at 0.5 sigma around the centre (``tunesmith.zoo.measure.attribute_spearman``, the card's figures),
* the mean overlap with the held-out phrases of the phrases of slider sweeps (7 values, every attribute) from
  16 other such codes (seed 1): how much like the songs the steered positions stay,
* the CPU time of one slider position (median of 20, one thread).

    OMP_NUM_THREADS=1 python scripts/slider_steer.py zoo:melody-vae-4bar [--weights 0 1 2 3] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith.models.melody_vae import ATTRIBUTES  # noqa: E402
from tunesmith.training.checkpoint import load_run  # noqa: E402
from tunesmith.zoo import resolve_run  # noqa: E402
from tunesmith.zoo.measure import _overlap, attribute_spearman, heldout_phrases  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 2.5, 3.0])
    ap.add_argument("--dataset", default="essen-erk")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, codec, _, _ = load_run(resolve_run(a.run))
    model.eval()
    if not model.attr_condition:
        raise SystemExit(f"{a.run} is not attribute-conditioned (model.attr_condition): nothing to steer")
    ref, _ = heldout_phrases(codec, a.dataset)
    bases = torch.randn(16, model.latent_dim, generator=torch.Generator().manual_seed(1)) * 0.5 + model.latent_mean
    sweep = torch.cat([model.move_attribute(b[None], j, np.linspace(-3, 3, 7)) for b in bases
                       for j in range(len(ATTRIBUTES))])
    rows = []
    for w in a.weights:
        model.slider_steer = w
        sp = attribute_spearman(model, codec)
        with torch.inference_mode():
            scores = [codec.decode(r) for r in model.decode(sweep).numpy()]
            one = model.slider_z(None)
            ts = []
            for _ in range(20):
                t = time.process_time()
                model.decode(one)
                ts.append(time.process_time() - t)
        row = {"steer": w, "centre": {k: v["centre"] for k, v in sp.items()},
               "off_centre": {k: v["mean_over_bases"] for k, v in sp.items()},
               "sweep_mean_overlap": _overlap(scores, ref), "ms_per_position": round(1000 * float(np.median(ts)), 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| steer | centre: " + " / ".join(ATTRIBUTES) + " | off centre (mean of 8) | sweep mean overlap | ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        f = lambda d: " / ".join(f"{d[k]:.2f}" for k in ATTRIBUTES)  # noqa: E731
        print(f"| {r['steer']:g} | {f(r['centre'])} | {f(r['off_centre'])} | {r['sweep_mean_overlap']:.3f} | "
              f"{r['ms_per_position']} |")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
