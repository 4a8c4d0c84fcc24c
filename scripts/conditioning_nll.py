"""What conditioning costs or gains in likelihood: `tunesmith score RUN essen-erk:val` of a conditioned model given
each held-out song's true labels (what `tunesmith score` does), given only some kinds, and given none (the null
labels: the model as an unconditioned one).

    python scripts/conditioning_nll.py RUN [--data essen-erk:val]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv=None) -> dict:
    from tunesmith.evaluation.score import model_scorer, score_with
    from tunesmith.training.checkpoint import load_run

    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data", default="essen-erk:val")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, codec, cfg, _ = load_run(a.run, "cpu")
    kinds = list(codec.label_groups)
    given = [kinds] + [[k] for k in kinds] + [[]] if len(kinds) > 1 else [kinds, []]
    out = {}
    for g in given:
        sc = model_scorer(model, codec, cfg, a.run)
        sc.data_cfg["condition"] = g or None          # the labels each song is given (none: the null labels)
        m = score_with(sc, a.data)["mean"]
        out["+".join(g) or "none"] = m
        print(f"given {'+'.join(g) or 'no labels'}: {m['nats_per_step']:.4f} nats/step, {m['bits_per_note']:.3f} "
              f"bits/note, accuracy {m['accuracy']:.4f}", flush=True)
    return out


if __name__ == "__main__":
    main()
