"""Seed 001's piano-roll encoding: whole pieces as ``bars x steps_per_bar x pitches`` binary rolls.

* **Grid.** A bar is 4 quarter-note beats (the seed: "4 beats make one measure") whatever the notated meter,
  and 96 steps per bar, i.e. 24 steps per beat: sixteenths (6 steps), eighth triplets (8 steps) and
  dotted rhythms all land on the grid. 16 bars = 1536 steps = 64 beats per item.
* **Pitch.** Pieces are transposed to C major / A minor (the seed's "central key"); the ``pitches``-wide
  window (35 in the seed) that holds the most note time over the training pieces is kept; notes outside
  it are moved by octaves into it.
* **Notes.** A note is drawn one step shorter than it lasts (at least one step), so that repeated notes
  of the same pitch stay separate runs; decoding adds the step back. For notes on the grid at least two
  steps long (every Essen note) ``roll_to_score(score_to_roll(s))`` gives back ``s`` exactly.
* **Length.** A piece longer than 16 bars gives one item per 16 bars; the last part is kept if it has at
  least ``min_bars`` bars. A shorter piece (or last part) is filled by ``fill``: ``"loop"`` (default)
  repeats it from its start (its length rounded up to whole bars of its own meter) so every item is
  music from end to end; ``"pad"`` leaves silence.
* **Augmentation.** Every training piece is also used transposed by each value of ``augment``
  (semitones); the rolls are stored once, a few pitches wider, and each transposed view is cut out of
  them when a batch is drawn, so augmentation costs no memory.
* **Labels** (for the conditional VAE): ``condition = "meter"`` (the notated time signature; rare ones
  grouped as ``other``), ``"mode"`` (major/minor by Krumhansl-Schmuckler on the pitch histogram) or
  ``"corpus"`` (the part of the title before the first ``:``, e.g. ``erk10``).
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, register_encoding
from .corpora import load_corpus, split_by_piece
from .notes import Score, estimate_key, transposition_to_c_or_a

BEATS_PER_BAR = 4.0


# ---------------------------------------------------------------------------------------------- roll <-> notes
def score_to_roll(score: Score, low: int, n_pitches: int, steps_per_beat: int, n_steps: int,
                  offset_beats: float = 0.0, fill: str = "loop", loop_beats: float | None = None) -> np.ndarray:
    """Notes -> bool roll (n_steps, n_pitches) of the ``n_steps`` steps starting at ``offset_beats``.

    Pitches outside ``[low, low + n_pitches)`` are moved by octaves into it. With ``fill="loop"`` the
    piece repeats every ``loop_beats`` (default: its length) to fill the window."""
    roll = np.zeros((n_steps, n_pitches), dtype=bool)
    if len(score) == 0:
        return roll
    p = score.pitch.astype(np.int64) - low
    while (p < 0).any():
        p[p < 0] += 12
    while (p >= n_pitches).any():
        p[p >= n_pitches] -= 12
    p = np.clip(p, 0, n_pitches - 1)
    s = np.round(score.start * steps_per_beat).astype(np.int64)
    e = np.round((score.start + score.duration) * steps_per_beat).astype(np.int64)
    ln = np.maximum(1, e - s - 1)  # one step shorter: repeated notes stay separate
    window = (int(round(offset_beats * steps_per_beat)), int(round(offset_beats * steps_per_beat)) + n_steps)
    period = None
    if fill == "loop":
        period = int(round((loop_beats or score.length) * steps_per_beat))
        if period <= 0:
            period = None
    reps = [0]
    if period:
        first = (window[0] - int(e.max())) // period
        last = window[1] // period + 1
        reps = range(max(first, 0), last + 1)
    for r in reps:
        shift = (r * period if period else 0) - window[0]
        for pp, ss, ll in zip(p, s + shift, ln):
            a, b = max(ss, 0), min(ss + ll, n_steps)
            if a < b:
                roll[a:b, pp] = True
    return roll


def roll_to_notes(roll: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch index, start step, length in steps) of every run of values above ``threshold``. Vectorised:
    the runs are read off the time differences of the thresholded roll."""
    b = np.asarray(roll) > threshold
    T, P = b.shape
    padded = np.zeros((P, T + 2), dtype=np.int8)
    padded[:, 1:-1] = b.T
    d = np.diff(padded, axis=1)
    sp, st = np.nonzero(d == 1)   # pitch-major order, so starts and ends pair up
    _, en = np.nonzero(d == -1)
    return sp, st, en - st


