"""The audio half of ``tunesmith evaluate``: two sets of WAV files -> ``metrics.json``, ``report.md``,
``report.html`` and a printed summary.

Always: the seed's audio metrics (:func:`tunesmith.evaluation.audio_metrics.evaluate_audio`: pitch
statistics, MFCC KL and Frechet distance). Then, where the files say what they were asked to be
(``samples.json`` or NSynth-style names, see :mod:`tunesmith.data.nsynth`), "is it that note on that
instrument":

* pitch accuracy (:func:`~tunesmith.evaluation.audio_metrics.pitch_accuracy`), for files with a requested pitch;
* family accuracy by the reference dataset's classifier (:mod:`tunesmith.evaluation.audio_family`), its
  own held-out accuracy beside it, and per-family MFCC Frechet distances against the baseline of real notes
  of the wrong family, when the reference is a dataset split by instrument (``nsynth-small:val``);
* the multi-resolution STFT distance of reconstructions, for generated files named like a reference file,
  next to the reference's own 8-bit mu-law round trip.
"""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np

from ..errors import TunesmithError

EXPLAIN = {
    "pitch": "Share of generated notes whose median pYIN f0 over voiced frames lies within 50 cents of the "
             "pitch they were asked to be (a note with no voiced frame counts as a miss).",
    "family": "Share of generated notes that a classifier trained on the reference dataset's training notes "
              "assigns to the family they were asked to be. The classifier's own accuracy on real notes of "
              "held-out instruments is the ceiling to read it against.",
    "frechet": "MFCC Frechet distance of the generated notes of each family to the real held-out notes of "
               "that family, next to the distance of real held-out notes of the other families (wrong: the "
               "baseline to beat) and of the family's training instruments (right).",
    "recon": "Multi-resolution STFT distance (spectral convergence + log-magnitude L1, 3 resolutions) of "
             "each generated file to the reference note of the same name, next to that note's own 8-bit "
             "mu-law round trip.",
}

SECTIONS = (("pitch", "pitch"), ("family", "family"), ("frechet", "family_frechet"), ("recon", "reconstruction"))


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _dataset_reference(reference_spec: str | None) -> tuple[str | None, str]:
    """(dataset usable for family accuracy, split) of a ``--reference`` spec, or (None, "")."""
    if not reference_spec:
        return None, ""
    from ..data.nsynth import find_dataset, has_fixed_split, load_nsynth, parse_name

    base, part = parse_name(reference_spec)
    try:
        folder, layout = find_dataset(base)
        if layout != "nsynth" or not has_fixed_split(load_nsynth(folder)):
            return None, ""
    except TunesmithError:
        return None, ""
    return base, {"train": "train", "test": "test"}.get(part, "valid")


def conditional_metrics(gen: list[Path], ref: list[Path], reference_spec: str | None = None) -> dict:
    """Pitch accuracy, family accuracy (+ classifier accuracy), per-family Frechet vs the wrong-family
    baseline and reconstruction distances, each only where it applies (see the module docstring)."""
    from ..data.nsynth import read_sample_labels, requested_labels

    labels = {}
    for p in gen:
        if p.parent not in labels:
            labels[p.parent] = read_sample_labels(p.parent)
    req = [requested_labels(p, labels[p.parent]) for p in gen]
    out: dict = {}
    if any(r[0] is not None for r in req):
        from .audio_metrics import pitch_accuracy

        out["pitch"] = pitch_accuracy(gen)
    dataset, split = _dataset_reference(reference_spec)
    if any(r[1] is not None for r in req):
        if dataset is None:
            out["family_note"] = ("family accuracy needs a reference dataset split by instrument "
                                  "(e.g. --reference nsynth-small:val)")
        else:
            from .audio_family import family_accuracy, family_frechet

            out["family"] = family_accuracy(gen, dataset)
            out["family_frechet"] = family_frechet(gen, dataset, split if split != "train" else "valid")
    refs = {p.stem for p in ref}
    if any(p.stem in refs for p in gen):
        from .audio_metrics import paired_mrstft

        out["reconstruction"] = paired_mrstft(gen, ref)
    return out


