"""Per-piece features of symbolic music, computed for many pieces at once with numpy.

Every function here takes a :class:`NoteBatch` (all pieces' notes concatenated, with a piece index) and
returns one value (or one vector / matrix) per piece. Nothing loops over notes in Python: features are
``np.bincount`` / ``np.unique`` / ``reduceat`` over the concatenated arrays, so 1,000 melodies take
milliseconds. Each function also works on a single :class:`~tunesmith.data.notes.Score` through
:func:`piece_features` (handy in tests and notebooks).

Conventions (see docs/evaluation.md for the reasoning):

* times are in quarter-note beats; a bar is ``Score.beats_per_bar`` beats from time 0;
* drum tracks are ignored; notes are ordered by onset, then track, then pitch (highest first), and
  "consecutive notes" (intervals, transitions) means consecutive in that order;
* counts use notes (not piano-roll frames), except the pitch-class histogram, which weights by duration
  like mgeval's piano-roll histogram;
* a feature that is undefined for a piece (e.g. an interval in a one-note piece) is NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.notes import MAJOR_SCALE, MINOR_SCALE, Score, _KK_MAJOR, _KK_MINOR

# mgeval's 12 note-length classes, in quarter-note beats (mgeval states them per 4/4 bar of 96 units):
# whole, half, quarter, 8th, 16th, dotted half, dotted quarter, dotted 8th, dotted 16th,
# half-note triplet, quarter-note triplet, 8th-note triplet.
NOTE_LENGTH_CLASSES = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 3.0, 1.5, 0.75, 0.375, 4 / 3, 2 / 3, 1 / 3])
NOTE_LENGTH_LABELS = ["1", "1/2", "1/4", "1/8", "1/16", "1/2.", "1/4.", "1/8.", "1/16.", "1/2t", "1/4t", "1/8t"]
SEED_LENGTH_CLASSES = 8  # seed 000's A.3.3: class = min(int(seconds * 8), 7)
QUALIFIED_MIN_BEATS = 0.125  # MuseGAN: a note shorter than 3 of 24 steps per beat (a 32nd note) is not "qualified"
_EPS = 1e-9

_SCALE_MASKS = np.zeros((24, 12), bool)  # rows 0-11: major on tonic t, 12-23: minor on tonic t
for _t in range(12):
    _SCALE_MASKS[_t, (MAJOR_SCALE + _t) % 12] = True
    _SCALE_MASKS[12 + _t, (MINOR_SCALE + _t) % 12] = True
_KEY_PROFILES = np.stack([np.roll(_KK_MAJOR, t) for t in range(12)] + [np.roll(_KK_MINOR, t) for t in range(12)])


@dataclass
class NoteBatch:
    """The pitched notes of many pieces, concatenated in piece order and sorted by onset within a piece.

    ``piece[i]`` says which piece note ``i`` belongs to; ``offsets[k]:offsets[k+1]`` are piece k's notes.
    Per-piece metadata: ``beats_per_bar``, ``length`` (beats), ``tempo`` (quarter notes per minute).
    """

    pitch: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    piece: np.ndarray
    offsets: np.ndarray
    beats_per_bar: np.ndarray
    length: np.ndarray
    tempo: np.ndarray
    track: np.ndarray | None = None  # per note; None = one track

    @property
    def n_pieces(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_scores(cls, scores: list[Score]) -> "NoteBatch":
        parts = [s.pitched().sorted() for s in scores]
        n = np.array([len(s) for s in parts], np.int64)
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
        return cls(
            pitch=cat([s.pitch for s in parts], np.int64),
            start=cat([s.start for s in parts], np.float64),
            duration=cat([s.duration for s in parts], np.float64),
            piece=np.repeat(np.arange(len(parts)), n),
            offsets=np.concatenate([[0], np.cumsum(n)]).astype(np.int64),
            beats_per_bar=np.array([s.beats_per_bar for s in parts], np.float64),
            length=np.array([s.length for s in parts], np.float64),
            tempo=np.array([s.tempo or 120.0 for s in parts], np.float64),
            track=cat([s.track for s in parts], np.int64),
        )


def _per_piece(b: NoteBatch, weights=None) -> np.ndarray:
    return np.bincount(b.piece, weights=weights, minlength=b.n_pieces).astype(float)


def _safe_div(num, den) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _consecutive(b: NoteBatch) -> np.ndarray:
    """Boolean mask over note pairs (i, i+1) that belong to the same piece."""
    return b.piece[1:] == b.piece[:-1]


def _n_unique(b: NoteBatch, values: np.ndarray, size: int) -> np.ndarray:
    """Per piece, how many distinct ``values`` (integers in [0, size)) occur."""
    u = np.unique(b.piece * size + values)
    return np.bincount(u // size, minlength=b.n_pieces).astype(float)


# ------------------------------------------------------------------ pitch counts (mgeval, seed 004, MuseGAN)
def n_notes(b: NoteBatch) -> np.ndarray:
    """Note count (mgeval ``total_used_note``)."""
    return b.counts.astype(float)


def used_pitches(b: NoteBatch) -> np.ndarray:
    """Number of distinct MIDI pitches (mgeval ``total_used_pitch``, seed 004's "unique pitch count")."""
    return _n_unique(b, b.pitch, 128)


def used_pitch_classes(b: NoteBatch) -> np.ndarray:
    """Number of distinct pitch classes (0-12)."""
    return _n_unique(b, b.pitch % 12, 12)


def pitch_range(b: NoteBatch) -> np.ndarray:
    """Highest minus lowest pitch, in semitones (0 for an empty piece, like muspy)."""
    out = np.zeros(b.n_pieces)
    ok = b.counts > 0
    if ok.any():
        starts = b.offsets[:-1][ok]
        out[ok] = np.maximum.reduceat(b.pitch, starts) - np.minimum.reduceat(b.pitch, starts)
    return out


def pitch_mean(b: NoteBatch) -> np.ndarray:
    """Mean MIDI pitch of the notes (seed 000's "pitch mean")."""
    return _safe_div(_per_piece(b, b.pitch.astype(float)), b.counts)


def pitch_std(b: NoteBatch) -> np.ndarray:
    """Standard deviation of the notes' MIDI pitches (population std, numpy's default)."""
    m = pitch_mean(b)
    sq = _safe_div(_per_piece(b, b.pitch.astype(float) ** 2), b.counts)
    return np.sqrt(np.maximum(sq - m ** 2, 0.0))


def avg_pitch_interval(b: NoteBatch) -> np.ndarray:
    """Mean absolute interval between consecutive notes, in semitones (mgeval ``avg_pitch_shift``)."""
    same = _consecutive(b)
    d = np.abs(np.diff(b.pitch))[same].astype(float)
    p = b.piece[1:][same]
    return _safe_div(np.bincount(p, d, b.n_pieces), np.bincount(p, minlength=b.n_pieces))


def _onsets(b: NoteBatch) -> tuple[np.ndarray, np.ndarray]:
    """Distinct onsets (times, piece ids), in order."""
    new = np.ones(len(b.start), bool)
    new[1:] = (b.start[1:] != b.start[:-1]) | (b.piece[1:] != b.piece[:-1])
    return b.start[new], b.piece[new]


def avg_ioi(b: NoteBatch) -> np.ndarray:
    """Average inter-onset interval in beats, over distinct onsets (mgeval ``avg_IOI``, which uses seconds).

    The mean of consecutive differences telescopes to (last onset - first onset) / (onsets - 1)."""
    t, p = _onsets(b)
    k = np.bincount(p, minlength=b.n_pieces)
    first = np.full(b.n_pieces, np.nan)
    last = np.full(b.n_pieces, np.nan)
    ok = k > 0
    idx = np.concatenate([[0], np.cumsum(k)])
    first[ok] = t[idx[:-1][ok]]
    last[ok] = t[idx[1:][ok] - 1]
    return _safe_div(last - first, k - 1)


# ------------------------------------------------------------------ bars and beats
def _n_units(b: NoteBatch, unit: np.ndarray) -> np.ndarray:
    """Units (bars or beats) per piece: ceil(length / unit), at least 1."""
    return np.maximum(1, np.ceil(b.length / unit - _EPS)).astype(np.int64)


def _covered_units(b: NoteBatch, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each piece, how many units (bars/beats of length ``unit``) have a note sounding in them, and the
    number of units. A note [s, e) sounds in units floor(s/u) .. ceil(e/u)-1."""
    n_units = _n_units(b, unit)
    base = np.concatenate([[0], np.cumsum(n_units)])
    u = unit[b.piece]
    first = np.floor(b.start / u + _EPS).astype(np.int64)
    last = np.maximum(first, np.ceil((b.start + b.duration) / u - _EPS).astype(np.int64) - 1)
    last = np.minimum(last, n_units[b.piece] - 1)
    first = np.minimum(first, n_units[b.piece] - 1)
    diff = np.zeros(base[-1] + 1, np.int64)  # difference array over all pieces' units
    np.add.at(diff, base[b.piece] + first, 1)
    np.add.at(diff, base[b.piece] + last + 1, -1)
    covered = np.cumsum(diff)[:-1] > 0
    owner = np.repeat(np.arange(b.n_pieces), n_units)
    return np.bincount(owner, covered, b.n_pieces), n_units.astype(float)


def empty_bar_rate(b: NoteBatch) -> np.ndarray:
    """Fraction of bars in which no note sounds (seed 004, MuseGAN "EB"). Bars run from time 0 to the
    piece's end in steps of the time signature's bar length."""
    covered, n = _covered_units(b, b.beats_per_bar)
    return 1.0 - covered / n


def empty_beat_rate(b: NoteBatch) -> np.ndarray:
    """Fraction of quarter-note beats in which no note sounds (muspy ``empty_beat_rate``)."""
    covered, n = _covered_units(b, np.ones(b.n_pieces))
    return 1.0 - covered / n


def _bar_of_onset(b: NoteBatch) -> np.ndarray:
    return np.floor(b.start / b.beats_per_bar[b.piece] + _EPS).astype(np.int64)


def notes_per_bar(b: NoteBatch) -> np.ndarray:
    """Mean number of note onsets per bar, over all bars including empty ones (mgeval ``bar_used_note``)."""
    return _safe_div(b.counts, _n_units(b, b.beats_per_bar))


def pitches_per_bar(b: NoteBatch) -> np.ndarray:
    """Mean number of distinct pitches starting in a bar, over all bars (mgeval ``bar_used_pitch``)."""
    bar = _bar_of_onset(b)
    u = np.unique((b.piece * 100_000 + bar) * 128 + b.pitch)
    per_piece = np.bincount(u // 128 // 100_000, minlength=b.n_pieces)
    return _safe_div(per_piece, _n_units(b, b.beats_per_bar))


def pitch_classes_per_bar(b: NoteBatch) -> np.ndarray:
    """Mean number of distinct pitch classes among notes starting in a bar, over bars that have a note
    onset (MuseGAN "UPC"; 0-12)."""
    bar = _bar_of_onset(b)
    u = np.unique((b.piece * 100_000 + bar) * 12 + b.pitch % 12)
    per_piece = np.bincount(u // 12 // 100_000, minlength=b.n_pieces)
    bars = np.bincount(np.unique(b.piece * 100_000 + bar) // 100_000, minlength=b.n_pieces)
    return _safe_div(per_piece, bars)


# ------------------------------------------------------------------ tonality
def pitch_class_counts(b: NoteBatch) -> np.ndarray:
    """[pieces, 12] note counts per pitch class."""
    return np.bincount(b.piece * 12 + b.pitch % 12, minlength=12 * b.n_pieces).reshape(-1, 12).astype(float)


def pitch_class_histogram(b: NoteBatch) -> np.ndarray:
    """[pieces, 12] duration-weighted pitch-class histogram, summing to 1 (mgeval
    ``total_pitch_class_histogram``, which weights by piano-roll frames, i.e. by duration)."""
    h = np.bincount(b.piece * 12 + b.pitch % 12, b.duration, 12 * b.n_pieces).reshape(-1, 12).astype(float)
    s = h.sum(1, keepdims=True)
    return np.divide(h, s, out=np.zeros_like(h), where=s > 0)


def estimate_keys(b: NoteBatch) -> np.ndarray:
    """[pieces] key index 0-23 (0-11 major on that tonic, 12-23 minor) by Krumhansl-Schmuckler on the
    duration-weighted pitch-class histogram; same result as ``Score.estimate_key`` for unkeyed scores."""
    h = pitch_class_histogram(b)
    hc = h - h.mean(1, keepdims=True)
    pc = _KEY_PROFILES - _KEY_PROFILES.mean(1, keepdims=True)
    num = hc @ pc.T
    den = np.sqrt((hc ** 2).sum(1, keepdims=True) * (pc ** 2).sum(1)[None, :])
    r = np.where(den > 0, num / np.where(den > 0, den, 1), -np.inf)
    return np.argmax(r, axis=1)


def key_index(key: tuple[int, str]) -> int:
    tonic, mode = key
    return int(tonic) % 12 + (12 if mode == "minor" else 0)


def in_scale_ratio(b: NoteBatch, key: tuple[int, str] | None = None) -> np.ndarray:
    """Fraction of notes whose pitch class is in the scale of ``key`` (tonic, "major"|"minor"); by default
    each piece's own detected key (seed 004 uses C major; pass ``key=(0, "major")`` for that)."""
    keys = estimate_keys(b) if key is None else np.full(b.n_pieces, key_index(key))
    inside = _SCALE_MASKS[keys[b.piece], b.pitch % 12]
    return _safe_div(_per_piece(b, inside.astype(float)), b.counts)


def scale_consistency(b: NoteBatch) -> np.ndarray:
    """The largest in-scale ratio over the 24 major and natural-minor scales (muspy, C-RNN-GAN)."""
    inside = pitch_class_counts(b) @ _SCALE_MASKS.T.astype(float)
    return _safe_div(inside.max(1), b.counts)


def _entropy(counts: np.ndarray) -> np.ndarray:
    tot = counts.sum(1, keepdims=True)
    p = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0).sum(1)
    return np.where(tot[:, 0] > 0, e, np.nan)


def pitch_entropy(b: NoteBatch) -> np.ndarray:
    """Shannon entropy (bits) of the note-count pitch histogram (seed 003, muspy)."""
    c = np.bincount(b.piece * 128 + b.pitch, minlength=128 * b.n_pieces).reshape(-1, 128).astype(float)
    return _entropy(c)


def pitch_class_entropy(b: NoteBatch) -> np.ndarray:
    """Shannon entropy (bits) of the note-count pitch-class histogram (muspy, Jazz Transformer)."""
    return _entropy(pitch_class_counts(b))


# ------------------------------------------------------------------ texture and rhythm
def polyphony(b: NoteBatch) -> np.ndarray:
    """Mean number of notes sounding at once, over the time when at least one sounds (muspy
    ``polyphony``): total note duration / duration of the union of the notes. 1.0 for a melody."""
    n = len(b.pitch)
    if n == 0:
        return np.full(b.n_pieces, np.nan)
    t = np.concatenate([b.start, b.start + b.duration])
    d = np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64)])
    p = np.concatenate([b.piece, b.piece])
    order = np.lexsort((d, t, p))  # at equal times, ends (-1) before starts (+1)
    t, d, p = t[order], d[order], p[order]
    active = np.cumsum(d)
    seg = np.diff(t)
    covered = np.where((active[:-1] > 0) & (p[1:] == p[:-1]), seg, 0.0)
    union = np.bincount(p[:-1], covered, b.n_pieces)
    return _safe_div(_per_piece(b, b.duration), union)