def roll_to_score(roll: np.ndarray, low: int, steps_per_beat: int, threshold: float = 0.5,
                  tempo: float = 120.0, velocity: int = 90) -> Score:
    """Bool or probability roll -> Score (each run becomes a note one step longer than the run)."""
    sp, st, ln = roll_to_notes(roll, threshold)
    sc = Score(pitch=sp + low, start=st / steps_per_beat, duration=(ln + 1) / steps_per_beat,
               velocity=np.full(len(sp), velocity), tempo=tempo, end=len(roll) / steps_per_beat)
    return sc.sorted()


# ---------------------------------------------------------------------------------------------- labels
def piece_label(score: Score, kind: str) -> str:
    if kind == "meter":
        return f"{score.time_signature[0]}/{score.time_signature[1]}"
    if kind == "mode":
        return estimate_key(score.pitch_class_histogram())[1]
    if kind == "corpus":
        return score.title.split(":")[0] if ":" in score.title else "default"
    raise TunesmithError(f"data.condition must be meter, mode or corpus, not {kind!r}")


# ---------------------------------------------------------------------------------------------- codec
class PianoRollCodec(Codec):
    name = "pianoroll"

    def __init__(self, low: int, pitches: int = 35, bars: int = 16, steps_per_bar: int = 96,
                 labels: list[str] | None = None, condition: str | None = None, threshold: float = 0.5,
                 tempo: float = 120.0, key_normalise: bool = True):
        self.low, self.pitches, self.bars, self.steps_per_bar = int(low), int(pitches), int(bars), int(steps_per_bar)
        if self.steps_per_bar % 4:
            raise TunesmithError("data.steps_per_bar must be a multiple of 4 (a bar is 4 beats)")
        self.labels = list(labels or [])
        self.condition = condition
        self.threshold, self.tempo, self.key_normalise = float(threshold), float(tempo), bool(key_normalise)

    @property
    def steps_per_beat(self) -> int:
        return self.steps_per_bar // 4

    @property
    def n_steps(self) -> int:
        return self.bars * self.steps_per_bar

    @property
    def beats(self) -> float:
        return self.bars * BEATS_PER_BAR

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "low": self.low, "pitches": self.pitches, "bars": self.bars,
                "steps_per_bar": self.steps_per_bar, "labels": self.labels, "condition": self.condition,
                "threshold": self.threshold, "tempo": self.tempo, "key_normalise": self.key_normalise}

    @classmethod
    def from_state(cls, st):
        return cls(st["low"], st["pitches"], st["bars"], st["steps_per_bar"], st.get("labels"),
                   st.get("condition"), st.get("threshold", 0.5), st.get("tempo", 120.0),
                   st.get("key_normalise", True))

    def model_info(self) -> dict[str, Any]:
        return {"pitches": self.pitches, "bars": self.bars, "steps_per_bar": self.steps_per_bar,
                "n_labels": len(self.labels)}

    def label_index(self, label) -> int:
        if not self.labels:
            raise TunesmithError("this model is not conditional: it takes no condition")
        if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(self.labels):
            return int(label)
        if str(label) not in self.labels:
            raise TunesmithError(f"unknown condition {label!r}; this model knows: {', '.join(self.labels)}")
        return self.labels.index(str(label))

    def encode(self, score: Score, fill: str = "loop") -> np.ndarray:
        """The first 16 bars of a piece as a float32 roll (n_steps, pitches), key-normalised like training."""
        if self.key_normalise:
            score = score.transpose(transposition_to_c_or_a(score.estimate_key()))
        loop = _loop_beats(score)
        return score_to_roll(score, self.low, self.pitches, self.steps_per_beat, self.n_steps, 0.0, fill,
                             loop).astype(np.float32)

    def decode(self, roll, threshold: float | None = None, tempo: float | None = None) -> Score:
        roll = roll.detach().cpu().numpy() if torch.is_tensor(roll) else np.asarray(roll)
        roll = roll.reshape(self.n_steps, self.pitches)
        return roll_to_score(roll, self.low, self.steps_per_beat, self.threshold if threshold is None else threshold,
                             tempo or self.tempo)


