"""``tunesmith evaluate``: load two sets of music, compute every metric, compare them, write a report.

Library use::

    from tunesmith.evaluation.report import evaluate, load_set
    gen, _ = load_set("runs/essen_lstm")          # a run directory means its samples/
    ref, _ = load_set("essen-erk:val")            # the held-out Erk songs, as the LSTM saw them
    metrics = evaluate(gen, ref, out_dir="report")

The pieces:

* :mod:`tunesmith.evaluation.sets` -- what GENERATED and ``--reference`` name (folders, run directories,
  files, ``essen-erk:val``, ``nsynth-small:val``) and loading them;
* this module -- the symbolic metrics (:func:`evaluate`) and the command (:func:`evaluate_command`);
* :mod:`tunesmith.evaluation.symbolic_report` -- the MIDI report (table, Markdown, HTML, plots);
* :mod:`tunesmith.evaluation.audio_report` -- WAV sets: the seed's audio metrics plus pitch accuracy,
  family accuracy, per-family MFCC Frechet distances and reconstruction distances.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..data.notes import Score
from ..errors import TunesmithError
from . import features as F
from .compare import DEFAULT_MAX_PAIRS, compare_sets
from .sets import _subsample, load_set, resolve  # noqa: F401  (load_set, resolve: the library entry points)
from .symbolic_report import _fmt, _set_line, summary_table, voice_leading_rows, write_report


def _num(x):
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return [_num(v) for v in x.tolist()] if x.ndim == 1 else [_num(r) for r in x]
    if isinstance(x, dict):
        return {k: _num(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_num(v) for v in x]
    return x


def _avg_matrix(counts: np.ndarray) -> np.ndarray:
    """Seed 000's average transition matrix (sum of per-piece counts / pieces), normalised to sum 1."""
    m = counts.mean(0)
    return m / m.sum() if m.sum() > 0 else m