def qualified_note_rate(b: NoteBatch, min_beats: float = QUALIFIED_MIN_BEATS) -> np.ndarray:
    """Fraction of notes at least ``min_beats`` long (MuseGAN "QN": no shorter than a 32nd note)."""
    return _safe_div(_per_piece(b, (b.duration >= min_beats - _EPS).astype(float)), b.counts)


def note_length_classes(b: NoteBatch, classes: str = "mgeval") -> np.ndarray:
    """Per note, its length class. ``"mgeval"``: the nearest of the 12 :data:`NOTE_LENGTH_CLASSES`
    (ties go to the first listed). ``"seed"``: seed 000's ``min(int(seconds * 8), 7)`` at the piece's tempo."""
    if classes == "mgeval":
        return np.argmin(np.abs(b.duration[:, None] - NOTE_LENGTH_CLASSES[None, :]), axis=1)
    if classes == "seed":
        seconds = b.duration * 60.0 / b.tempo[b.piece]
        return np.minimum((seconds * SEED_LENGTH_CLASSES + _EPS).astype(np.int64), SEED_LENGTH_CLASSES - 1)
    raise ValueError(f"note-length classes must be 'mgeval' or 'seed', not {classes!r}")


def n_length_classes(classes: str) -> int:
    return len(NOTE_LENGTH_CLASSES) if classes == "mgeval" else SEED_LENGTH_CLASSES


