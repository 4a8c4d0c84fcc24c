"""``tunesmith evaluate``: load two sets of music, compute every metric, compare them, write a report.

Library use::

    from tunesmith.evaluation.report import evaluate, load_set
    gen, _ = load_set("runs/essen_lstm")          # a run directory means its samples/
    ref, _ = load_set("essen-erk:val")            # the held-out Erk songs, as the LSTM saw them
    metrics = evaluate(gen, ref, out_dir="report")

Set specifications (GENERATED and ``--reference``):

* a folder: every MIDI (and kern/ABC/MusicXML) file in it, recursively; a folder of WAV files is handed to
  ``tunesmith.evaluation.audio_metrics.evaluate_audio``;
* a run directory (it has ``checkpoint/``): its ``samples/`` folder;
* one music file;
* a built-in dataset. ``essen-erk`` (and every ``essen-*``) means all its songs after the melody LSTM's
  filtering and transposition to C major / A minor (train + validation), ``essen-erk:train`` and
  ``essen-erk:val`` the two halves of that split, ``NAME:raw`` the corpus as parsed (no filter, no
  transposition); other datasets (``bach-chorales``) are used as parsed.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from ..data.corpora import CORPORA, MIDI_EXT, MUSIC21_EXT, load_corpus, parse_file
from ..data.notes import Score
from ..errors import TunesmithError
from . import features as F
from .compare import DEFAULT_MAX_PAIRS, compare_sets

MAX_NOTES = 200_000  # a piece with more notes than this is skipped as "too large"
AUDIO_EXT = {".wav"}
SUFFIXES = ("train", "val", "raw")


# ------------------------------------------------------------------ loading
def _files(folder: Path, exts: set[str]) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in exts)


def _is_dataset(spec: str) -> bool:
    base, _, suffix = spec.partition(":")
    return base in CORPORA and (not suffix or suffix in SUFFIXES)


def _dataset(spec: str) -> tuple[list[Score], str]:
    base, _, suffix = spec.partition(":")
    if base == "bach-chorales" and suffix in ("train", "val"):  # the chorale models' split (316 / 35)
        from ..data.coconet_data import chorale_split

        train, val = chorale_split(base)
        return (train, f"{base} training chorales") if suffix == "train" else (val, f"{base} held-out chorales")
    if suffix == "raw" or (not suffix and not base.startswith("essen")):
        return load_corpus(base), f"built-in dataset {base} (as parsed)"
    from ..data.timestep import prepared_songs

    train, val = prepared_songs(base, verbose=False)
    if suffix == "train":
        return train, f"{base} training songs (filtered, transposed to C major / A minor)"
    if suffix == "val":
        return val, f"{base} held-out songs (filtered, transposed to C major / A minor)"
    return train + val, f"{base}, all songs (filtered, transposed to C major / A minor)"


def resolve(spec: str) -> tuple[str, object]:
    """What a set specification names: ("dataset", name) | ("files", [paths]) | ("audio", [paths])."""
    spec = str(spec)
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_dir() and (p / "checkpoint").is_dir():
            s = p / "samples"
            if not s.is_dir():
                raise TunesmithError(f"run directory {p} has no samples/ folder: run `tunesmith sample {p}` first")
            p = s
        if p.is_file():
            ext = p.suffix.lower()
            if ext in AUDIO_EXT:
                return "audio", [p]
            if ext in MIDI_EXT | MUSIC21_EXT:
                return "files", [p]
            raise TunesmithError(f"{p}: unsupported file type {ext!r} (use a MIDI file or a folder of them)")
        music = _files(p, MIDI_EXT | MUSIC21_EXT)
        if music:
            return "files", music
        wavs = _files(p, AUDIO_EXT)
        if wavs:
            return "audio", wavs
        raise TunesmithError(f"no MIDI (.mid .midi), kern/ABC/MusicXML or WAV files in folder {p}")
    if _is_dataset(spec):
        return "dataset", spec
    base, _, suffix = spec.partition(":")
    from ..data import builders

    if base in builders.BUILDABLE:  # an audio dataset tunesmith builds (nsynth-mini, nsynth-small): its WAV clips
        from ..data.nsynth import dataset_parts, reference_paths

        parts = dataset_parts(base)
        if suffix and suffix not in parts:
            raise TunesmithError(f"unknown dataset part {suffix!r} in {spec!r}: use {base}, "
                                 + ", ".join(f"{base}:{s}" for s in parts))
        parts = [suffix] if suffix else [s for s in parts if s != "valid"]
        return "audio", [p for part in parts for p in reference_paths(base, split=part)]
    if base in CORPORA:
        raise TunesmithError(f"unknown dataset part {suffix!r} in {spec!r}: use {base}, "
                             + ", ".join(f"{base}:{s}" for s in SUFFIXES))
    raise TunesmithError(f"{spec!r} is neither a folder, a music file nor a known dataset "
                         f"({', '.join(CORPORA)}; add :train, :val or :raw; audio: "
                         f"{', '.join(builders.BUILDABLE)})")


def _subsample(items: list, max_pieces: int | None, seed: int = 0) -> list:
    if max_pieces is None or len(items) <= max_pieces:
        return items
    if max_pieces < 1:
        raise TunesmithError(f"--max-pieces must be >= 1, got {max_pieces}")
    idx = np.sort(np.random.default_rng(seed).choice(len(items), max_pieces, replace=False))
    return [items[i] for i in idx]


def load_set(spec: str, max_pieces: int | None = None, role: str = "generated") -> tuple[list[Score], dict]:
    """Scores of a set and what happened while loading: unreadable files, pieces without pitched notes
    (empty, drum-only) and pieces that are too large are counted and left out. Raises TunesmithError
    when nothing usable is left."""
    kind, what = resolve(spec)
    if kind == "audio":
        raise TunesmithError(f"{spec} holds WAV files: audio sets are evaluated by evaluate_command "
                             "(both sets must be WAV)")
    skipped: dict[str, list[str]] = {}
    if kind == "dataset":
        scores, source = _dataset(what)
        files = len(scores)
    else:
        paths = _subsample(what, max_pieces)
        scores, files = [], len(paths)
        for f in paths:
            try:
                scores.extend(parse_file(f))
            except TunesmithError as e:
                skipped.setdefault("unreadable", []).append(str(e))
        source = f"{len(what)} file(s) in {spec}" if len(what) > 1 else str(what[0])
    scores = _subsample(scores, max_pieces)
    kept = []
    for s in scores:
        n = len(s.pitched())
        name = s.title or "?"
        if n == 0:
            reason = "drum-only" if len(s) else "no notes"
            skipped.setdefault(reason, []).append(name)
        elif n > MAX_NOTES:
            skipped.setdefault("too large", []).append(f"{name} ({n} notes > {MAX_NOTES})")
        else:
            kept.append(s)
    info = {"spec": str(spec), "source": source, "files": files, "pieces": len(kept),
            "skipped": {k: len(v) for k, v in skipped.items()},
            "skipped_examples": {k: v[:3] for k, v in skipped.items()}}
    if not kept:
        why = "; ".join(f"{len(v)} {k} (e.g. {v[0]})" for k, v in skipped.items()) or "no pieces"
        raise TunesmithError(f"no usable piece in the {role} set {spec}: {why}")
    if skipped:
        print(f"warning: {role} set {spec}: left out " +
              ", ".join(f"{len(v)} {k}" for k, v in skipped.items()), file=sys.stderr)
    return kept, info


# ------------------------------------------------------------------ evaluation
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


# ------------------------------------------------------------------ report
COLUMNS = [("generated_mean", "gen mean"), ("reference_mean", "ref mean"),
           ("overlap_ref_intra_vs_inter", "overlap"), ("kl_ref_intra_vs_inter", "KL"),
           ("overlap_gen_intra_vs_ref_intra", "diversity overlap")]

EXPLAIN = {
    "intro": "This report compares a set of generated pieces with a reference set, feature by feature, "
             "with every measure used by the project's seed reports (mgeval's features, seed 000's transition "
             "matrices and grouped-pitch Manhattan distance, seed 004 / MuseGAN's empty-bar rate, used pitch "
             "classes and in-scale ratio, seed 003's pitch entropy). See docs/evaluation.md for every definition.",
    "table": "For each feature, *gen mean* and *ref mean* are the average per-piece values. The last columns "
             "follow mgeval (Yang & Lerch 2020): for every pair of reference pieces we measure how far apart "
             "their feature values are (intra-set distances), and likewise for every (generated, reference) pair "
             "(inter-set distances). If the generated pieces were drawn from the same distribution as the "
             "reference, the two sets of distances would look alike. *overlap* is the area shared by their two "
             "smoothed densities (1 = identical, 0 = nothing in common) and *KL* the Kullback-Leibler "
             "divergence (0 = identical, larger = more different). *diversity overlap* compares the generated "
             "set's own intra-set distances with the reference's: low values with narrow generated distances "
             "mean the model repeats itself (mode collapse).",
    "kde": "Each panel shows, for one feature, the density of distances between two reference pieces (green), "
           "two generated pieces (orange) and a generated and a reference piece (dashed purple).",
    "pctm": "How often a note of one pitch class (row) is followed by one of another (column), averaged over "
            "pieces and normalised to sum to 1 (seed 000's figures 5.6-5.7). mgeval's definition: a note follows "
            "another when it starts within 50 ms of that one's end (so not across a rest; every pair in chords). The right panel shows where the "
            "generated music does this more (red) or less (blue) often than the reference.",
    "nltm": "The same for note lengths (whole, half, quarter, 8th, 16th, dotted (.), triplet (t)).",
    "hist": "Fraction of notes with each pitch, pitch class and note length, generated vs reference.",
    "boxes": "The spread of each feature over the pieces of each set (boxes: middle half of the pieces).",
    "voice_leading": "Both sets have several voices (tracks), so each voice is also measured as a voice: "
                     "track 0 is the highest (soprano). Means over pieces, except the parallels, which are "
                     "pooled over all pieces. Definitions: tunesmith/evaluation/voice_leading.py and "
                     "docs/chorales.md.",
}


def _md_inline(text: str) -> str:
    """The inline Markdown our texts use (``**strong**``, ``*em*``, ```code```) as HTML, everything else
    escaped: report.html showed the asterisks literally."""
    t = html.escape(text, quote=False)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", t)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def summary_rows(metrics: dict) -> list[list[str]]:
    rows = []
    for name, r in metrics["features"].items():
        rows.append([name] + [_fmt(r.get(k)) if k in r else "-" for k, _ in COLUMNS])
    return rows


def summary_table(metrics: dict) -> str:
    """The plain-text table printed by the CLI."""
    head = ["feature"] + [h for _, h in COLUMNS]
    rows = summary_rows(metrics)
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w[0]) if i == 0 else str(x).rjust(w[i]) for i, x in enumerate(r))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows])


def voice_leading_rows(metrics: dict) -> list[list[str]]:
    """(measure, generated, reference, description) rows of the voice-leading table; [] if not multi-voice."""
    return [[k, _fmt(r["generated"]), _fmt(r["reference"]), r["description"]]
            for k, r in metrics.get("voice_leading", {}).items()]


def _set_line(s: dict) -> str:
    skipped = ", ".join(f"{v} {k}" for k, v in s.get("skipped", {}).items())
    extra = f"; left out: {skipped}" if skipped else ""
    empty = f"; {s['empty_pieces']} piece(s) without notes left out" if s.get("empty_pieces") else ""
    return f"{s.get('source', 'given in code')}: {s['pieces']} pieces{extra}{empty}"


def write_report(metrics: dict, comps: dict, fg: dict, fr: dict, out: Path, plots: bool = True) -> dict:
    """metrics.json, report.md, report.html (images embedded) and the PNG plots, under ``out``."""
    from . import plots as P

    out.mkdir(parents=True, exist_ok=True)
    sl = metrics["set_level"]
    images: list[tuple[str, str, str]] = []  # (title, file, explanation)
    if plots:
        scal = list(F.SCALAR_FEATURES)
        P.transition_heatmaps(sl["pitch_class_transition_matrix"]["generated"],
                              sl["pitch_class_transition_matrix"]["reference"], P.PITCH_CLASS_NAMES,
                              "Average pitch-class transition matrix", out / "pitch_class_transitions.png",
                              "pitch class")
        images.append(("Pitch-class transitions", "pitch_class_transitions.png", EXPLAIN["pctm"]))
        P.transition_heatmaps(sl["note_length_transition_matrix"]["generated"],
                              sl["note_length_transition_matrix"]["reference"],
                              sl["note_length_transition_matrix"]["classes"], "Average note-length transition matrix",
                              out / "note_length_transitions.png", "note length")
        images.append(("Note-length transitions", "note_length_transitions.png", EXPLAIN["nltm"]))
        P.kde_grid(comps, {}, out / "kde.png")
        images.append(("Intra-set and inter-set distances", "kde.png", EXPLAIN["kde"]))
        ph_g, ph_r = np.asarray(sl["pitch_histogram"]["generated"]), np.asarray(sl["pitch_histogram"]["reference"])
        used = np.flatnonzero((ph_g + ph_r) > 0)
        lo, hi = (int(used.min()), int(used.max()) + 1) if len(used) else (0, 128)
        P.histogram_pair(ph_g[lo:hi], ph_r[lo:hi], None, "Pitch histogram", "MIDI pitch",
                         out / "pitch_histogram.png", x=np.arange(lo, hi))
        P.histogram_pair(np.asarray(sl["pitch_class_histogram"]["generated"]),
                         np.asarray(sl["pitch_class_histogram"]["reference"]), P.PITCH_CLASS_NAMES,
                         "Pitch-class histogram (duration-weighted)", "pitch class", out / "pitch_class_histogram.png")
        P.histogram_pair(np.asarray(sl["note_length_histogram"]["generated"]),
                         np.asarray(sl["note_length_histogram"]["reference"]), sl["note_length_histogram"]["classes"],
                         "Note-length histogram", "note length class", out / "note_length_histogram.png")
        images += [("Pitch histogram", "pitch_histogram.png", EXPLAIN["hist"]),
                   ("Pitch-class histogram", "pitch_class_histogram.png", ""),
                   ("Note-length histogram", "note_length_histogram.png", "")]
        P.feature_boxes(fg, fr, scal, out / "features.png")
        images.append(("Per-piece feature values", "features.png", EXPLAIN["boxes"]))

    h = metrics["headline"]
    pm = sl["grouped_pitch_manhattan"]
    facts = [
        ("Generated set", _set_line(metrics["generated"])),
        ("Reference set", _set_line(metrics["reference"])),
        ("Mean overlap area over all features", f"{_fmt(h['mean_overlap_area'])} (1 is best)"),
        ("Mean KL divergence over all features", f"{_fmt(h['mean_kl'])} (0 is best)"),
        ("Pitch mean / std (all notes), generated", f"{_fmt(sl['pitch_mean']['generated'])} / {_fmt(sl['pitch_std']['generated'])}"),
        ("Pitch mean / std (all notes), reference", f"{_fmt(sl['pitch_mean']['reference'])} / {_fmt(sl['pitch_std']['reference'])}"),
        ("Grouped-pitch Manhattan distance, generated vs reference (mean)", _fmt(pm["generated_vs_reference"])),
        ("Grouped-pitch Manhattan distance, reference vs reference (mean)", _fmt(pm["reference_vs_reference"])),
        ("Pitch-class transition matrix, L1 difference (0-2)", _fmt(sl["pitch_class_transition_matrix"]["l1_difference"])),
        ("Note-length transition matrix, L1 difference (0-2)", _fmt(sl["note_length_transition_matrix"]["l1_difference"])),
    ]
    head = ["feature"] + [hd for _, hd in COLUMNS] + ["what it measures"]
    rows = [r + [metrics["features"][r[0]]["description"]] for r in summary_rows(metrics)]

    # ---- Markdown
    md = ["# tunesmith evaluation report", "", EXPLAIN["intro"], ""]
    md += [f"- **{k}**: {v}" for k, v in facts] + ["", "## Feature by feature", "", EXPLAIN["table"], ""]
    md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    vl = voice_leading_rows(metrics)
    if vl:
        md += ["", "## Voice leading", "", EXPLAIN["voice_leading"], "", "| measure | generated | reference | what it measures |",
               "|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in vl]
    for title, fname, text in images:
        md += ["", f"## {title}", "", text, "", f"![{title}]({fname})"]
    md += ["", "Every number is in `metrics.json`."]
    (out / "report.md").write_text("\n".join(md) + "\n")

    # ---- HTML (self-contained)
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tunesmith evaluation report</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}"
             "td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}"
             "img{max-width:100%;border:1px solid #eee}dt{font-weight:600}dd{margin:0 0 .4em 1em}"
             ".good{background:#e4f5e9}.bad{background:#fbe3e3}</style></head><body>",
             "<h1>tunesmith evaluation report</h1>", f"<p>{_md_inline(EXPLAIN['intro'])}</p><dl>"]
    parts += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts]
    parts += ["</dl><h2>Feature by feature</h2>", f"<p>{_md_inline(EXPLAIN['table'])}</p><table><tr>"]
    parts += [f"<th>{esc(x)}</th>" for x in head] + ["</tr>"]
    for r in rows:
        oa = metrics["features"][r[0]].get("overlap_ref_intra_vs_inter")
        cls = "" if oa is None or not math.isfinite(oa) else (" good" if oa >= 0.8 else " bad" if oa < 0.5 else "")
        cells = [f"<td>{esc(r[0])}</td>"] + [f"<td class='n{cls if i == 2 else ''}'>{esc(x)}</td>"  # one class=
                                             for i, x in enumerate(r[1:-1])] + [f"<td>{_md_inline(r[-1])}</td>"]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    if vl:
        parts += ["<h2>Voice leading</h2>", f"<p>{_md_inline(EXPLAIN['voice_leading'])}</p><table><tr><th>measure</th>"
                  "<th>generated</th><th>reference</th><th>what it measures</th></tr>"]
        parts += ["<tr>" + "".join(f"<td{' class=n' if 0 < i < 3 else ''}>{esc(x)}</td>" for i, x in enumerate(r))
                  + "</tr>" for r in vl] + ["</table>"]
    for title, fname, text in images:
        data = base64.b64encode((out / fname).read_bytes()).decode()
        parts += [f"<h2>{esc(title)}</h2>", f"<p>{_md_inline(text)}</p>" if text else "",
                  f"<img alt='{esc(title)}' src='data:image/png;base64,{data}'>"]
    parts += ["<p>Every number is in <code>metrics.json</code>.</p></body></html>"]
    (out / "report.html").write_text("\n".join(parts))
    return metrics


# ------------------------------------------------------------------ audio
def _evaluate_audio_sets(gen: list[Path], ref: list[Path], out: Path) -> dict:
    try:
        from .audio_metrics import evaluate_audio
    except ImportError as e:
        raise TunesmithError(f"audio evaluation is not available (tunesmith.evaluation.audio_metrics: {e}); "
                             "evaluate MIDI files instead") from None
    out.mkdir(parents=True, exist_ok=True)
    numbers = evaluate_audio([str(p) for p in gen], [str(p) for p in ref], str(out))
    metrics = {"kind": "audio", "generated": {"files": len(gen)}, "reference": {"files": len(ref)},
               "audio": {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in numbers.items()}}
    _write_json(metrics, out / "metrics.json")
    pngs = sorted(p.name for p in out.glob("*.png"))
    rows = [(k, _fmt(v) if isinstance(v, float) else str(v)) for k, v in metrics["audio"].items()]
    md = ["# tunesmith audio evaluation report", "", f"{len(gen)} generated vs {len(ref)} reference WAV files.", "",
          "| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    md += [f"\n![{p}]({p})" for p in pngs]
    (out / "report.md").write_text("\n".join(md) + "\n")
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tunesmith audio evaluation</title></head>"
             "<body style='font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto'>",
             "<h1>tunesmith audio evaluation report</h1>",
             f"<p>{len(gen)} generated vs {len(ref)} reference WAV files.</p><table border=1 cellpadding=4>"]
    parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows] + ["</table>"]
    for p in pngs:
        parts.append(f"<h2>{html.escape(p)}</h2><img style='max-width:100%' "
                     f"src='data:image/png;base64,{base64.b64encode((out / p).read_bytes()).decode()}'>")
    (out / "report.html").write_text("\n".join(parts + ["</body></html>"]))
    print("\n".join(f"{k:32s} {v}" for k, v in rows))
    return metrics


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
        metrics = _evaluate_audio_sets(_subsample(wg, max_pieces), _subsample(wr, max_pieces), out)
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