def evaluate(gen_scores: list[Score], ref_scores: list[Score], out_dir: str | Path | None = None, *,
             key: tuple[int, str] | None = None, length_classes: str = "mgeval",
             max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = 0, gen_info: dict | None = None,
             ref_info: dict | None = None, plots: bool = True) -> dict:
    """Every metric for two sets of pieces, the mgeval comparison, and (with ``out_dir``) the report.

    Pieces without pitched notes are counted and left out. Returns the contents of ``metrics.json``."""
    t0 = time.perf_counter()
    counts = {}
    sets = []
    for name, scores in (("generated", gen_scores), ("reference", ref_scores)):
        kept = [s for s in scores if len(s.pitched())]
        counts[name] = {"pieces": len(kept), "empty_pieces": len(scores) - len(kept)}
        if not kept:
            raise TunesmithError(f"the {name} set has no piece with pitched notes ({len(scores)} given)")
        sets.append(kept)
    bg, br = F.NoteBatch.from_scores(sets[0]), F.NoteBatch.from_scores(sets[1])
    fg = F.extract_features(bg, key, length_classes)
    fr = F.extract_features(br, key, length_classes)
    names = list(F.SCALAR_FEATURES) + list(F.VECTOR_FEATURES)
    comps = compare_sets(fg, fr, names, groups=(F.group_arrays(bg), F.group_arrays(br)),
                         max_pairs=max_pairs, seed=seed)
    t_metrics = time.perf_counter() - t0

    descriptions = {**F.SCALAR_FEATURES, **F.VECTOR_FEATURES,
                    "grouped_pitch_manhattan": "seed 000's grouped-pitch Manhattan distance between pieces"}
    summary = {}
    for name, c in comps.items():
        row = {"description": descriptions[name]}
        if name in F.SCALAR_FEATURES:
            for label, f in (("generated", fg), ("reference", fr)):
                v = f[name][np.isfinite(f[name])]
                row[f"{label}_mean"] = float(v.mean()) if len(v) else float("nan")
                row[f"{label}_std"] = float(v.std()) if len(v) else float("nan")
        row.update(c.stats)
        summary[name] = row

    lab = F.NOTE_LENGTH_LABELS if length_classes == "mgeval" else [str(i) for i in range(F.SEED_LENGTH_CLASSES)]
    pctm_g, pctm_r = _avg_matrix(fg["pitch_class_transition_counts"]), _avg_matrix(fr["pitch_class_transition_counts"])
    nltm_g, nltm_r = _avg_matrix(fg["note_length_transition_counts"]), _avg_matrix(fr["note_length_transition_counts"])
    pitches_g, pitches_r = bg.pitch.astype(float), br.pitch.astype(float)
    hist = lambda x: (lambda s: x / s if s > 0 else x)(x.sum())  # noqa: E731
    pm = summary["grouped_pitch_manhattan"]
    main_rows = [r for n, r in summary.items() if n not in F.ALTERNATIVE_FEATURES]  # each concept once
    oas = [r["overlap_ref_intra_vs_inter"] for r in main_rows]
    kls = [r["kl_ref_intra_vs_inter"] for r in main_rows]
    metrics = {
        "generated": {**(gen_info or {}), **counts["generated"]},
        "reference": {**(ref_info or {}), **counts["reference"]},
        "headline": {
            "mean_overlap_area": float(np.nanmean(oas)), "mean_kl": float(np.nanmean(kls)),
            "note": "means over all features of the overlap area / KL divergence between the reference set's "
                    "intra-set distances and the generated-vs-reference distances (1 and 0 are best)",
        },
        "features": summary,
        "set_level": {
            "pitch_mean": {"generated": float(pitches_g.mean()), "reference": float(pitches_r.mean())},
            "pitch_std": {"generated": float(pitches_g.std()), "reference": float(pitches_r.std())},
            "grouped_pitch_manhattan": {"generated_vs_reference": pm["mean_inter"],
                                        "reference_vs_reference": pm["mean_intra_ref"],
                                        "generated_vs_generated": pm["mean_intra_gen"]},
            "pitch_class_transition_matrix": {"generated": pctm_g, "reference": pctm_r,
                                              "l1_difference": float(np.abs(pctm_g - pctm_r).sum())},
            "note_length_transition_matrix": {"classes": lab, "generated": nltm_g, "reference": nltm_r,
                                              "l1_difference": float(np.abs(nltm_g - nltm_r).sum())},
            "pitch_class_histogram": {"generated": hist(fg["pitch_class_histogram"].mean(0)),
                                      "reference": hist(fr["pitch_class_histogram"].mean(0))},
            "note_length_histogram": {"classes": lab, "generated": hist(fg["note_length_histogram"].mean(0)),
                                      "reference": hist(fr["note_length_histogram"].mean(0))},
            "pitch_histogram": {"generated": hist(fg["pitch_histogram"].sum(0)),
                                "reference": hist(fr["pitch_histogram"].sum(0))},
        },
        "settings": {"key": "detected per piece (Krumhansl-Schmuckler)" if key is None else list(key),
                     "note_length_classes": length_classes, "max_pairs": max_pairs, "seed": seed},
        "seconds": {"metrics": t_metrics},
    }
    from . import voice_leading as VL

    if VL.is_multivoice(sets[0]) and VL.is_multivoice(sets[1]):  # chorales: the voice-leading table
        metrics["voice_leading"] = VL.compare(sets[0], sets[1])
    if out_dir is not None:
        t1 = time.perf_counter()
        write_report(metrics, comps, fg, fr, Path(out_dir), plots=plots)
        metrics["seconds"]["report"] = time.perf_counter() - t1
        _write_json(metrics, Path(out_dir) / "metrics.json")
    return _num(metrics)


def _write_json(metrics: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_num(metrics), indent=1))
    tmp.replace(path)


# ------------------------------------------------------------------ CLI entry
def evaluate_command(generated: str, reference: str, out: str | Path = "report", max_pieces: int | None = None) -> dict:
    """``tunesmith evaluate GENERATED --reference REF --out DIR``: prints the summary table and the paths."""
    from ..sampling.checks import check_out_folder

    out = check_out_folder(out)  # a file or an unwritable place fails before any work
    kg, wg = resolve(generated)
    kr, wr = resolve(reference)
    if (kg == "audio") != (kr == "audio"):
        raise TunesmithError("one set is audio (WAV) and the other symbolic (MIDI/dataset): compare like with like")
    if kg == "audio":
        from .audio_report import evaluate_audio_sets

        metrics = evaluate_audio_sets(_subsample(wg, max_pieces), _subsample(wr, max_pieces), out,
                                      reference_spec=str(reference))
    else:
        gen, gi = load_set(generated, max_pieces, "generated")
        ref, ri = load_set(reference, max_pieces, "reference")
        metrics = evaluate(gen, ref, out, gen_info=gi, ref_info=ri)
        print(f"generated: {_set_line(metrics['generated'])}")
        print(f"reference: {_set_line(metrics['reference'])}")
        print()
        print(summary_table(metrics))
        h = metrics["headline"]
        print(f"\nmean overlap area {_fmt(h['mean_overlap_area'])} (1 is best), mean KL {_fmt(h['mean_kl'])} (0 is best)")
        for r in voice_leading_rows(metrics):
            print(f"voice leading: {r[0]:<26} generated {r[1]:>7}  reference {r[2]:>7}")
    for name in ("metrics.json", "report.md", "report.html"):
        print(f"wrote {out / name}")
    return metrics
