"""Seed 001's LSTM-GAN data: sequences of 100 (MIDI pitch, note duration, rest duration) tuples.

The seed computes ``note duration = (off_k - on_k) * BPM/60`` and ``rest duration = (on_{k+1} - on_k) *
BPM/60`` -- so its "rest duration" is really the inter-onset interval (IOI). Both are quantised to the
nearest of {0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 16, 32} quarter notes. ``rest = "ioi"`` (default)
is the seed's definition; ``rest = "gap"`` stores the silence between a note's end and the next onset
instead (0 is then added to the value set). Melodies are reduced to their top voice.

The networks see each feature standardised with the training set's mean and standard deviation (the seed
feeds raw values into a linear output; standardising is the minimum to make that trainable). Decoding
rounds the pitch (clamped to the piano's 21..108) and snaps both durations to the value set.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, TensorData, register_encoding
from .notes import Score
from .essen import SEED_DURATIONS, prepared_songs

TUPLE_DURATIONS = (0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 32.0)


def quantise(values, allowed) -> np.ndarray:
    a = np.asarray(allowed, float)
    v = np.asarray(values, float)
    return a[np.abs(v[..., None] - a).argmin(-1)]


def score_to_tuples(score: Score, allowed=TUPLE_DURATIONS, rest: str = "ioi") -> np.ndarray:
    """Score -> (n, 3) float array of (pitch, note duration, rest duration), durations quantised."""
    mel = score.monophonic()
    if len(mel) == 0:
        return np.zeros((0, 3))
    on, dur = mel.start, mel.duration
    end = max(score.length, float(on[-1] + dur[-1]))
    nxt = np.append(on[1:], end)
    r = nxt - on if rest == "ioi" else np.maximum(nxt - (on + dur), 0.0)
    if rest == "ioi":  # the last note: its own duration (no next onset)
        r[-1] = max(r[-1], dur[-1])
    allowed_r = allowed if rest == "ioi" else (0.0,) + tuple(allowed)
    return np.stack([mel.pitch.astype(float), quantise(dur, allowed), quantise(r, allowed_r)], 1)


def tuples_to_score(tuples, rest: str = "ioi", tempo: float = 120.0) -> Score:
    """(n, 3) (pitch, duration, rest) -> Score. With ``ioi`` a note longer than its IOI is cut there."""
    t, notes = 0.0, []
    for p, d, r in np.asarray(tuples, float).reshape(-1, 3):
        dd = min(d, r) if rest == "ioi" else d
        notes.append((int(p), t, float(dd)))
        t += r if rest == "ioi" else d + r
    return Score.from_notes(notes, tempo=tempo, end=t)


class TupleCodec(Codec):
    name = "tuples"

    def __init__(self, mean, std, seq_len: int = 100, durations=TUPLE_DURATIONS, rest: str = "ioi"):
        self.mean, self.std = [float(x) for x in mean], [float(x) for x in std]
        self.seq_len, self.durations, self.rest = int(seq_len), [float(d) for d in durations], rest

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "mean": self.mean, "std": self.std, "seq_len": self.seq_len,
                "durations": self.durations, "rest": self.rest}

    @classmethod
    def from_state(cls, s):
        return cls(s["mean"], s["std"], s["seq_len"], s["durations"], s["rest"])

    def model_info(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len}

    def normalise(self, tuples) -> np.ndarray:
        return (np.asarray(tuples, float) - self.mean) / self.std

    def snap(self, values) -> np.ndarray:
        """Network values (standardised) -> valid tuples: rounded pitch, quantised durations."""
        v = np.asarray(values, float).reshape(-1, 3) * self.std + self.mean
        p = np.clip(np.round(v[:, 0]), 21, 108)
        allowed_r = self.durations if self.rest == "ioi" else [0.0] + self.durations
        return np.stack([p, quantise(v[:, 1], self.durations), quantise(v[:, 2], allowed_r)], 1)

    def decode(self, values, tempo: float = 120.0) -> Score:
        return tuples_to_score(self.snap(values), self.rest, tempo)


@register_encoding("tuples")
def build_tuples(dataset: str = "essen-erk", seq_len: int = 100, stride: int = 25, rest: str = "ioi",
                 durations: list[float] = TUPLE_DURATIONS, filter_durations: list[float] = SEED_DURATIONS,
                 transpose: bool = True, val_fraction: float = 0.1, split_seed: int = 0,
                 max_pieces: int | None = None) -> DataBundle:
    """Windows of ``seq_len`` tuples every ``stride`` tuples over the concatenated training melodies."""
    if rest not in ("ioi", "gap"):
        raise TunesmithError(f"data.rest must be 'ioi' (the seed's onset-to-onset) or 'gap', not {rest!r}")
    train, val = prepared_songs(dataset, filter_durations, 0.25, transpose, val_fraction, split_seed, max_pieces)
    stream = np.concatenate([score_to_tuples(sc, durations, rest) for sc in train])
    if len(stream) < seq_len:
        raise TunesmithError(f"only {len(stream)} notes: fewer than one sequence of {seq_len}")
    mean, std = stream.mean(0), stream.std(0) + 1e-6
    codec = TupleCodec(mean, std, seq_len, durations, rest)
    starts = np.arange(0, len(stream) - seq_len + 1, int(stride))
    windows = np.stack([stream[s:s + seq_len] for s in starts])
    ds = TensorData(tuples=torch.tensor(codec.normalise(windows), dtype=torch.float32))
    stats = {"train_songs": len(train), "val_songs": len(val), "train_notes": len(stream), "items": len(ds)}
    return DataBundle(ds, None, codec, stats, reference=val)
