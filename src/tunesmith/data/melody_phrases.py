"""Melody phrases for the melody VAE: the LSTM's time-step symbols, cut into fixed-length phrases.

The songs are the ones the ``timestep`` encoding keeps (same duration filter, transposed to C major /
A minor, the same split by song and the same vocabulary), so a melody VAE and the Essen LSTM see the same
music. A bar is 4 beats = 16 steps whatever the notated meter (as the piano-roll encoding), so a 4-bar
phrase is 64 symbols. Training phrases start every ``stride`` steps (default one bar); a song shorter than
one phrase is padded with a rest. A phrase that starts inside a held note or rest starts with that
note's pitch (or ``r``) instead of ``_``, so every phrase decodes on its own.

**Condition labels** (``condition = ["metre", "mode"]``, docs/conditioning.md "Melody VAE"): each phrase
carries its song's label tokens (``<metre=3/4>``, ``<mode=minor>``; :func:`~.timestep.song_labels`), which join
the vocabulary after the notes (the note ids are those of the unconditioned encoding), and the step in its song
it starts at (``since``: the decoder's position in the bar). Without ``condition`` the data is unchanged.

**Transposition augmentation** (``augment``, semitones): every phrase is stored once; a batch shifts each
item by one of the shifts that keeps all its pitches inside the vocabulary (an id lookup table per shift).
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import DataBundle, register_encoding
from .corpora import load_corpus, split_by_piece
from .notes import Score
from .essen import SEED_DURATIONS
from .timestep import HOLD, REST, TimeStepCodec, check_condition, encode_corpus, encode_score, song_labels


class PhraseCodec(TimeStepCodec):
    """A :class:`TimeStepCodec` whose items are phrases of ``phrase_len`` symbols (``seq_len``)."""

    name = "melody_phrase"

    def __init__(self, vocab: list[str], step: float = 0.25, seq_len: int = 64, target: str = "all",
                 steps_per_bar: int = 16):
        super().__init__(vocab, step, seq_len, target)
        self.steps_per_bar = int(steps_per_bar)
        self.threshold = 0.5  # the web app's VAE contract; phrases are decoded by argmax, it is unused

    @property
    def phrase_len(self) -> int:
        return self.seq_len

    @property
    def bars(self) -> int:
        return self.seq_len // self.steps_per_bar

    @property
    def beats(self) -> float:
        return self.seq_len * self.step

    def state(self) -> dict[str, Any]:
        return {**super().state(), "steps_per_bar": self.steps_per_bar}

    @classmethod
    def from_state(cls, state):
        return cls(state["vocab"], state["step"], state["seq_len"], state.get("target", "all"),
                   state.get("steps_per_bar", 16))

    def model_info(self) -> dict[str, Any]:
        # the vocabulary: the melody VAE's attribute regulariser (attr_reg) computes attributes from it
        info = {"vocab_size": len(self.vocab), "phrase_len": self.seq_len, "steps_per_bar": self.steps_per_bar,
                "vocab": list(self.vocab)}
        if self.labels:  # a conditioned model (data.condition): its label kinds and each metre's bar length
            info["label_groups"] = self.label_groups
            info["bar_steps"] = self.bar_steps
        return info

    def pitch_table(self) -> np.ndarray:
        """MIDI pitch of each vocabulary id, -1 for '/', '_' and 'r'."""
        return np.array([int(s) if s.isdigit() else -1 for s in self.vocab])

    def decode(self, ids, tempo: float = 120.0, threshold: float | None = None) -> Score:
        """Phrase ids -> Score (``threshold`` is accepted for the web app's VAE contract and ignored)."""
        if torch.is_tensor(ids):
            ids = ids.tolist()
        return super().decode(ids, tempo=tempo)

    # ------------------------------------------------------------------ phrases of a piece
    def phrases(self, score: Score, min_fill: float = 0.5, transpose: bool = False) -> list[list[int]]:
        """A piece cut into consecutive phrases of ``phrase_len`` ids (the last, if at least ``min_fill`` of
        a phrase, padded with a rest). Pitches outside the vocabulary are moved by octaves into it."""
        from .notes import transposition_to_c_or_a

        if transpose:
            score = score.transpose(transposition_to_c_or_a(score.estimate_key()))
        syms = fold_octaves(encode_score(score, self.step), self.vocab)
        return cut_phrases(syms, self.seq_len, self.seq_len, pad_short=True, min_fill=min_fill,
                           encode=self.encode)


def fold_octaves(symbols: list[str], vocab: list[str]) -> list[str]:
    pitches = sorted(int(s) for s in vocab if s.isdigit())
    lo, hi = pitches[0], pitches[-1]
    have = set(pitches)
    out = []
    for s in symbols:
        if s.isdigit():
            p = int(s)
            while p < lo:
                p += 12
            while p > hi:
                p -= 12
            if p not in have:  # a gap in the vocabulary: nearest pitch that exists
                p = min(have, key=lambda q: (abs(q - p), q))
            s = str(p)
        out.append(s)
    return out


def start_symbol(symbols: list[str], i: int) -> str:
    """The symbol a phrase starting at ``i`` begins with: the sounding pitch or rest when ``i`` is held."""
    if symbols[i] != HOLD:
        return symbols[i]
    for j in range(i - 1, -1, -1):
        if symbols[j] != HOLD:
            return symbols[j]
    return REST


def cut_phrases(symbols: list[str], length: int, stride: int, pad_short: bool = True, min_fill: float = 0.5,
                encode=None, starts_out: list | None = None) -> list:
    """Phrases of ``length`` symbols starting every ``stride`` symbols. The tail after the last full
    phrase becomes one more phrase (padded with a rest) when it is at least ``min_fill`` of a phrase or
    when the song is shorter than one phrase (``pad_short``)."""
    out = []
    n = len(symbols)
    starts = list(range(0, max(n - length, 0) + 1, stride)) if n >= length else []
    for s in starts:
        w = [start_symbol(symbols, s)] + symbols[s + 1:s + length]
        out.append(w)
    tail = (starts[-1] + length) if starts else 0
    first = list(starts)
    if stride >= length:  # consecutive phrases: the rest of the song
        rest = n - tail
        if rest > 0 and (rest >= min_fill * length or (not starts and pad_short)):
            w = [start_symbol(symbols, tail)] + symbols[tail + 1:] + [REST] + [HOLD] * (length - rest - 1)
            out.append(w[:length])
            first.append(tail)
    elif n < length and pad_short:
        out.append(list(symbols[:1]) + symbols[1:] + [REST] + [HOLD] * (length - n - 1))
        first.append(0)
    if starts_out is not None:  # the step of the song each phrase starts at
        starts_out.extend(first)
    if encode is not None:
        out = [encode(w) for w in out]
    return out


class PhraseData:
    """Phrases (N, L) stored once; item ``i`` is phrase ``pairs[i, 0]`` shifted by ``shifts[pairs[i, 1]]``."""

    def __init__(self, phrases: np.ndarray, codec: PhraseCodec, augment=(0,), labels: np.ndarray | None = None,
                 since: np.ndarray | None = None):
        self.phrases = torch.as_tensor(np.asarray(phrases), dtype=torch.long)
        # a conditioned encoding: (N, kinds) label-token ids of each phrase's song and the step it starts at
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.since = None if since is None else torch.as_tensor(np.asarray(since), dtype=torch.long)
        pt = codec.pitch_table()
        self.pitch_table, self.rest_id, self.hold_id = pt, codec.index[REST], codec.index[HOLD]
        index = {p: i for i, p in enumerate(pt) if p >= 0}
        self.shifts = [int(s) for s in augment]
        tables, ok = [], []
        for s in self.shifts:
            tab = np.arange(len(pt))
            valid = np.ones(len(pt), bool)
            for i, p in enumerate(pt):
                if p >= 0:
                    if p + s in index:
                        tab[i] = index[p + s]
                    else:
                        valid[i] = False
            tables.append(tab)
            ok.append(valid[self.phrases.numpy()].all(1))
        self.tables = torch.as_tensor(np.stack(tables), dtype=torch.long)
        pairs = [(i, k) for k in range(len(self.shifts)) for i in np.nonzero(ok[k])[0]]
        if not pairs:
            raise TunesmithError("no phrase fits the vocabulary: check data.augment")
        self.pairs = torch.as_tensor(np.array(pairs, dtype=np.int64).reshape(-1, 2))

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.pairs[idx]
        ph = self.phrases[p[:, 0]]
        out = {"tokens": self.tables[p[:, 1, None], ph]}
        if self.labels is not None:
            out["labels"], out["since"] = self.labels[p[:, 0]], self.since[p[:, 0]]
        return out


def song_phrases(songs: list[list[str]], codec: PhraseCodec, length: int, stride: int, min_notes: int,
                 labels: list[list[str]] | None = None):
    """(N, length) phrase ids and, with ``labels`` (each song's label tokens), (N, kinds) label ids and (N,) start
    steps (both None without)."""
    rows, labs, since = [], [], []
    for i, syms in enumerate(songs):
        starts: list = []
        ws = cut_phrases(syms, length, stride, pad_short=True, encode=codec.encode, starts_out=starts)
        rows += ws
        since += starts
        if labels is not None:
            labs += [codec.encode(labels[i])] * len(ws)
    arr = np.array(rows, dtype=np.int64).reshape(-1, length)
    pt = codec.pitch_table()
    keep = (pt[arr] >= 0).sum(1) >= min_notes
    if labels is None:
        return arr[keep], None, None
    lab = np.array(labs, dtype=np.int64).reshape(len(arr), -1)
    return arr[keep], lab[keep], np.array(since, dtype=np.int64)[keep]


@register_encoding("melody_phrases")
def build_melody_phrases(dataset: str = "essen-erk", bars: int = 4, steps_per_bar: int = 16, step: float = 0.25,
                         stride: int | None = None, durations: list[float] = SEED_DURATIONS,
                         transpose: bool = True, augment: list[int] = (0,), val_fraction: float = 0.1,
                         split_seed: int = 0, min_notes: int = 2, max_pieces: int | None = None,
                         source: str | None = None, condition=None) -> DataBundle:
    """Phrases of ``bars`` x ``steps_per_bar`` symbols from the songs the LSTM trains on (same filter,
    transposition, split by song and vocabulary). Validation phrases are consecutive (no overlap), without
    augmentation; ``reference`` holds the held-out songs. ``condition = ["metre", "mode"]``: each phrase carries
    its song's labels (a kind every song shares is dropped, as in the ``timestep`` encoding)."""
    if bars < 1 or steps_per_bar < 1:
        raise TunesmithError("data.bars and data.steps_per_bar must be >= 1")
    length = bars * steps_per_bar
    stride = int(stride or steps_per_bar)
    if stride < 1:
        raise TunesmithError("data.stride must be >= 1 step")
    scores = load_corpus(source or dataset)
    if max_pieces:
        scores = scores[:max_pieces]
    kept, reasons = encode_corpus(scores, step, durations, transpose)
    condition = check_condition(condition)
    if condition:  # a kind every song shares (e.g. MIDI files without time signatures read as 4/4) is dropped
        values = {k: {song_labels(sc, [k])[0] for sc, _ in kept} for k in condition}
        for k, v in values.items():
            if len(v) < 2:
                print(f"data.condition: every song has {next(iter(v), 'no ' + k)}: not conditioned on {k}",
                      file=sys.stderr, flush=True)
        condition = [k for k in condition if len(values[k]) >= 2]
    train, val = split_by_piece(kept, val_fraction, split_seed)
    labels_of = (lambda part: [song_labels(sc, condition) for sc, _ in part]) if condition else (lambda part: None)
    vocab = TimeStepCodec.from_corpus([s for _, s in kept] + (labels_of(kept) or []), step, length).vocab
    codec = PhraseCodec(vocab, step, length, steps_per_bar=steps_per_bar)
    tr, labels, since = song_phrases([s for _, s in train], codec, length, stride, min_notes, labels_of(train))
    if len(tr) == 0:
        raise TunesmithError("no training phrase: use more songs or fewer data.bars")
    train_ds = PhraseData(tr, codec, augment, labels, since)
    val_ds = None
    if val:
        va, labels, since = song_phrases([s for _, s in val], codec, length, length, min_notes, labels_of(val))
        val_ds = PhraseData(va, codec, (0,), labels, since) if len(va) else None
    stats = {"songs": len(scores), "kept": len(kept), "dropped": dict(reasons), "train_songs": len(train),
             "val_songs": len(val), "items": len(train_ds), "train_phrases": int(len(tr)),
             "val_phrases": int(len(val_ds)) if val_ds is not None else 0, "phrase_len": length,
             "augment": [int(a) for a in augment], "vocab_size": len(codec.vocab)}
    if condition:
        stats["condition"] = condition
        stats["labels"] = dict(Counter(x for labs in labels_of(train) for x in labs))
    return DataBundle(train_ds, val_ds, codec, stats, reference=[sc for sc, _ in val])
