"""Issue 16, item 3: does a metre-conditioned model write in the metre it is asked for?

1. Fits the metre classifier (tunesmith.evaluation.metre) on the training songs of the time-step split of
   essen-erk and reports its accuracy on the held-out songs (the same split the models were trained on).
2. Samples ``--num`` melodies per requested metre from RUN with ``condition="metre=M"`` (the config's
   [sample] temperature and steps unless given, empty primer, seed ``--seed``) and reports the share the
   classifier labels with the requested metre.

    python scripts/metre_conditioning.py RUN [--metres 3/4,4/4,6/8] [--num 50] [--seed 0] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> dict:
    from tunesmith.data.timestep import prepared_songs
    from tunesmith.evaluation.metre import evaluate, fit
    from tunesmith.sampling.generate import generate
    from tunesmith.training.checkpoint import load_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--metres", default="3/4,4/4,6/8")
    ap.add_argument("--num", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)

    t0 = time.time()
    train, val = prepared_songs("essen-erk", verbose=False)
    clf = fit(train)
    held = evaluate(clf, val)
    print(f"classifier: metres {clf.labels}; held-out accuracy {held['accuracy']:.3f} on {held['songs']} songs "
          f"({held['left_out']} in rarer metres left out); per metre "
          + ", ".join(f"{k} {v:.2f}" for k, v in held["per_metre"].items()), file=sys.stderr)

    model, codec, cfg, _ = load_run(a.run, "cpu")
    temperature = a.temperature if a.temperature is not None else cfg.sample.get("temperature", 1.0)
    steps = a.steps if a.steps is not None else cfg.sample.get("steps", 500)
    res = {}
    for k, m in enumerate(a.metres.split(",")):
        mels = generate(model, codec, a.num, seed=a.seed + k, condition=f"metre={m}", temperature=temperature,
                        steps=steps)
        mels = [x for x in mels if len(x)]
        pred = clf.predict(mels) if mels else []
        counts = {lab: pred.count(lab) for lab in clf.labels}
        res[m] = {"samples": a.num, "nonempty": len(mels), "labelled_as_requested": counts.get(m, 0) / a.num,
                  "predicted": counts}
        print(f"metre={m}: {counts.get(m, 0)}/{a.num} samples labelled {m} ({counts.get(m, 0) / a.num:.0%}); "
              f"predicted {counts}", file=sys.stderr)
    total = sum(r["predicted"].get(m, 0) for m, r in res.items()) / (a.num * len(res))
    out = {"run": str(a.run), "classifier": {"labels": clf.labels, "train_songs": len(train), "held_out": held},
           "sampling": {"num": a.num, "seed": a.seed, "temperature": temperature, "steps": steps, "primer": ""},
           "by_metre": res, "share_as_requested": total, "seconds": round(time.time() - t0, 1)}
    print(f"share labelled with the requested metre: {total:.3f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1))
        print(f"wrote {a.out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
