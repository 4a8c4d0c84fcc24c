"""What attribute steering (``model.slider_steer`` w: logits ``(1 - w) l(z, a) + w l(0, a)``) does to an
attribute-conditioned melody VAE's sliders (docs/autoencoders.md, "Steering the slider positions"). For each w:

* ``centre``: Spearman(slider value, attribute) over -3..3 in 13 steps from the sliders' centre (the card's
  ``attribute_spearman``; steering leaves it as it is, z being 0 there),
* ``off_centre``: the same averaged over 8 codes drawn at 0.5 sigma around the centre, attributes included
  (``tunesmith.zoo.measure.attribute_spearman``),
* ``new_piece``: the same from 8 points the page's "New piece" draws (the 20 latent sliders ~ N(0, 1), the
  attributes at the centre; the card's ``attribute_spearman_new_piece``), with ``error``: the mean |decoded -
  asked| attribute, in the attribute's standard deviations,
* ``sweep_mean_overlap``: the mean overlap with the held-out phrases of those sweeps' phrases (every other
  position, 280 phrases): how much like the songs the steered positions stay,
* ``latent_change``: the share of symbols that change between neighbouring positions of latent sliders 1-3
  (-2..2 in 5 steps): how much the latent sliders still do; ``latent_change_density_1`` the same with the note
  density slider at +1,
* ``ms_per_position``: CPU time of one slider position (median of 20, one thread).

    OMP_NUM_THREADS=1 python scripts/slider_steer.py zoo:melody-vae-4bar [--weights 0 0.5 0.7 1] [--out FILE.json]
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

from tunesmith.models.melody_vae import ATTR_CENTRE, ATTR_SCALE, ATTRIBUTES  # noqa: E402
from tunesmith.training.checkpoint import load_run  # noqa: E402
from tunesmith.zoo import resolve_run  # noqa: E402
from tunesmith.zoo.measure import _overlap, attribute_spearman, heldout_phrases, new_piece_codes  # noqa: E402

VALUES = np.linspace(-3, 3, 13)


def new_piece_sweeps(model, codec, bases):
    """Mean |decoded - asked| (std units) per attribute over sweeps from ``bases``, and the phrases."""
    err, phrases = {a: [] for a in ATTRIBUTES}, []
    for base in bases:
        for j, name in enumerate(ATTRIBUTES):
            codes = model.move_attribute(base, j, VALUES)
            ids = model.decode(codes).numpy()
            phrases += [codec.decode(r) for r in ids[::2]]
            got = ((model.attributes(codec, ids) - ATTR_CENTRE) / ATTR_SCALE)[:, j]
            err[name].append(float(np.mean(np.abs(got - codes[:, model.z_dim + j].numpy()))))
    return {k: round(float(np.mean(v)), 3) for k, v in err.items()}, phrases


def latent_change(model, attributes=None) -> float:
    out = []
    for i in range(3):
        v = np.zeros((5, model.n_sliders))
        v[:, i] = np.linspace(-2, 2, 5)
        ids = model.decode(torch.cat([model.slider_z(x.tolist(), 1, attributes) for x in v])).numpy()
        out.append(np.mean(ids[1:] != ids[:-1]))
    return round(float(np.mean(out)), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    ap.add_argument("--dataset", default="essen-erk")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, codec, _, _ = load_run(resolve_run(a.run))
    model.eval()
    if not model.attr_condition:
        raise SystemExit(f"{a.run} is not attribute-conditioned (model.attr_condition): nothing to steer")
    ref, _ = heldout_phrases(codec, a.dataset)
    bases = new_piece_codes(model)[:, None]
    rows = []
    with torch.inference_mode():
        for w in a.weights:
            model.slider_steer = w
            sp = attribute_spearman(model, codec)
            err, phrases = new_piece_sweeps(model, codec, bases)
            one, ts = model.slider_z(None), []
            for _ in range(20):
                t = time.process_time()
                model.decode(one)
                ts.append(time.process_time() - t)
            row = {"steer": w, "centre": {k: v["centre"] for k, v in sp.items()},
                   "off_centre": {k: v["mean_over_bases"] for k, v in sp.items()},
                   "new_piece": {k: v["after_new_piece"] for k, v in sp.items()}, "error": err,
                   "sweep_mean_overlap": _overlap(phrases, ref), "latent_change": latent_change(model),
                   "latent_change_density_1": latent_change(model, {"note_density": 1.0}),
                   "ms_per_position": round(1000 * float(np.median(ts)), 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    f = lambda d, fmt="{:.2f}": " / ".join(fmt.format(d[k]) for k in ATTRIBUTES)  # noqa: E731
    print("\n| w | from the centre | around it (mean of 8) | after New piece (mean of 8) | error after New piece | "
          "sweep mean overlap | latent change (density +1) | ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['steer']:g} | {f(r['centre'])} | {f(r['off_centre'])} | {f(r['new_piece'])} | "
              f"{f(r['error'])} | {r['sweep_mean_overlap']:.3f} | {r['latent_change']:.3f} "
              f"({r['latent_change_density_1']:.3f}) | {r['ms_per_position']} |")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