def note_length_histogram(b: NoteBatch, classes: str = "mgeval") -> np.ndarray:
    """[pieces, K] note-length class histogram, summing to 1 (mgeval ``note_length_hist``)."""
    k = n_length_classes(classes)
    h = np.bincount(b.piece * k + note_length_classes(b, classes), minlength=k * b.n_pieces)
    h = h.reshape(-1, k).astype(float)
    s = h.sum(1, keepdims=True)
    return np.divide(h, s, out=np.zeros_like(h), where=s > 0)


def _transitions(b: NoteBatch, cls: np.ndarray, k: int) -> np.ndarray:
    same = _consecutive(b)
    idx = (b.piece[1:] * k + cls[:-1]) * k + cls[1:]
    return np.bincount(idx[same], minlength=b.n_pieces * k * k).reshape(-1, k, k).astype(float)


MGEVAL_TRANSITION_SECONDS = 0.05  # pretty_midi's time_thresh, used by mgeval


def pitch_class_transitions(b: NoteBatch, time_thresh: float = MGEVAL_TRANSITION_SECONDS) -> np.ndarray:
    """[pieces, 12, 12] pitch-class transition counts as mgeval defines them (pretty_midi
    ``Instrument.get_pitch_class_transition_matrix``, summed over tracks): for every ordered pair of notes
    (i, j) of the same track with ``|end_i - start_j| < time_thresh`` seconds (at the piece's tempo), count
    (pitch class of i, pitch class of j). So a note followed by a rest starts no transition, and a chord
    followed by a chord counts every pair (3 notes then 3 notes: 9). The default of the mgeval table."""
    k = 12
    if len(b.pitch) == 0:
        return np.zeros((b.n_pieces, k, k))
    spb = 60.0 / b.tempo[b.piece]
    start, end = b.start * spb, (b.start + b.duration) * spb
    track = b.track if b.track is not None else np.zeros(len(b.pitch), np.int64)
    group = b.piece * (int(track.max()) + 1) + track           # one group per (piece, track)
    span = float(max(end.max(), start.max())) + 10 * time_thresh + 1.0
    key = group * span + start                                # sorted: by group, then start time
    order = np.argsort(key, kind="stable")
    skey = key[order]
    lo = np.searchsorted(skey, group * span + end - time_thresh, side="right")  # start_j > end_i - thr
    hi = np.searchsorted(skey, group * span + end + time_thresh, side="left")   # start_j < end_i + thr
    n = np.maximum(hi - lo, 0)
    src = np.repeat(np.arange(len(b.pitch)), n)
    tgt = order[np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)]
    pc = b.pitch % 12
    idx = (b.piece[src] * k + pc[src]) * k + pc[tgt]
    return np.bincount(idx, minlength=b.n_pieces * k * k).reshape(-1, k, k).astype(float)


