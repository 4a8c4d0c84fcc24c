"""Experiment (issue 16, item 3): classifier-free-style guidance for a metre-conditioned Transformer run.

At every step the logits with the label in context (l_c) and without it (l_u: the same song after the
delimiters alone) are combined as l_c + w (l_c - l_u) before temperature sampling; both contexts receive the
sampled symbol. Reports the share of samples the metre classifier labels with the requested metre.

    python scripts/metre_guidance.py RUN [--w 1,2] [--num 20] [--temperature 0.9]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


@torch.no_grad()
def sample_guided(model, codec, label: str, n: int, w: float, temperature: float, steps: int, gen) -> list:
    from tunesmith.models.melody_lstm import MelodyLSTM

    model.eval()
    lab = codec.index[label]
    cond = model._primed(n, [lab])
    unc = model._primed(n, [])
    lc, cc = model.logits(cond, return_cache=True)
    lu, cu = model.logits(unc, return_cache=True)
    lc, lu = lc[:, -1], lu[:, -1]
    out = torch.empty(n, steps, dtype=torch.long)
    for t in range(steps):
        g = lc.float() + w * (lc.float() - lu.float())
        g[:, [codec.index[x] for x in codec.labels]] = float("-inf")
        nxt = MelodyLSTM.pick(g, temperature, None, gen)
        out[:, t] = nxt
        new = []
        for cache in (cc, cu):
            x = model.embed(nxt)[:, None]
            for i, b in enumerate(model.blocks):
                x, cache[i] = b.step(x, cache[i])
            new.append(model.head(model.ln(x))[:, 0])
        lc, lu = new
    ids = MelodyLSTM._melodies(model, [lab], out)
    return [codec.decode(r) for r in ids]


def main(argv=None):
    from tunesmith.data.timestep import prepared_songs
    from tunesmith.evaluation.metre import fit
    from tunesmith.training.checkpoint import load_run

    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--w", default="1,2")
    ap.add_argument("--num", type=int, default=20)
    ap.add_argument("--temperature", type=float, default=0.9)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--metres", default="3/4,4/4,6/8")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    train, _ = prepared_songs("essen-erk", verbose=False)
    clf = fit(train)
    model, codec, _, _ = load_run(a.run, "cpu")
    for w in [float(x) for x in a.w.split(",")]:
        hits = 0
        for k, m in enumerate(a.metres.split(",")):
            gen = torch.Generator().manual_seed(k)
            mels = [x for x in sample_guided(model, codec, f"<metre={m}>", a.num, w, a.temperature, a.steps, gen)]
            p = clf.predict(mels)
            hits += p.count(m)
            print(f"w={w:g} metre={m}: {p.count(m)}/{a.num} {dict((l, p.count(l)) for l in clf.labels)}")
        print(f"w={w:g}: share labelled as requested {hits / (a.num * len(a.metres.split(','))):.3f}")


if __name__ == "__main__":
    main()
