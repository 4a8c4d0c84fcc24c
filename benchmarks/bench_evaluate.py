"""Evaluate 1,000 generated melodies against the whole Erk reference: vectorised numpy vs per-note Python.

    python benchmarks/bench_evaluate.py [--n 1000] [--no-report]

The "generated" melodies are seeded random walks on the C-major scale with Erk-like rhythms (no trained model
needed). The pure-Python side computes the same per-piece features note by note with lists and dicts, and the
same intra/inter distances pair by pair; both then share the KDE step. The script checks that both give the
same numbers, prints a table and writes benchmarks/results/evaluate.json. Peak memory is the process's peak
resident set size (resource.getrusage).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from tunesmith.data.notes import Score
from tunesmith.data.timestep import prepared_songs
from tunesmith.evaluation import features as F
from tunesmith.evaluation.compare import compare_distances, inter_pairs, intra_pairs
from tunesmith.evaluation.report import evaluate

C_MAJOR = [0, 2, 4, 5, 7, 9, 11]


def fake_melodies(n: int, seed: int = 0) -> list[Score]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(30, 70))
        steps = np.clip(np.cumsum(rng.choice([-2, -1, 0, 1, 2], k, p=[.15, .3, .1, .3, .15])), -6, 9) + 14
        pitch = [48 + 12 * (s // 7) + C_MAJOR[s % 7] for s in steps]
        dur = rng.choice([0.25, 0.5, 1.0, 1.5, 2.0], k, p=[.07, .45, .33, .08, .07])
        start = np.concatenate([[0], np.cumsum(dur)[:-1]])
        out.append(Score(pitch=pitch, start=start, duration=dur, time_signature=(4, 4)))
    return out


# ------------------------------------------------------------------ the same metrics, note by note
def py_features(score: Score) -> dict:
    s = score.pitched().sorted()
    notes = list(zip(s.pitch.tolist(), s.start.tolist(), s.duration.tolist()))
    n = len(notes)
    bpb = s.beats_per_bar
    length = s.length
    pitches = [p for p, _, _ in notes]
    f = {"n_notes": float(n), "used_pitches": float(len(set(pitches))),
         "used_pitch_classes": float(len({p % 12 for p in pitches}))}
    n_bars = max(1, math.ceil(length / bpb - 1e-9))
    n_beats = max(1, math.ceil(length - 1e-9))
    f["notes_per_bar"] = n / n_bars
    bar_pitches, bar_pcs = {}, {}
    for p, a, _ in notes:
        bar = math.floor(a / bpb + 1e-9)
        bar_pitches.setdefault(bar, set()).add(p)
        bar_pcs.setdefault(bar, set()).add(p % 12)
    f["pitches_per_bar"] = sum(len(v) for v in bar_pitches.values()) / n_bars
    f["pitch_classes_per_bar"] = sum(len(v) for v in bar_pcs.values()) / len(bar_pcs)
    f["pitch_range"] = float(max(pitches) - min(pitches))
    mean = sum(pitches) / n
    f["pitch_mean"] = mean
    f["pitch_std"] = math.sqrt(sum((p - mean) ** 2 for p in pitches) / n)
    iv = [abs(pitches[i + 1] - pitches[i]) for i in range(n - 1)]
    f["avg_pitch_interval"] = sum(iv) / len(iv) if iv else math.nan
    onsets = sorted({a for _, a, _ in notes})
    f["avg_ioi"] = (sum(onsets[i + 1] - onsets[i] for i in range(len(onsets) - 1)) / (len(onsets) - 1)
                    if len(onsets) > 1 else math.nan)
    for name, unit, count in (("empty_bar_rate", bpb, n_bars), ("empty_beat_rate", 1.0, n_beats)):
        used = set()
        for _, a, d in notes:
            first = math.floor(a / unit + 1e-9)
            last = max(first, math.ceil((a + d) / unit - 1e-9) - 1)
            used.update(range(min(first, count - 1), min(last, count - 1) + 1))
        f[name] = 1 - len(used) / count
    pc_count = [0] * 12
    pc_dur = [0.0] * 12
    for p, _, d in notes:
        pc_count[p % 12] += 1
        pc_dur[p % 12] += d
    tot = sum(pc_dur)
    hist = [x / tot for x in pc_dur]
    best, best_r = 0, -math.inf
    for k in range(24):
        prof = list(np.roll(F._KK_MAJOR if k < 12 else F._KK_MINOR, k % 12))
        mh, mp = sum(hist) / 12, sum(prof) / 12
        num = sum((h - mh) * (q - mp) for h, q in zip(hist, prof))
        den = math.sqrt(sum((h - mh) ** 2 for h in hist) * sum((q - mp) ** 2 for q in prof))
        r = num / den if den > 0 else -math.inf
        if r > best_r:
            best, best_r = k, r
    scales = [[(x + t) % 12 for x in F.MAJOR_SCALE] for t in range(12)] + \
             [[(x + t) % 12 for x in F.MINOR_SCALE] for t in range(12)]
    f["in_scale_ratio"] = sum(1 for p in pitches if p % 12 in scales[best]) / n
    f["scale_consistency"] = max(sum(pc_count[c] for c in sc) for sc in scales) / n
    events = sorted([(a, 1) for _, a, _ in notes] + [(a + d, -1) for _, a, d in notes])
    active, union, prev = 0, 0.0, None
    for t, dlt in events:
        if active > 0:
            union += t - prev
        active += dlt
        prev = t
    f["polyphony"] = sum(d for _, _, d in notes) / union
    f["qualified_note_rate"] = sum(1 for _, _, d in notes if d >= F.QUALIFIED_MIN_BEATS - 1e-9) / n

    def ent(counts):
        t = sum(counts)
        return -sum(c / t * math.log2(c / t) for c in counts if c)
    pcount = {}
    for p in pitches:
        pcount[p] = pcount.get(p, 0) + 1
    f["pitch_entropy"] = ent(list(pcount.values()))
    f["pitch_class_entropy"] = ent(pc_count)
    f["pitch_class_histogram"] = hist
    classes = [min(range(12), key=lambda c: (abs(d - F.NOTE_LENGTH_CLASSES[c]), c)) for _, _, d in notes]
    nl = [0.0] * 12
    for c in classes:
        nl[c] += 1 / n
    f["note_length_histogram"] = nl
    for name, seq, k in (("pitch_class_transitions", [p % 12 for p in pitches], 12),
                         ("note_length_transitions", classes, 12)):
        m = [0.0] * (k * k)
        for a, b in zip(seq, seq[1:]):
            m[a * k + b] += 1
        t = sum(m)
        f[name] = [x / t for x in m] if t else m
    groups = []
    for p in pitches:
        if groups and p == groups[-1][-1] + 1:
            groups[-1].append(p)
        else:
            groups.append([p])
    f["_groups"] = groups
    return f


def py_distance(a, b) -> float:
    if isinstance(a, list):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    return abs(a - b)


def py_manhattan(g1, g2) -> float:
    return float(sum(abs(x - y) for s1, s2 in zip(g1, g2) for x, y in zip(s1, s2)))


def py_evaluate(gen: list[Score], ref: list[Score], names: list[str], pairs) -> tuple[dict, dict]:
    """Features note by note, distances pair by pair; the KDE step is the library's (shared)."""
    fg = [py_features(s) for s in gen]
    fr = [py_features(s) for s in ref]
    (gi, gj), (ri, rj), (xi, xj) = [(a.tolist(), b.tolist()) for a, b in pairs]
    out = {}
    for name in names:
        if name == "grouped_pitch_manhattan":
            d = lambda x, y: py_manhattan(x["_groups"], y["_groups"])  # noqa: E731
        else:
            d = lambda x, y, name=name: py_distance(x[name], y[name])  # noqa: E731
        intra_g = np.array([d(fg[i], fg[j]) for i, j in zip(gi, gj)])
        intra_r = np.array([d(fr[i], fr[j]) for i, j in zip(ri, rj)])
        inter = np.array([d(fg[i], fr[j]) for i, j in zip(xi, xj)])
        out[name] = compare_distances(name, intra_g, intra_r, inter).stats
    return fg, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="generated melodies (default 1000)")
    ap.add_argument("--no-report", action="store_true", help="skip the timing with plots and HTML")
    ap.add_argument("--out", default="benchmarks/results/evaluate.json")
    a = ap.parse_args(argv)

    train, val = prepared_songs("essen-erk", verbose=False)
    ref = train + val
    gen = fake_melodies(a.n)
    n_notes = sum(len(s) for s in gen) + sum(len(s) for s in ref)
    rows = []

    # vectorised: features, then the whole comparison (no files), then the full report with plots
    t = time.perf_counter()
    bg, br = F.NoteBatch.from_scores(gen), F.NoteBatch.from_scores(ref)
    fg = F.extract_features(bg)
    fr = F.extract_features(br)
    Sg, Lg = F.group_arrays(bg)
    Sr, Lr = F.group_arrays(br)
    t_feat_np = time.perf_counter() - t
    t = time.perf_counter()
    m_np = evaluate(gen, ref)
    t_eval_np = time.perf_counter() - t
    t_report = None
    if not a.no_report:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            evaluate(gen, ref, out_dir=d)
            t_report = time.perf_counter() - t

    # pure Python: the same features, the same sampled pairs
    names = list(F.SCALAR_FEATURES) + list(F.VECTOR_FEATURES) + ["grouped_pitch_manhattan"]
    rng = np.random.default_rng(0)
    pairs = (intra_pairs(len(gen), 20_000, rng), intra_pairs(len(ref), 20_000, rng),
             inter_pairs(len(gen), len(ref), 20_000, rng))
    t = time.perf_counter()
    fg_py = [py_features(s) for s in gen] + [py_features(s) for s in ref]
    t_feat_py = time.perf_counter() - t
    t = time.perf_counter()
    _, stats_py = py_evaluate(gen, ref, names, pairs)
    t_eval_py = time.perf_counter() - t

    # agreement: every per-piece feature, and the table's overlap areas
    worst = 0.0
    for k, name in enumerate(list(F.SCALAR_FEATURES) + list(F.VECTOR_FEATURES)):
        a_np = np.concatenate([fg[name].reshape(len(gen), -1), fr[name].reshape(len(ref), -1)])
        a_py = np.array([np.ravel(f[name]) for f in fg_py], float)
        ok = np.isfinite(a_np) & np.isfinite(a_py)
        worst = max(worst, float(np.abs(a_np[ok] - a_py[ok]).max()) if ok.any() else 0.0)
    oa_diff = max(abs(m_np["features"][n]["overlap_ref_intra_vs_inter"] - stats_py[n]["overlap_ref_intra_vs_inter"])
                  for n in names if stats_py[n]["overlap_ref_intra_vs_inter"] == stats_py[n]["overlap_ref_intra_vs_inter"])

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [("feature extraction (all pieces)", t_feat_np, t_feat_py),
            ("evaluate(): features + distances + KDE table", t_eval_np, t_eval_py)]
    print(f"{a.n} generated melodies vs {len(ref)} Erk songs ({n_notes} notes), {os.cpu_count()} CPU cores")
    print(f"{'step':46s} {'numpy s':>9s} {'python s':>9s} {'speed-up':>9s}")
    for name, tn, tp in rows:
        print(f"{name:46s} {tn:9.2f} {tp:9.2f} {tp / tn:8.1f}x")
    if t_report is not None:
        print(f"{'evaluate() with report.md/html + PNG plots':46s} {t_report:9.2f}")
    print(f"max |numpy - python| per-piece feature: {worst:.2e}; max overlap-area difference: {oa_diff:.2e}")
    print(f"peak RSS: {peak_mib:.0f} MiB")
    res = {"generated": a.n, "reference": len(ref), "notes": n_notes, "cpu_cores": os.cpu_count(),
           "python": platform.python_version(), "numpy": np.__version__,
           "seconds": {"features_numpy": t_feat_np, "features_python": t_feat_py,
                       "evaluate_numpy": t_eval_np, "evaluate_python": t_eval_py, "evaluate_with_report": t_report},
           "speedup_features": t_feat_py / t_feat_np, "speedup_evaluate": t_eval_py / t_eval_np,
           "max_feature_difference": worst, "max_overlap_difference": oa_diff, "peak_rss_mib": peak_mib,
           "mean_overlap_area": m_np["headline"]["mean_overlap_area"], "mean_kl": m_np["headline"]["mean_kl"]}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