def _loop_beats(score: Score) -> float:
    bpb = score.beats_per_bar or BEATS_PER_BAR
    return float(np.ceil(score.length / bpb - 1e-6) * bpb) if score.length > 0 else BEATS_PER_BAR


# ---------------------------------------------------------------------------------------------- dataset
class RollData:
    """Rolls stored once (bool, ``pitches + 2*margin`` wide); item ``i`` is piece ``i // A`` transposed by
    ``augment[i % A]``, cut out of the stored roll when a batch is drawn."""

    def __init__(self, rolls: torch.Tensor, labels: torch.Tensor, pitches: int, margin: int, augment=(0,)):
        self.rolls, self.labels, self.pitches, self.margin = rolls, labels, int(pitches), int(margin)
        self.augment = torch.tensor([int(a) for a in augment], dtype=torch.long)
        if (self.augment.abs() > margin).any():
            raise ValueError("augmentation larger than the stored margin")

    def __len__(self) -> int:
        return len(self.rolls) * len(self.augment)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(idx, dtype=torch.long)
        A = len(self.augment)
        piece, shift = idx // A, self.augment[idx % A]
        r = self.rolls[piece]                                   # (B, T, P + 2m) bool
        off = self.margin - shift                               # transposing up k = reading k lower
        cols = off[:, None] + torch.arange(self.pitches)        # (B, P)
        out = torch.gather(r, 2, cols[:, None, :].expand(-1, r.shape[1], -1))
        return {"roll": out.float(), "label": self.labels[piece]}


def choose_low(scores: list[Score], pitches: int) -> int:
    """Lowest pitch of the ``pitches``-wide window holding the most note time."""
    hist = np.zeros(128)
    for s in scores:
        np.add.at(hist, np.clip(s.pitch.astype(int), 0, 127), s.duration)
    if hist.sum() == 0:
        return 60 - pitches // 2
    c = np.concatenate([[0], np.cumsum(hist)])
    best = max(range(0, 129 - pitches), key=lambda lo: (c[lo + pitches] - c[lo], -abs(lo + pitches / 2 - 66)))
    return int(best)


def pieces_to_rolls(scores: list[Score], codec: PianoRollCodec, margin: int, fill: str, min_bars: int
                    ) -> tuple[np.ndarray, list[int]]:
    """Rolls (N, n_steps, pitches + 2 margin) and, for each, the index of its piece."""
    width = codec.pitches + 2 * margin
    low = codec.low - margin
    out, owner = [], []
    for i, sc in enumerate(scores):
        if len(sc) == 0:
            continue
        loop = _loop_beats(sc)
        n_items = max(1, int(np.ceil(sc.length / codec.beats - 1e-6)))
        for k in range(n_items):
            off = k * codec.beats
            rest = sc.length - off
            if k > 0 and rest < min_bars * BEATS_PER_BAR:
                break
            if k > 0:  # the last part loops on itself
                part = sc.select((sc.start >= off - 1e-9))
                part.start = part.start - off
                part.end = None
                roll = score_to_roll(part, low, width, codec.steps_per_beat, codec.n_steps, 0.0, fill,
                                     _loop_beats(part) if rest < codec.beats else None)
            else:
                roll = score_to_roll(sc, low, width, codec.steps_per_beat, codec.n_steps, 0.0, fill, loop)
            out.append(roll)
            owner.append(i)
    if not out:
        raise TunesmithError("no piece has any notes: nothing to train on")
    return np.stack(out), owner


