"""What ``model.key_lock`` does to a melody VAE's new melodies (docs/autoencoders.md, "Keeping new melodies in
one key"): 200 prior samples (seed 0, the run's [sample] temperature) with and without the lock, their mean
overlap with the held-out phrases and their scale consistency (the largest share of a phrase's notes in one
major / natural minor scale, as ``tunesmith evaluate`` reports it), the share of symbols the lock changed, and,
for comparison, the scale consistency of the held-out phrases and of 100 samples of 64 steps of an LSTM.

    OMP_NUM_THREADS=1 python scripts/key_lock.py zoo:melody-vae-4bar [--lstm zoo:essen-lstm] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith.sampling.generate import generate  # noqa: E402
from tunesmith.training.checkpoint import load_run  # noqa: E402
from tunesmith.zoo import resolve_run  # noqa: E402
from tunesmith.zoo.measure import _overlap, _scale_consistency, heldout_phrases  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--lstm", default="zoo:essen-lstm")
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, codec, cfg, _ = load_run(resolve_run(a.run))
    ref, _ = heldout_phrases(codec, cfg.data.get("dataset", "essen-erk"))
    temp = cfg.sample.get("temperature")
    out = {"held_out_scale_consistency": _scale_consistency(ref)}
    ids = {}
    for lock in (False, True):
        model.key_lock = lock
        samples = generate(model, codec, a.num, seed=0, temperature=temp)
        name = "locked" if lock else "unlocked"
        out[name] = {"mean_overlap": _overlap(samples, ref), "scale_consistency": _scale_consistency(samples)}
        z = model.prior_codes(a.num, torch.Generator().manual_seed(0))
        ids[lock] = model.decode_ids(z, temp, torch.Generator().manual_seed(0), key_lock=lock)
    out["symbols_changed"] = round(float((ids[True] != ids[False]).float().mean()), 4)
    lstm, lcodec, lcfg, _ = load_run(resolve_run(a.lstm))
    out["lstm_scale_consistency"] = _scale_consistency(
        generate(lstm, lcodec, 100, seed=0, temperature=lcfg.sample.get("temperature", 0.9), steps=64))
    print(json.dumps(out, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