def pitch_class_transitions_consecutive(b: NoteBatch) -> np.ndarray:
    """[pieces, 12, 12] counts of pitch class a followed by b in consecutive notes (onset order, across rests;
    one pair per onset step in chords). Ours, before mgeval's definition became the default: for a melody
    it differs from :func:`pitch_class_transitions` exactly at rests."""
    return _transitions(b, b.pitch % 12, 12)


def note_length_transitions(b: NoteBatch, classes: str = "mgeval") -> np.ndarray:
    """[pieces, K, K] counts of length class a followed by b (mgeval / seed 000's note-length transition
    matrix, unnormalised)."""
    return _transitions(b, note_length_classes(b, classes), n_length_classes(classes))


def normalise_total(m: np.ndarray) -> np.ndarray:
    """Divide each piece's matrix by its total (mgeval ``normalize=2``); all-zero stays zero."""
    s = m.reshape(len(m), -1).sum(1).reshape((-1,) + (1,) * (m.ndim - 1))
    return np.divide(m, s, out=np.zeros_like(m), where=s > 0)


def pitch_histogram(b: NoteBatch) -> np.ndarray:
    """[pieces, 128] note counts per MIDI pitch."""
    return np.bincount(b.piece * 128 + b.pitch, minlength=128 * b.n_pieces).reshape(-1, 128).astype(float)


