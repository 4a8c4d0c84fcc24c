"""Issue 16, item 3: does a conditioned model write what it is asked for?

1. Fits the classifiers on the training songs of the time-step split of essen-erk and reports their accuracy on
   the held-out songs (the split the models were trained on): the metre classifier as fitted on whole songs
   ("end": it may lean on the song ending on a bar line) and with two random crops per song ("robust": the
   certifying one, since a sample need not end on a bar line), and the mode classifier.
2. For each guidance scale and each requested label (``metre=3/4`` ..., ``mode=minor`` ...; the other kinds
   null), samples ``--num`` melodies from RUN (empty primer, the config's temperature and steps unless given,
   seed ``--seed`` + the label's number) and reports the share the classifier labels with the requested value,
   the confusion, and the share by bar family (duple 2/4+4/4, triple 3/4, compound 3/8+6/8), which is what a
   melody without bar lines can show at all.

A melody VAE run (``melody_vae`` trained with ``data.condition``; docs/conditioning.md "Melody VAE") samples 4-bar
phrases from the prior with ``--condition`` (and ``--guidance``; no steps), and the classifiers' accuracy on the real
held-out phrases of its split (labelled with their song's labels) is reported as the ceiling they allow.

    python scripts/conditioning_eval.py RUN [--metres 3/4,4/4,6/8] [--modes major,minor] [--guidance 1,2 | "metre=1.5,mode=5;1"]
        [--num 50] [--seed 0] [--temperature T] [--steps N] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

FAMILY = {"2/4": "duple", "4/4": "duple", "3/4": "triple", "3/8": "compound", "6/8": "compound"}


def main(argv=None) -> dict:
    from tunesmith.data.timestep import prepared_songs
    from tunesmith.evaluation import metre, mode
    from tunesmith.sampling.generate import generate
    from tunesmith.training.checkpoint import load_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--metres", default="3/4,4/4,6/8")
    ap.add_argument("--modes", default="major,minor")
    ap.add_argument("--guidance", default="1")
    ap.add_argument("--num", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--pairs", action="store_true", help="ask for metre and mode together (every pair)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    train, val = prepared_songs("essen-erk", verbose=False)
    clfs = {"metre_end": metre.fit(train), "metre": metre.fit(train, crops=2), "mode": mode.fit(train)}
    held = {k: (mode.evaluate(c, val) if k == "mode" else metre.evaluate(c, val)) for k, c in clfs.items()}
    for k, h in held.items():
        print(f"classifier {k}: held-out accuracy {h['accuracy']:.3f} on {h['songs']} songs", file=sys.stderr)

    model, codec, cfg, _ = load_run(a.run, "cpu")
    kinds = list(codec.label_groups)
    phrases = hasattr(model, "phrase_len")   # a melody VAE: fixed-length phrases from the prior
    ceiling = phrase_ceiling(cfg, clfs) if phrases else None
    temperature = a.temperature if a.temperature is not None else cfg.sample.get("temperature", 1.0)
    steps = a.steps if a.steps is not None else cfg.sample.get("steps", 500)
    requests = ([("metre", m) for m in a.metres.split(",") if m] if "metre" in kinds else []) + \
               ([("mode", m) for m in a.modes.split(",") if m] if "mode" in kinds else [])
    if a.pairs:
        requests = [(("metre", "mode"), (m, x)) for m in a.metres.split(",") for x in a.modes.split(",")]
    res = {}
    # guidance scales: "1,2,3", or per kind (a melody VAE) separated by ";": "metre=1.5,mode=5;1"
    scales = a.guidance.split(";") if "=" in a.guidance else a.guidance.split(",")
    for w in [x.strip() if "=" in x else float(x) for x in scales if x.strip()]:
        rows = {}
        for k, (kind, value) in enumerate(requests):
            t1 = time.time()
            pairs = list(zip(kind, value)) if isinstance(kind, tuple) else [(kind, value)]
            condition = ",".join(f"{x}={v}" for x, v in pairs)
            opts = {"guidance": w, "steps": steps} if not phrases else ({"guidance": w} if w != 1 else {})
            if isinstance(w, str) and not phrases:
                raise SystemExit("error: per-kind guidance (metre=1.5,mode=5) is for a melody VAE run")
            mels = generate(model, codec, a.num, seed=a.seed + k, condition=condition, temperature=temperature,
                            **opts)
            mels = [x for x in mels if len(x)]
            asked = {"metre": None, "mode": None, **dict(pairs)}
            names = (["metre", "metre_end"] if asked["metre"] else []) + (["mode"] if asked["mode"] else [])
            row = {"samples": a.num, "nonempty": len(mels),
                   "mean_steps": sum(x.length for x in mels) * 4 / max(len(mels), 1)}
            if len(pairs) > 1:
                pm, pk = clfs["metre"].predict(mels), clfs["mode"].predict(mels)
                row["both_as_requested"] = sum(m == asked["metre"] and x == asked["mode"]
                                               for m, x in zip(pm, pk)) / a.num
            for n in names:
                value = asked["mode" if n == "mode" else "metre"]
                pred = clfs[n].predict(mels) if mels else []
                row[n] = {"as_requested": pred.count(value) / a.num,
                          "predicted": {lab: pred.count(lab) for lab in clfs[n].labels}}
                if n.startswith("metre"):
                    row[n]["family_as_requested"] = sum(FAMILY.get(p) == FAMILY.get(value) for p in pred) / a.num
            rows[condition] = row
            print(f"guidance {w if isinstance(w, str) else format(w, 'g')} {condition}: " + "; ".join(
                f"{n} {row[n]['as_requested']:.0%} {row[n]['predicted']}" for n in names)
                  + (f"; both {row['both_as_requested']:.0%}" if "both_as_requested" in row else "")
                  + f" ({time.time() - t1:.0f} s)", file=sys.stderr)
        summary = {}
        for n in ("metre", "metre_end", "mode"):
            rs = [r[n] for r in rows.values() if n in r]
            if n == "metre" and any("both_as_requested" in r for r in rows.values()):
                summary["both"] = sum(r["both_as_requested"] for r in rows.values()) / len(rows)
            if rs:
                summary[n] = sum(r["as_requested"] for r in rs) / len(rs)
                if n.startswith("metre"):
                    summary[n + "_family"] = sum(r["family_as_requested"] for r in rs) / len(rs)
        key = w if isinstance(w, str) else f"{w:g}"
        res[key] = {"by_label": rows, "share_as_requested": summary}
        print(f"guidance {key}: share labelled as requested " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    out = {"run": str(a.run), "classifiers": {k: {"labels": c.labels, "held_out": held[k]} for k, c in clfs.items()},
           "train_songs": len(train),
           "sampling": {"num": a.num, "seed": a.seed, "temperature": temperature, "steps": steps, "primer": ""},
           "by_guidance": res, "seconds": round(time.time() - t0, 1)}
    if ceiling is not None:
        out["held_out_phrases"] = ceiling
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1))
        print(f"wrote {a.out}", file=sys.stderr)
    return out


def phrase_ceiling(cfg, clfs) -> dict:
    """The classifiers' accuracy on the real held-out phrases of a melody VAE run's split, each labelled with its
    song's labels (the metre classifier only on phrases of the metres it knows)."""
    from tunesmith.data.base import build_data

    bundle = build_data(**cfg.data)
    val, codec = bundle.val, bundle.codec
    mels = [codec.decode(r) for r in val.phrases]
    truth = [[codec.vocab[int(i)][1:-1].split("=", 1)[1] for i in row] for row in val.labels]
    kinds = list(codec.label_groups)
    out = {"phrases": len(mels)}
    for n, c in clfs.items():
        kind = "mode" if n == "mode" else "metre"
        if kind not in kinds:
            continue
        j = kinds.index(kind)
        keep = [i for i, t in enumerate(truth) if t[j] in c.labels and len(mels[i])]
        pred = c.predict([mels[i] for i in keep])
        acc = sum(p == truth[i][j] for p, i in zip(pred, keep)) / max(len(keep), 1)
        out[n] = {"accuracy": round(acc, 4), "phrases": len(keep)}
        if kind == "metre":
            out[n]["family_accuracy"] = round(sum(FAMILY.get(p) == FAMILY.get(truth[i][j])
                                                  for p, i in zip(pred, keep)) / max(len(keep), 1), 4)
        print(f"classifier {n} on {len(keep)} held-out 64-step phrases: accuracy {acc:.3f}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
