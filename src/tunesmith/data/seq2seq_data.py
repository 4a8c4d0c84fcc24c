"""Seed 001's seq2seq data: one-hot symbols per time step, notes and chords.

Each 16th-note step (``step`` beats) is one symbol: the pitches that start there joined by ``.`` (``"60"``,
``"60.64.67"``), ``_`` while they are held, ``r`` where a rest starts (the time-step encoding of seed 000
with chords). An item is ``2 * seq_len`` symbols: the encoder reads the first ``seq_len`` (100 in the seed),
the decoder predicts the next ``seq_len`` -- a continuation, which is what generation from a primer needs.
The seed trained its decoder to reproduce the encoder's own input and noted that generations "output a few
good notes and then all zeros"; see docs/autoencoders.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, WindowedStream, register_encoding
from .corpora import load_corpus, split_by_piece
from .notes import Score, transposition_to_c_or_a

HOLD, REST = "_", "r"


def encode_chords(score: Score, step: float = 0.25) -> list[str]:
    """Notes -> symbols; notes starting on the same step form one chord, held for the longest of them."""
    sc = score.pitched().sorted()
    if len(sc) == 0:
        return []
    on = np.round(sc.start / step).astype(int)
    end = np.maximum(on + 1, np.round((sc.start + sc.duration) / step).astype(int))
    out: list[str] = []
    t = 0
    for a in np.unique(on):
        sel = on == a
        if a > t:
            out += [REST] + [HOLD] * (a - t - 1)
        elif a < t:
            del out[a - t:]
        n = int(end[sel].max() - a)
        nxt = on[on > a]
        if len(nxt):
            n = min(n, int(nxt.min() - a))
        out += [".".join(str(int(p)) for p in sorted(set(sc.pitch[sel].tolist())))] + [HOLD] * (n - 1)
        t = a + n
    return out


def decode_chords(tokens, step: float = 0.25, tempo: float = 120.0) -> Score:
    notes, cur, t = [], [], 0
    for tok in tokens:
        tok = str(tok)
        if tok == HOLD:
            for i in cur:
                notes[i][2] += step
        elif tok == REST:
            cur = []
        else:
            cur = []
            for p in tok.split("."):
                notes.append([int(p), t * step, step])
                cur.append(len(notes) - 1)
        t += 1
    return Score.from_notes([tuple(n) for n in notes], tempo=tempo, end=t * step)


class ChordCodec(Codec):
    name = "seq2seq"

    def __init__(self, vocab: list[str], step: float = 0.25, seq_len: int = 100):
        self.vocab = list(vocab)
        self.index = {s: i for i, s in enumerate(self.vocab)}
        self.step, self.seq_len = float(step), int(seq_len)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "vocab": self.vocab, "step": self.step, "seq_len": self.seq_len}

    @classmethod
    def from_state(cls, st):
        return cls(st["vocab"], st["step"], st["seq_len"])

    def model_info(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "seq_len": self.seq_len, "rest_id": self.index[REST]}

    def encode(self, symbols) -> list[int]:
        bad = [s for s in symbols if s not in self.index]
        if bad:
            raise TunesmithError(f"symbol {bad[0]!r} is not in the vocabulary ({len(self.vocab)} symbols: pitches "
                                 f"or chords like 60.64.67, '_' hold, 'r' rest)")
        return [self.index[s] for s in symbols]

    def parse_primer(self, text: str) -> list[int]:
        return self.encode(str(text).split())

    def decode(self, ids, tempo: float = 120.0) -> Score:
        return decode_chords([self.vocab[int(i)] for i in ids], self.step, tempo)


@register_encoding("seq2seq")
def build_seq2seq(dataset: str = "essen-erk", seq_len: int = 100, step: float = 0.25, transpose: bool = True,
                  val_fraction: float = 0.2, split_seed: int = 0, max_pieces: int | None = None,
                  min_count: int = 1) -> DataBundle:
    """Windows of 2 x seq_len symbols (input, continuation) every seq_len symbols; songs joined by rests.
    Chords seen fewer than ``min_count`` times are reduced to their top note."""
    scores = load_corpus(dataset)[:max_pieces] if max_pieces else load_corpus(dataset)
    if transpose:
        scores = [s.transpose(transposition_to_c_or_a(s.estimate_key())) for s in scores]
    songs = [encode_chords(s, step) for s in scores]
    songs = [s for s in songs if s]
    if not songs:
        raise TunesmithError(f"dataset {dataset!r} has no notes")
    from collections import Counter

    counts = Counter(t for s in songs for t in s)
    if min_count > 1:
        songs = [[t if counts[t] >= min_count or "." not in t else t.split(".")[-1] for t in s] for s in songs]
    symbols = sorted({t for s in songs for t in s} - {HOLD, REST}, key=lambda t: [int(x) for x in t.split(".")])
    codec = ChordCodec([REST, HOLD] + symbols, step, seq_len)
    train, val = split_by_piece(songs, val_fraction, split_seed)

    def stream(ss):
        ids: list[int] = []
        for s in ss:
            ids += codec.encode(s) + [codec.index[REST]] * 4
        return torch.tensor(ids, dtype=torch.long)

    tr = stream(train)
    train_ds = WindowedStream(tr, 2 * seq_len, seq_len)
    val_ds = None
    if val:
        vs = stream(val)
        if len(vs) >= 2 * seq_len:
            val_ds = WindowedStream(vs, 2 * seq_len, seq_len)
    stats = {"songs": len(songs), "train_songs": len(train), "val_songs": len(val), "train_tokens": len(tr),
             "vocab_size": len(codec.vocab), "items": len(train_ds)}
    return DataBundle(train_ds, val_ds, codec, stats, reference=None)