def summary_rows(cond: dict) -> list[tuple[str, str, str]]:
    """(measure, value, what it says) rows of the conditional metrics."""
    rows = []
    if "pitch" in cond:
        p = cond["pitch"]
        hits = sum(1 for v in p["per_file"].values() if v["hit"])
        rows.append(("pitch accuracy", _fmt(p["pitch_accuracy"]),
                     f"{hits}/{p['n_pitch_labelled']} notes within 50 cents of the requested pitch; median "
                     f"error {_fmt(p['median_abs_cents'])} cents"))
    if "family" in cond:
        f = cond["family"]
        hits = sum(1 for v in f["per_file"].values() if v["hit"])
        pred = ", ".join(f"{k} {v}" for k, v in sorted(f["predicted"].items(), key=lambda kv: -kv[1]))
        rows.append(("family accuracy", _fmt(f["family_accuracy"]),
                     f"{hits}/{f['n_family_labelled']} classified as the requested family (predicted: {pred})"))
        asked = sorted({v["requested"] for v in f["per_file"].values() if v["requested"]})
        rec = f.get("classifier_val_recall", {})
        per = "; per requested family: " + ", ".join(f"{k} {_fmt(rec[k])}" for k in asked if k in rec) if asked and rec else ""
        rows.append(("family classifier held-out accuracy", _fmt(f["classifier_val_accuracy"]),
                     f"on real notes of instruments it never heard ({f['classifier_dataset']} valid split){per}"))
    if "family_frechet" in cond:
        ff = cond["family_frechet"]
        for fam, v in ff["per_family"].items():
            rows.append((f"MFCC Frechet, {fam}", _fmt(v["generated"]),
                         f"{v['n']} generated notes vs real {fam} notes; as many real notes of the wrong family "
                         f"{_fmt(v['wrong'])} (closest family {_fmt(v.get('wrong_min'))}), of other {fam} "
                         f"instruments {_fmt(v['right'])}: "
                         + ("below the wrong-family baseline" if v["beats_wrong"] else "not below the wrong-family baseline")))
    if "note" in cond:
        rows.append(("conditional metrics", "n/a", cond["note"]))
    if "family_note" in cond:
        rows.append(("family accuracy", "n/a", cond["family_note"]))
    if "reconstruction" in cond:
        r = cond["reconstruction"]
        rows.append(("multi-resolution STFT distance", _fmt(r["mrstft"]),
                     f"{r['n_pairs']} reconstructions vs the reference notes of the same name; 8-bit mu-law "
                     f"round trip of the same notes {_fmt(r.get('mrstft_mulaw8'))} (lower is better)"))
    return rows


def evaluate_audio_sets(gen: list[Path], ref: list[Path], out: Path, reference_spec: str | None = None) -> dict:
    """Every audio metric of two WAV sets; writes metrics.json, report.md, report.html (+ plots) to ``out``
    and prints the summary."""
    from .report import _write_json

    try:
        from .audio_metrics import evaluate_audio
    except ImportError as e:
        raise TunesmithError(f"audio evaluation is not available (tunesmith.evaluation.audio_metrics: {e}); "
                             "evaluate MIDI files instead") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = evaluate_audio([str(p) for p in gen], [str(p) for p in ref], str(out))
    metrics = {"kind": "audio", "generated": {"files": len(gen)},
               "reference": {"files": len(ref), **({"spec": reference_spec} if reference_spec else {})},
               "audio": {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in numbers.items()}}
    try:
        cond = conditional_metrics([Path(p) for p in gen], [Path(p) for p in ref], reference_spec)
    except ImportError as e:  # a stripped-down audio_metrics (tests replace it): the seed's metrics only
        cond = {"note": f"conditional metrics unavailable ({e})"}
    if cond:
        metrics["conditional"] = cond
    _write_json(metrics, out / "metrics.json")
    rows = [(k, _fmt(v)) for k, v in metrics["audio"].items()]
    crow = summary_rows(cond)
    pngs = sorted(p.name for p in out.glob("*.png"))
    intro = f"{len(gen)} generated vs {len(ref)} reference WAV files" + (f" ({reference_spec})." if reference_spec else ".")
    md = ["# tunesmith audio evaluation report", "", intro, ""]
    if crow:
        md += ["## Is it the requested note on the requested instrument?", ""]
        md += [f"- {EXPLAIN[k]}" for k, c in SECTIONS if c in cond]
        md += ["", "| measure | value | what it says |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in crow]
        md += ["", "## The seed's audio metrics", ""]
    md += ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    md += [f"\n![{p}]({p})" for p in pngs] + ["", "Every number (and each file's) is in `metrics.json`."]
    (out / "report.md").write_text("\n".join(md) + "\n")
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tunesmith audio evaluation</title>"
             "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px}"
             "td.n{text-align:right;font-variant-numeric:tabular-nums}</style></head><body>",
             "<h1>tunesmith audio evaluation report</h1>", f"<p>{esc(intro)}</p>"]
    if crow:
        parts += ["<h2>Is it the requested note on the requested instrument?</h2><ul>"]
        parts += [f"<li>{esc(EXPLAIN[k])}</li>" for k, c in SECTIONS if c in cond]
        parts += ["</ul><table><tr><th>measure</th><th>value</th><th>what it says</th></tr>"]
        parts += [f"<tr><td>{esc(a)}</td><td class='n'>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in crow]
        parts += ["</table><h2>The seed's audio metrics</h2>"]
    parts += ["<table><tr><th>metric</th><th>value</th></tr>"]
    parts += [f"<tr><td>{esc(k)}</td><td class='n'>{esc(v)}</td></tr>" for k, v in rows] + ["</table>"]
    for p in pngs:
        parts.append(f"<h2>{esc(p)}</h2><img style='max-width:100%' "
                     f"src='data:image/png;base64,{base64.b64encode((out / p).read_bytes()).decode()}'>")
    (out / "report.html").write_text("\n".join(parts + ["</body></html>"]))
    for a, b, c in crow:
        print(f"{a:36s} {b:>8}  {c}")
    if crow:
        print()
    print("\n".join(f"{k:36s} {v}" for k, v in rows))
    return metrics
