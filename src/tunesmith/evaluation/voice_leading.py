"""Voice-leading metrics for multi-voice pieces (chorales): one small pure function per measure.

A piece's voices are its tracks in order (0 = highest written voice: soprano, alto, tenor, bass for the
chorales and the harmoniser's output). Measures are computed on a grid of 16th notes (``STEP`` beats); a
voice's pitch at a step is the note sounding there (the highest, if the voice has several).

* ``range_violations``: share of a piece's notes outside their voice's usual SATB range (:data:`SATB`,
  four-voice pieces only);
* ``voice_overlaps``: share of (voice, step) cells where a voice sounds more than one note at once (a
  chorale voice sings one note at a time: 0 in Bach);
* ``voice_crossings``: share of steps at which some voice sounds above a voice written above it;
* ``parallels_per_100``: parallel fifths plus parallel octaves/unisons per 100 voice-leading steps. A
  voice-leading step is a change of the sounding chord; a parallel is a pair of voices, both sounding in
  both chords, that both move in the same direction and form the same perfect fifth (7 semitones modulo 12)
  or octave/unison (0 modulo 12) before and after;
* ``in_scale``: share of notes whose pitch class lies in the piece's key (Krumhansl-Schmuckler on the
  duration-weighted pitch-class histogram, always estimated, so notated and generated pieces are measured
  alike; natural minor);
* ``tonal_distance``: MuseGAN's inter-track tonal distance (Dong et al. 2018, after Harte et al. 2006): each
  voice's chroma per beat, normalised, is mapped to the 6-D tonal centroid (fifths, minor thirds, major thirds;
  r1 = r2 = 1, r3 = 0.5); the Euclidean distance between two voices' centroids, averaged over the beats where
  both sound and over the voice pairs. Lower means the voices agree harmonically.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..data.notes import Score, estimate_key, scale_pitch_classes

STEP = 0.25
#: usual range (lowest, highest MIDI pitch) of each voice in four-part writing: S C4-A5, A G3-D5, T C3-A4,
#: B E2-D4
SATB = ((60, 81), (55, 74), (48, 69), (40, 62))


def voices(score: Score) -> list[Score]:
    """The piece's voices, track by track in track order (drum tracks left out)."""
    s = score.pitched()
    return [s.select(s.track == t) for t in sorted(set(s.track.tolist()))]


