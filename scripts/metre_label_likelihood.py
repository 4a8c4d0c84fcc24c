"""Does a metre-conditioned model use its label? For each held-out song of the common metres, the label under which
the model finds the song most likely (each song scored from its start, the label itself not scored):

    python scripts/metre_label_likelihood.py RUN [--metres 2/4,3/4,4/4,6/8]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv=None) -> dict:
    from tunesmith.evaluation.score import load_pieces, model_scorer
    from tunesmith.training.checkpoint import load_run

    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--metres", default="2/4,3/4,4/4,6/8")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, codec, cfg, _ = load_run(a.run, "cpu")
    sc = model_scorer(model, codec, cfg, a.run)
    labels = [f"<metre={m}>" for m in a.metres.split(",")]
    d = codec.index["/"]
    hits, total = Counter(), Counter()
    for _, syms in load_pieces("essen-erk:val", sc.data_cfg):
        if syms[0] not in labels:
            continue
        given = sum(1 for s in syms if s.startswith("<"))   # the metre label (and a mode label after it)
        nll = {}
        for lab in labels:
            ids = [d] * sc.prefix + codec.encode([lab] + syms[1:]) + [d]
            lp = sc.log_probs(torch.tensor(ids))
            t = torch.tensor(ids[sc.prefix + given:])
            nll[lab] = -float(lp[sc.prefix + given - 1:-1].gather(1, t[:, None]).sum())
        total[syms[0]] += 1
        hits[syms[0]] += min(nll, key=nll.get) == syms[0]
    res = {lab[7:-1]: f"{hits[lab]}/{total[lab]}" for lab in labels}
    print(f"held-out songs whose own label makes them most likely: {res}; "
          f"all {sum(hits.values())}/{sum(total.values())} = {sum(hits.values()) / max(sum(total.values()), 1):.3f}")
    return res


if __name__ == "__main__":
    main()
