"""Seed 002's token sequences: 88 piano keys + one padding token, sequences of 64.

Token ``k`` (0..87) is MIDI pitch ``k + 21``; token 88 is padding, and a rest when decoded. A piece becomes
the pitches of its notes in onset order (highest first within a chord, as MIDI files list them), notes
outside the piano's range dropped; it is cut into windows of ``seq_len`` every ``stride`` tokens and the
last window is padded with 88. Decoding writes one note every ``note_duration`` beats (the seed keeps only
pitches: this representation has no rhythm).

Data: ``maestro_dir`` (a MAESTRO folder, its official train/validation split, see ``data/maestro.py``) or
a built-in corpus (default: the Essen Erk melodies prepared as for every Essen model, so the evaluation
reference is the same held-out songs).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, TensorData, register_encoding
from .corpora import load_corpus, split_by_piece
from .notes import Score
from .essen import SEED_DURATIONS, prepared_songs

LOWEST, N_KEYS = 21, 88
PAD = N_KEYS


def score_tokens(score: Score) -> list[int]:
    s = score.pitched().sorted()
    return [int(p) - LOWEST for p in s.pitch if LOWEST <= int(p) < LOWEST + N_KEYS]


def windows(tokens: list[int], seq_len: int, stride: int) -> list[list[int]]:
    out = []
    for a in range(0, max(1, len(tokens) - seq_len + stride), stride):
        w = tokens[a:a + seq_len]
        if not w:
            break
        out.append(w + [PAD] * (seq_len - len(w)))
        if a + seq_len >= len(tokens):
            break
    return out


class Tokens88Codec(Codec):
    name = "tokens88"

    def __init__(self, seq_len: int = 64, note_duration: float = 0.5):
        self.seq_len, self.note_duration = int(seq_len), float(note_duration)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "seq_len": self.seq_len, "note_duration": self.note_duration}

    @classmethod
    def from_state(cls, s):
        return cls(s["seq_len"], s["note_duration"])

    def model_info(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "vocab_size": N_KEYS + 1}

    def decode(self, tokens, tempo: float = 120.0) -> Score:
        d = self.note_duration
        notes = [(int(t) + LOWEST, k * d, d) for k, t in enumerate(tokens) if 0 <= int(t) < N_KEYS]
        return Score.from_notes(notes, tempo=tempo, end=len(tokens) * d)


@register_encoding("tokens88")
def build_tokens88(dataset: str = "essen-erk", maestro_dir: str | None = None, seq_len: int = 64,
                   stride: int = 32, note_duration: float = 0.5, transpose: bool = True, val_fraction: float = 0.1,
                   split_seed: int = 0, max_pieces: int | None = None) -> DataBundle:
    if maestro_dir:
        from .maestro import load_maestro

        sp = load_maestro(maestro_dir, ("train", "validation"), max_pieces)
        train, val = sp["train"], sp["validation"]
        source = f"MAESTRO {maestro_dir}"
    elif dataset.startswith("essen"):
        train, val = prepared_songs(dataset, SEED_DURATIONS, 0.25, transpose, val_fraction, split_seed, max_pieces)
        source = dataset
    else:
        scores = load_corpus(dataset)[: max_pieces or None]
        train, val = split_by_piece(scores, val_fraction, split_seed)
        source = dataset
    rows = [w for sc in train for w in windows(score_tokens(sc), seq_len, stride)]
    if not rows:
        raise TunesmithError(f"no notes in the piano range in the training pieces of {source}")
    codec = Tokens88Codec(seq_len, note_duration)
    ds = TensorData(tokens=torch.tensor(np.array(rows), dtype=torch.long))
    stats = {"source": source, "train_songs": len(train), "val_songs": len(val), "items": len(ds)}
    return DataBundle(ds, None, codec, stats, reference=val)