# ------------------------------------------------------------------ seed 000: grouped-pitch Manhattan distance
def pitch_groups(pitch) -> list[list[int]]:
    """Seed 000's grouping (A.3.1): a note joins the current group when its pitch is the group's last pitch
    plus one semitone, else it starts a new group. Pitches in onset order."""
    groups: list[list[int]] = []
    for p in np.asarray(pitch).tolist():
        if groups and p == groups[-1][-1] + 1:
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def group_arrays(b: NoteBatch) -> tuple[np.ndarray, np.ndarray]:
    """Every group is a chromatic run, so it is (first pitch, length). Returns [pieces, G] arrays of group
    first pitches and lengths, padded with length 0 (G = most groups in any piece)."""
    if len(b.pitch) == 0:
        return np.zeros((b.n_pieces, 1)), np.zeros((b.n_pieces, 1))
    new = np.ones(len(b.pitch), bool)
    new[1:] = ~(_consecutive(b) & (np.diff(b.pitch) == 1))
    gstart = np.flatnonzero(new)
    gpiece = b.piece[gstart]
    glen = np.diff(np.append(gstart, len(b.pitch)))
    n_groups = np.bincount(gpiece, minlength=b.n_pieces)
    first_group = np.concatenate([[0], np.cumsum(n_groups)])[:-1]
    col = np.arange(len(gstart)) - first_group[gpiece]
    G = max(1, int(n_groups.max()))
    S = np.zeros((b.n_pieces, G))
    L = np.zeros((b.n_pieces, G))
    S[gpiece, col] = b.pitch[gstart]
    L[gpiece, col] = glen
    return S, L


