"""The one in-memory note representation that sits between file formats and encodings.

A :class:`Score` is a set of notes held as parallel numpy arrays (pitch, onset, duration, velocity,
track), times in quarter-note beats. Every encoding converts to and from it, and every metric reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Krumhansl-Kessler key profiles (major, minor), tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 10])  # natural minor


@dataclass
class Score:
    """Notes as parallel arrays, in beats (quarter notes)."""

    pitch: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    duration: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    track: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    tempo: float = 120.0  # quarter notes per minute
    time_signature: tuple[int, int] = (4, 4)
    key: tuple[int, str] | None = None  # (tonic pitch class, "major"|"minor") when known
    title: str = ""
    programs: dict[int, int] = field(default_factory=dict)  # track -> General MIDI program
    drum_tracks: tuple[int, ...] = ()
    end: float | None = None  # explicit end in beats (trailing rests); None = end of last note
    pickup: float = 0.0  # length in beats of an incomplete first bar (anacrusis); 0 = starts on a downbeat

    def __post_init__(self) -> None:
        self.pitch = np.asarray(self.pitch, np.int16).reshape(-1)
        n = len(self.pitch)
        self.start = np.asarray(self.start, np.float64).reshape(-1)
        self.duration = np.asarray(self.duration, np.float64).reshape(-1)
        self.velocity = (np.full(n, 90, np.int16) if np.size(self.velocity) == 0 and n
                         else np.asarray(self.velocity, np.int16).reshape(-1))
        self.track = (np.zeros(n, np.int16) if np.size(self.track) == 0 and n
                      else np.asarray(self.track, np.int16).reshape(-1))
        for name in ("start", "duration", "velocity", "track"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Score.{name} has {len(getattr(self, name))} values for {n} pitches")

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def notes_end(self) -> float:
        """The end of the last note in beats (0 without notes), whatever the explicit end says."""
        return float(np.max(self.start + self.duration)) if len(self) else 0.0

    @property
    def length(self) -> float:
        """Length in beats: the explicit end, or the end of the last note."""
        return max(self.notes_end, self.end or 0.0)

    @property
    def beats_per_bar(self) -> float:
        num, den = self.time_signature
        return num * 4.0 / den

    def sorted(self) -> "Score":
        """Notes ordered by onset, then track, then pitch (highest first)."""
        order = np.lexsort((-self.pitch.astype(np.int32), self.track, self.start))
        return self.select(order)

    def select(self, index) -> "Score":
        """A score with a subset (boolean mask or index array) of the notes, same metadata."""
        return Score(self.pitch[index], self.start[index], self.duration[index], self.velocity[index],
                     self.track[index], self.tempo, self.time_signature, self.key, self.title,
                     dict(self.programs), self.drum_tracks, self.end, self.pickup)

    def transpose(self, semitones: int) -> "Score":
        s = self.select(slice(None))
        s.pitch = (self.pitch.astype(np.int32) + int(semitones)).astype(np.int16)
        if self.key is not None:
            s.key = ((self.key[0] + int(semitones)) % 12, self.key[1])
        return s

    def pitched(self) -> "Score":
        """Without drum tracks."""
        if not self.drum_tracks:
            return self
        return self.select(~np.isin(self.track, self.drum_tracks))

    def notes(self) -> list[tuple[int, float, float]]:
        """(pitch, start, duration) tuples in onset order: handy for tests and printing."""
        s = self.sorted()
        return [(int(p), float(a), float(d)) for p, a, d in zip(s.pitch, s.start, s.duration)]

    @classmethod
    def from_notes(cls, notes, **kw) -> "Score":
        """From (pitch, start, duration[, velocity[, track]]) tuples."""
        rows = list(notes)
        if not rows:
            return cls(**kw)
        cols = list(zip(*rows))
        return cls(pitch=cols[0], start=cols[1], duration=cols[2],
                   velocity=cols[3] if len(cols) > 3 else (), track=cols[4] if len(cols) > 4 else (), **kw)

    # ------------------------------------------------------------------ harmony
    def pitch_class_histogram(self) -> np.ndarray:
        h = np.bincount(self.pitch.astype(np.int64) % 12, weights=self.duration, minlength=12)
        return h / h.sum() if h.sum() > 0 else h

    def estimate_key(self) -> tuple[int, str]:
        """The notated key when known, else Krumhansl-Schmuckler on the duration-weighted histogram."""
        if self.key is not None:
            return self.key
        return estimate_key(self.pitch_class_histogram())

    def monophonic(self) -> "Score":
        """The top voice: at each onset keep the highest note and cut it where the next onset begins."""
        if len(self) == 0:
            return self
        s = self.pitched().sorted()
        onsets, first = np.unique(s.start, return_index=True)  # sorted() puts the highest pitch first
        m = s.select(first)
        nxt = np.append(onsets[1:], np.inf)
        m.duration = np.minimum(m.duration, nxt - onsets)
        return m


def estimate_key(histogram: np.ndarray) -> tuple[int, str]:
    """Krumhansl-Schmuckler key finding: correlate a pitch-class histogram with the 24 rotated profiles."""
    h = np.asarray(histogram, float)
    if h.sum() == 0:
        return (0, "major")
    best, best_r = (0, "major"), -np.inf
    for mode, prof in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(h, np.roll(prof, tonic))[0, 1]
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best


def scale_pitch_classes(tonic: int, mode: str) -> np.ndarray:
    return (np.asarray(MAJOR_SCALE if mode == "major" else MINOR_SCALE) + tonic) % 12


def transposition_to_c_or_a(key: tuple[int, str]) -> int:
    """Semitones that move a key to C major / A minor, as seed 000 computes them with music21:
    the interval from the tonic in octave 4 to C4 (major) or A4 (minor)."""
    tonic, mode = key
    return (0 if mode == "major" else 9) - tonic