@register_encoding("pianoroll")
def build_pianoroll(dataset: str = "essen-erk", pitches: int = 35, bars: int = 16, steps_per_bar: int = 96,
                    augment: list[int] = (0,), transpose: bool = True, fill: str = "loop", min_bars: int = 4,
                    condition: str | None = None, min_label_fraction: float = 0.05, val_fraction: float = 0.05,
                    split_seed: int = 0, max_pieces: int | None = None, threshold: float = 0.5,
                    tempo: float = 120.0) -> DataBundle:
    """Seed 001's piano rolls (see the module docstring). ``augment`` lists transpositions in semitones
    applied to training pieces (the seed doubled its data this way)."""
    if fill not in ("loop", "pad"):
        raise TunesmithError(f"data.fill must be 'loop' or 'pad', not {fill!r}")
    if not 1 <= pitches <= 128 or bars < 1 or steps_per_bar < 4:
        raise TunesmithError("data.pitches must be 1..128, data.bars >= 1, data.steps_per_bar >= 4")
    scores = [s.pitched() for s in load_corpus(dataset)]
    if max_pieces:
        scores = scores[:max_pieces]
    scores = [s for s in scores if len(s)]
    if not scores:
        raise TunesmithError(f"dataset {dataset!r} has no pitched notes")
    raw_labels = [piece_label(s, condition) for s in scores] if condition else ["all"] * len(scores)
    if transpose:
        scores = [s.transpose(transposition_to_c_or_a(s.estimate_key())) for s in scores]
    labels: list[str] = []
    if condition:
        counts = Counter(raw_labels)
        keep = {k for k, n in counts.items() if n >= min_label_fraction * len(scores)}
        raw_labels = [r if r in keep else "other" for r in raw_labels]
        labels = sorted(set(raw_labels))
        if len(labels) < 2:
            raise TunesmithError(f"data.condition={condition!r} gives only one label ({labels}) on {dataset}: "
                                 "choose another condition or dataset")
    idx_train, idx_val = split_by_piece(list(range(len(scores))), val_fraction, split_seed)
    codec = PianoRollCodec(choose_low([scores[i] for i in idx_train], pitches), pitches, bars, steps_per_bar,
                           labels, condition, threshold, tempo, transpose)
    augment = [int(a) for a in augment] or [0]
    margin = max(abs(a) for a in augment)
    lab_id = {l: i for i, l in enumerate(labels)}

    def make(ids, aug):
        rolls, owner = pieces_to_rolls([scores[i] for i in ids], codec, margin, fill, min_bars)
        lab = torch.tensor([lab_id.get(raw_labels[ids[o]], 0) for o in owner], dtype=torch.long)
        return RollData(torch.from_numpy(rolls), lab, pitches, margin, aug)

    train = make(idx_train, augment)
    val = make(idx_val, [0]) if idx_val else None
    density = float(train.rolls[:, :, margin:margin + pitches].float().mean())
    stats = {"songs": len(scores), "train_songs": len(idx_train), "val_songs": len(idx_val),
             "items": len(train), "train_rolls": len(train.rolls), "val_rolls": len(val.rolls) if val else 0,
             "low": codec.low, "pitches": pitches, "density": round(density, 5), "labels": labels,
             "label_counts": dict(Counter(raw_labels)) if condition else {}}
    print(f"piano rolls: {len(train.rolls)} train x {len(augment)} transpositions, "
          f"{stats['val_rolls']} validation; pitches {codec.low}..{codec.low + pitches - 1}; "
          f"{density:.3%} of cells on", file=sys.stderr, flush=True)
    return DataBundle(train, val, codec, stats, reference=[scores[i] for i in idx_val])