def voice_grid(score: Score, step: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """(pitch (V, T) with -1 where silent, count (V, T) of notes sounding) on a grid of ``step`` beats."""
    vs = voices(score)
    T = int(np.ceil(score.length / step - 1e-9)) if len(score) else 0
    pitch = np.full((len(vs), T), -1, np.int32)
    count = np.zeros((len(vs), T), np.int32)
    for v, s in enumerate(vs):
        for p, a, d in zip(s.pitch, s.start, s.duration):
            i = int(round(a / step))
            j = min(max(i + 1, int(round((a + d) / step))), T)
            pitch[v, i:j] = np.maximum(pitch[v, i:j], p)
            count[v, i:j] += 1
    return pitch, count


def range_violations(score: Score, ranges=SATB) -> float:
    vs = voices(score)
    if len(vs) != len(ranges):
        return float("nan")
    n = sum(len(v) for v in vs)
    bad = sum(int(((v.pitch < lo) | (v.pitch > hi)).sum()) for v, (lo, hi) in zip(vs, ranges))
    return bad / n if n else float("nan")


def voice_overlaps(score: Score, step: float = STEP) -> float:
    _, count = voice_grid(score, step)
    sounding = count > 0
    return float((count > 1).sum() / sounding.sum()) if sounding.any() else float("nan")


def voice_crossings(score: Score, step: float = STEP) -> float:
    pitch, _ = voice_grid(score, step)
    if pitch.shape[1] == 0 or len(pitch) < 2:
        return float("nan")
    crossed = np.zeros(pitch.shape[1], bool)
    for i, j in combinations(range(len(pitch)), 2):  # i is written above j
        both = (pitch[i] >= 0) & (pitch[j] >= 0)
        crossed |= both & (pitch[j] > pitch[i])
    return float(crossed.mean())


def parallels(score: Score, step: float = STEP) -> dict[str, float]:
    """Counts of parallel fifths and octaves and the number of voice-leading steps."""
    pitch, _ = voice_grid(score, step)
    if pitch.shape[1] < 2:
        return {"fifths": 0, "octaves": 0, "steps": 0}
    change = np.flatnonzero((pitch[:, 1:] != pitch[:, :-1]).any(0)) + 1
    chords = np.concatenate([pitch[:, :1], pitch[:, change]], 1)  # the sequence of distinct chords
    a, b = chords[:, :-1], chords[:, 1:]
    fifths = octaves = 0
    for i, j in combinations(range(len(pitch)), 2):
        ok = (a[i] >= 0) & (a[j] >= 0) & (b[i] >= 0) & (b[j] >= 0)
        mi, mj = b[i] - a[i], b[j] - a[j]
        same_dir = (mi != 0) & (mj != 0) & (np.sign(mi) == np.sign(mj))
        i1, i2 = np.abs(a[i] - a[j]) % 12, np.abs(b[i] - b[j]) % 12
        par = ok & same_dir & (i1 == i2)
        fifths += int((par & (i1 == 7)).sum())
        octaves += int((par & (i1 == 0)).sum())
    return {"fifths": fifths, "octaves": octaves, "steps": int(chords.shape[1] - 1)}


def parallels_per_100(score: Score, step: float = STEP) -> float:
    p = parallels(score, step)
    return 100.0 * (p["fifths"] + p["octaves"]) / p["steps"] if p["steps"] else float("nan")


def in_scale(score: Score) -> float:
    s = score.pitched()
    if not len(s):
        return float("nan")
    tonic, mode = estimate_key(s.pitch_class_histogram())
    return float(np.isin(s.pitch % 12, scale_pitch_classes(tonic, mode)).mean())


_TONAL = np.stack([f(np.arange(12) * k * np.pi) * r for k, r in ((7 / 6, 1.0), (3 / 2, 1.0), (2 / 3, 0.5))
                   for f in (np.sin, np.cos)])  # (6, 12): Harte et al.'s tonal centroid


def tonal_centroids(voice: Score, n_beats: int) -> np.ndarray:
    """(n_beats, 6) tonal centroid of a voice's duration-weighted chroma per beat; NaN where it is silent."""
    chroma = np.zeros((n_beats, 12))
    for p, a, d in zip(voice.pitch, voice.start, voice.duration):
        t, e = a, a + d
        while t < e - 1e-9:
            beat = int(np.floor(t + 1e-9))
            if beat >= n_beats:
                break
            nxt = min(e, beat + 1.0)
            chroma[beat, int(p) % 12] += nxt - t
            t = nxt
    tot = chroma.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (chroma / tot) @ _TONAL.T


def tonal_distance(score: Score) -> float:
    vs = voices(score)
    if len(vs) < 2:
        return float("nan")
    n = int(np.ceil(score.length - 1e-9))
    cs = [tonal_centroids(v, n) for v in vs]
    per_pair = []
    for i, j in combinations(range(len(cs)), 2):
        d = np.linalg.norm(cs[i] - cs[j], axis=1)
        d = d[np.isfinite(d)]
        if len(d):
            per_pair.append(d.mean())
    return float(np.mean(per_pair)) if per_pair else float("nan")


MEASURES = {
    "range_violations": (range_violations, "share of notes outside their voice's usual SATB range"),
    "voice_overlaps": (voice_overlaps, "share of sounding voice-steps where a voice sounds 2+ notes at once"),
    "voice_crossings": (voice_crossings, "share of 16th-note steps where a voice sounds above a higher voice"),
    "parallels_per_100": (parallels_per_100, "parallel fifths + octaves per 100 voice-leading steps"),
    "in_scale": (in_scale, "share of notes in the piece's (estimated) key"),
    "tonal_distance": (tonal_distance, "MuseGAN tonal distance between voices, mean over pairs and beats"),
}


def is_multivoice(scores: list[Score]) -> bool:
    """True when every piece has two or more (pitched) tracks."""
    return bool(scores) and all(len(set(s.pitched().track.tolist())) >= 2 for s in scores)


def piece_measures(scores: list[Score]) -> dict[str, np.ndarray]:
    return {name: np.array([fn(s) for s in scores], float) for name, (fn, _) in MEASURES.items()}


def summarize(scores: list[Score]) -> dict[str, float]:
    """Set-level values: the mean over pieces, except ``parallels_per_100`` which pools the counts of all
    pieces (parallels of all pieces per 100 voice-leading steps of all pieces)."""
    per = piece_measures(scores)
    out = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in per.items()}
    counts = [parallels(s) for s in scores]
    steps = sum(c["steps"] for c in counts)
    fifths, octaves = sum(c["fifths"] for c in counts), sum(c["octaves"] for c in counts)
    out["parallels_per_100"] = 100.0 * (fifths + octaves) / steps if steps else float("nan")
    out["parallel_fifths_per_100"] = 100.0 * fifths / steps if steps else float("nan")
    out["parallel_octaves_per_100"] = 100.0 * octaves / steps if steps else float("nan")
    out["voice_leading_steps"] = steps
    return out


def compare(gen: list[Score], ref: list[Score]) -> dict:
    """The voice-leading table of the evaluation report: generated vs reference for every measure."""
    g, r = summarize(gen), summarize(ref)
    rows = {}
    for name, (_, desc) in MEASURES.items():
        rows[name] = {"description": desc, "generated": g[name], "reference": r[name]}
    for name in ("parallel_fifths_per_100", "parallel_octaves_per_100", "voice_leading_steps"):
        rows[name] = {"description": name.replace("_", " "), "generated": g[name], "reference": r[name]}
    return rows