def grouped_pitch_manhattan_pairs(S: np.ndarray, L: np.ndarray, i: np.ndarray, j: np.ndarray,
                                  S2: np.ndarray | None = None, L2: np.ndarray | None = None,
                                  chunk: int = 4096) -> np.ndarray:
    """Seed 000's distance between pieces ``i`` (of S, L) and ``j`` (of S2, L2; default the same set).

    The seed zips the two group lists (stopping at the shorter) and, inside each pair of groups, zips the
    pitches (stopping at the shorter group), summing |x - y|. With chromatic-run groups that is
    sum_g |first_a[g] - first_b[g]| * min(len_a[g], len_b[g]); padded groups have length 0."""
    S2 = S if S2 is None else S2
    L2 = L if L2 is None else L2
    G = min(S.shape[1], S2.shape[1])
    out = np.empty(len(i))
    for k in range(0, len(i), chunk):
        a, c = i[k:k + chunk], j[k:k + chunk]
        out[k:k + chunk] = (np.abs(S[a, :G] - S2[c, :G]) * np.minimum(L[a, :G], L2[c, :G])).sum(1)
    return out


def grouped_pitch_manhattan(a: Score, b: Score) -> float:
    """Seed 000's grouped-pitch Manhattan distance between two pieces (see the ``_pairs`` version)."""
    ba, bb = NoteBatch.from_scores([a]), NoteBatch.from_scores([b])
    Sa, La = group_arrays(ba)
    Sb, Lb = group_arrays(bb)
    return float(grouped_pitch_manhattan_pairs(Sa, La, np.array([0]), np.array([0]), Sb, Lb)[0])


