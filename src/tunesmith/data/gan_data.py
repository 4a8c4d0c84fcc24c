"""Seed 000's GAN data: the Essen Erk melodies as one long sequence of note indices, cut into windows of
100 notes (stride 1, as the seed's ``prepare_sequences``).

The seed maps each distinct pitch name to an integer in sorted order and scales it to [-1, 1] with
``(i - V/2) / (V/2)`` (the models do the scaling; the data holds the integer indices). Generated indices
are read back as ``int(x * V/2 + V/2)``; an index outside the vocabulary becomes the seed's fallback note
'C5' (MIDI 72). Every note lasts ``note_duration`` beats (the seed writes notes 0.5 beats apart): this
representation has no rhythm.

The melodies are the foundation's (``essen.prepared_songs``: duration-filtered, transposed to C major /
A minor, split by song), so every Essen model is evaluated against the same held-out songs.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, WindowedStream, register_encoding
from .notes import Score
from .essen import SEED_DURATIONS, prepared_songs

FALLBACK_PITCH = 72  # music21 'C5'


def song_pitches(score: Score) -> list[int]:
    return [int(p) for p in score.monophonic().pitch]


class GanNotesCodec(Codec):
    """Index <-> MIDI pitch; one fixed-length note per index."""

    name = "gan_notes"

    def __init__(self, pitches: list[int], seq_len: int = 100, note_duration: float = 0.5,
                 fallback_pitch: int = FALLBACK_PITCH):
        self.pitches = [int(p) for p in pitches]
        self.index = {p: i for i, p in enumerate(self.pitches)}
        self.seq_len, self.note_duration, self.fallback_pitch = int(seq_len), float(note_duration), int(fallback_pitch)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "pitches": self.pitches, "seq_len": self.seq_len,
                "note_duration": self.note_duration, "fallback_pitch": self.fallback_pitch}

    @classmethod
    def from_state(cls, state):
        return cls(state["pitches"], state["seq_len"], state["note_duration"], state.get("fallback_pitch", 72))

    def model_info(self) -> dict[str, Any]:
        return {"vocab_size": len(self.pitches), "seq_len": self.seq_len}

    def encode(self, pitches) -> list[int]:
        bad = [p for p in pitches if int(p) not in self.index]
        if bad:
            raise TunesmithError(f"pitch {bad[0]} is not in the vocabulary ({self.pitches[0]}..{self.pitches[-1]})")
        return [self.index[int(p)] for p in pitches]

    def decode(self, ids, tempo: float = 120.0) -> Score:
        """Indices -> notes ``note_duration`` apart; -1 or out-of-range indices -> the fallback pitch."""
        ps = [self.pitches[i] if 0 <= int(i) < len(self.pitches) else self.fallback_pitch for i in ids]
        d = self.note_duration
        return Score.from_notes(((p, k * d, d) for k, p in enumerate(ps)), tempo=tempo)


@register_encoding("gan_notes")
def build_gan_notes(dataset: str = "essen-erk", seq_len: int = 100, stride: int = 1, note_duration: float = 0.5,
                    durations: list[float] = SEED_DURATIONS, transpose: bool = True, val_fraction: float = 0.1,
                    split_seed: int = 0, max_pieces: int | None = None) -> DataBundle:
    train, val = prepared_songs(dataset, durations, 0.25, transpose, val_fraction, split_seed, max_pieces)
    pitches = sorted({p for sc in train + val for p in song_pitches(sc)})
    codec = GanNotesCodec(pitches, seq_len, note_duration)
    stream = torch.tensor([i for sc in train for i in codec.encode(song_pitches(sc))], dtype=torch.long)
    ds = WindowedStream(stream, seq_len, int(stride))
    stats = {"songs": len(train) + len(val), "train_songs": len(train), "val_songs": len(val),
             "train_notes": len(stream), "items": len(ds), "vocab_size": len(pitches)}
    return DataBundle(ds, None, codec, stats, reference=val)
