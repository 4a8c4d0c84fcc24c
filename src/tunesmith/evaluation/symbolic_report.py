"""The symbolic (MIDI) half of ``tunesmith evaluate``'s report: the printed summary table and
``report.md`` / ``report.html`` with the plots, from the numbers :func:`tunesmith.evaluation.report.evaluate`
computes."""
from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import numpy as np

from . import features as F


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