# ------------------------------------------------------------------ all features at once
SCALAR_FEATURES: dict[str, str] = {
    # name: plain-words description shown in reports
    "n_notes": "number of notes",
    "used_pitches": "distinct pitches used",
    "used_pitch_classes": "distinct pitch classes used",
    "notes_per_bar": "note onsets per bar",
    "pitches_per_bar": "distinct pitches per bar",
    "pitch_classes_per_bar": "distinct pitch classes per bar (bars with notes)",
    "pitch_range": "highest minus lowest pitch (semitones)",
    "pitch_mean": "mean MIDI pitch",
    "pitch_std": "standard deviation of MIDI pitch",
    "avg_pitch_interval": "mean absolute step between consecutive notes (semitones)",
    "avg_ioi": "mean time between distinct onsets (beats)",
    "empty_bar_rate": "fraction of bars with no sounding note",
    "empty_beat_rate": "fraction of beats with no sounding note",
    "in_scale_ratio": "fraction of notes in the piece's key",
    "scale_consistency": "best fraction of notes in any one major/minor scale",
    "polyphony": "mean notes sounding at once",
    "qualified_note_rate": "fraction of notes at least a 32nd long",
    "pitch_entropy": "entropy of the pitch histogram (bits)",
    "pitch_class_entropy": "entropy of the pitch-class histogram (bits)",
}
VECTOR_FEATURES: dict[str, str] = {
    "pitch_class_histogram": "duration-weighted pitch-class histogram (12)",
    "pitch_class_transitions": "pitch-class transition matrix, mgeval's definition (a note starting within "
                               "50 ms of another's end; every pair in chords), normalised per piece (12x12)",
    "pitch_class_transitions_consecutive": "pitch-class transition matrix of consecutive notes, across rests "
                                           "(ours), normalised per piece (12x12)",
    "note_length_histogram": "note-length class histogram (12 or 8)",
    "note_length_transitions": "note-length transition matrix, normalised per piece (12x12 or 8x8)",
}


# a second definition of a feature already in the table: reported, but left out of the headline means so that
# each concept counts once
ALTERNATIVE_FEATURES = {"pitch_class_transitions_consecutive"}


def extract_features(b: NoteBatch, key: tuple[int, str] | None = None,
                     length_classes: str = "mgeval") -> dict[str, np.ndarray]:
    """Every per-piece feature: scalars as [pieces] arrays, histograms/matrices as [pieces, ...] arrays.
    Also the raw count matrices ``*_counts`` used for set averages and the 128-bin pitch histogram."""
    f: dict[str, np.ndarray] = {
        "n_notes": n_notes(b), "used_pitches": used_pitches(b), "used_pitch_classes": used_pitch_classes(b),
        "notes_per_bar": notes_per_bar(b), "pitches_per_bar": pitches_per_bar(b),
        "pitch_classes_per_bar": pitch_classes_per_bar(b), "pitch_range": pitch_range(b),
        "pitch_mean": pitch_mean(b), "pitch_std": pitch_std(b), "avg_pitch_interval": avg_pitch_interval(b),
        "avg_ioi": avg_ioi(b), "empty_bar_rate": empty_bar_rate(b), "empty_beat_rate": empty_beat_rate(b),
        "in_scale_ratio": in_scale_ratio(b, key), "scale_consistency": scale_consistency(b),
        "polyphony": polyphony(b), "qualified_note_rate": qualified_note_rate(b),
        "pitch_entropy": pitch_entropy(b), "pitch_class_entropy": pitch_class_entropy(b),
    }
    pct = pitch_class_transitions(b)
    nlt = note_length_transitions(b, length_classes)
    f["pitch_class_histogram"] = pitch_class_histogram(b)
    f["pitch_class_transitions"] = normalise_total(pct)
    f["pitch_class_transitions_consecutive"] = normalise_total(pitch_class_transitions_consecutive(b))
    f["note_length_histogram"] = note_length_histogram(b, length_classes)
    f["note_length_transitions"] = normalise_total(nlt)
    f["pitch_class_transition_counts"] = pct
    f["note_length_transition_counts"] = nlt
    f["pitch_histogram"] = pitch_histogram(b)
    return f


def piece_features(score: Score, key: tuple[int, str] | None = None,
                   length_classes: str = "mgeval") -> dict[str, float | np.ndarray]:
    """All features of one piece: scalars as floats, the rest as arrays."""
    f = extract_features(NoteBatch.from_scores([score]), key, length_classes)
    return {k: (float(v[0]) if v.ndim == 1 else v[0]) for k, v in f.items()}
