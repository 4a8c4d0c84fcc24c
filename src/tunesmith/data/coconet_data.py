"""Coconet's data (Huang et al. 2017): four-voice Bach chorales as one pitch per voice per 16th note.

A chorale becomes an int grid ``(4 voices, T steps)`` holding, per voice and 16th note, the sounding MIDI
pitch or :data:`REST` (-1). The model sees it one-hot over ``ROWS`` rows: row 0 is "rest", rows 1.. are the
pitches ``LOW .. HIGH`` (so pitch p is row ``p - LOW + 1``). The chorales span MIDI 36..81; the grid leaves
room for transposition.

Same split as ``gan_chorales`` (``chorale_roll``): the 351 four-voice chorales of music21's corpus, split by
chorale with ``split_by_piece(scores, 0.1, seed 0)`` (316 / 35). Training items are windows of ``seq_len``
steps every ``hop`` steps, each transposed by a random shift in ``[-transpose, +transpose]`` semitones,
limited per window so that no note leaves the grid. Validation items are held-out windows with a fixed random
erasure mask (so the validation loss is comparable across checkpoints).

Like any frame grid, a voice that repeats a pitch becomes one long note when decoded (Coconet has the same
limit); the harmoniser keeps the given melody's own notes, so a given soprano is never merged.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, register_encoding
from .corpora import load_corpus, split_by_piece
from .notes import Score

VOICES = ("soprano", "alto", "tenor", "bass")
REST = -1
LOW, HIGH = 30, 88  # inclusive pitch range of the grid
ROWS = HIGH - LOW + 2  # + the rest row


def chorale_split(dataset: str = "bach-chorales", val_fraction: float = 0.1, split_seed: int = 0,
                  max_pieces: int | None = None) -> tuple[list[Score], list[Score]]:
    """The chorale split every chorale model uses (``chorale_roll`` does the same): (train, held-out)."""
    scores = [s for s in load_corpus(dataset) if len(set(s.track.tolist())) >= 4]
    if max_pieces:
        scores = scores[:max_pieces]
    if not scores:
        raise TunesmithError(f"{dataset} has no pieces with 4 voices")
    return split_by_piece(scores, val_fraction, split_seed)


def score_to_grid(score: Score, step: float = 0.25, n_steps: int | None = None, n_voices: int = 4) -> np.ndarray:
    """Score (tracks 0..3 = S, A, T, B) -> int16 (n_voices, T): the pitch sounding in each voice at each
    step, REST where none. Where a voice has two notes at once (rare), the higher one wins."""
    T = n_steps if n_steps is not None else int(np.ceil(score.length / step - 1e-9))
    grid = np.full((n_voices, max(T, 0)), REST, np.int16)
    order = np.argsort(score.pitch, kind="stable")  # higher pitches written last, so they win
    for p, s, d, t in zip(score.pitch[order], score.start[order], score.duration[order], score.track[order]):
        if not 0 <= t < n_voices:
            continue
        a = int(round(s / step))
        b = max(a + 1, int(round((s + d) / step)))
        grid[int(t), a:min(b, T)] = p
    return grid


def grid_to_score(grid, step: float = 0.25, tempo: float = 120.0, time_signature=(4, 4)) -> Score:
    """int (n_voices, T) -> Score; a run of equal pitches in a voice is one note (voice index = track)."""
    g = np.asarray(grid)
    notes = []
    for v, row in enumerate(g):
        t = 0
        while t < len(row):
            p = int(row[t])
            e = t + 1
            while e < len(row) and row[e] == p:
                e += 1
            if p != REST:
                notes.append((p, t * step, (e - t) * step, 90, v))
            t = e
    notes.sort(key=lambda n: (n[1], n[4]))
    sc = Score.from_notes(notes, tempo=tempo, end=g.shape[1] * step, time_signature=tuple(time_signature))
    sc.programs = {v: 0 for v in range(g.shape[0])}
    return sc


def grid_to_rows(grid) -> np.ndarray:
    """Pitches/REST -> row indices (0 = rest, 1.. = LOW..HIGH). Raises on pitches outside the grid."""
    g = np.asarray(grid, np.int64)
    bad = (g != REST) & ((g < LOW) | (g > HIGH))
    if bad.any():
        p = int(g[bad][0])
        raise TunesmithError(f"pitch {p} is outside the harmoniser's range {LOW}..{HIGH} (MIDI): "
                             "transpose the melody by octaves into a singable range")
    return np.where(g == REST, 0, g - LOW + 1)


def rows_to_grid(rows) -> np.ndarray:
    r = np.asarray(rows, np.int64)
    return np.where(r == 0, REST, r + LOW - 1).astype(np.int16)


def random_masks(n: int, n_voices: int, T: int, generator: torch.Generator | None = None,
                 p_keep_soprano: float = 0.5) -> torch.Tensor:
    """Orderless-NADE training masks (1 = erased): per item an erasure rate drawn uniformly from (0, 1],
    each (voice, step) erased with that rate; in a ``p_keep_soprano`` share of the items the soprano is
    never erased (the harmonisation case). At least one cell per item is erased."""
    rate = 1.0 - torch.rand(n, 1, 1, generator=generator)
    m = (torch.rand(n, n_voices, T, generator=generator) < rate).float()
    keep = torch.rand(n, generator=generator) < p_keep_soprano
    m[keep, 0] = 0.0
    empty = m.flatten(1).sum(1) == 0
    if empty.any():
        m[empty, -1, 0] = 1.0
    return m


class ChoraleGrids:
    """Training windows; ``batch`` returns ``rows`` (B, 4, T) long, ``phase`` (B,) the window's first step
    modulo 4 (its position in the beat), randomly transposed within the grid."""

    def __init__(self, grids: torch.Tensor, phase: torch.Tensor, transpose: int = 0):
        self.grids, self.phase, self.transpose = grids, phase, int(transpose)
        sounding = grids != REST
        big, small = torch.tensor(10_000, dtype=grids.dtype), torch.tensor(-10_000, dtype=grids.dtype)
        self.lo = torch.where(sounding, grids, big).flatten(1).min(1).values
        self.hi = torch.where(sounding, grids, small).flatten(1).max(1).values

    def __len__(self) -> int:
        return len(self.grids)

    def batch(self, idx):
        g = self.grids[idx].long()
        if self.transpose:
            down = torch.clamp(LOW - self.lo[idx].long(), min=-self.transpose, max=0)
            up = torch.clamp(HIGH - self.hi[idx].long(), max=self.transpose, min=0)
            shift = down + (torch.rand(len(idx)) * (up - down + 1).float()).long()
            g = torch.where(g == REST, g, g + shift[:, None, None])
        rows = torch.where(g == REST, torch.zeros_like(g), g - LOW + 1)
        return {"rows": rows, "phase": self.phase[idx].long()}


class MaskedGrids:
    """Held-out windows with fixed erasure masks (validation: the loss of erased cells)."""

    def __init__(self, rows: torch.Tensor, phase: torch.Tensor, mask: torch.Tensor):
        self.rows, self.phase, self.mask = rows, phase, mask

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, idx):
        return {"rows": self.rows[idx], "phase": self.phase[idx], "mask": self.mask[idx]}


class ChoraleGridCodec(Codec):
    name = "chorale_grid"

    def __init__(self, seq_len: int = 32, step: float = 0.25, n_voices: int = 4, low: int = LOW, high: int = HIGH):
        self.seq_len, self.step, self.n_voices = int(seq_len), float(step), int(n_voices)
        if (low, high) != (LOW, HIGH):
            raise TunesmithError(f"chorale_grid checkpoint has pitch range {low}..{high}; this tunesmith uses "
                                 f"{LOW}..{HIGH}")

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "seq_len": self.seq_len, "step": self.step, "n_voices": self.n_voices,
                "low": LOW, "high": HIGH}

    @classmethod
    def from_state(cls, s):
        return cls(s["seq_len"], s["step"], s["n_voices"], s.get("low", LOW), s.get("high", HIGH))

    def model_info(self) -> dict[str, Any]:
        return {"n_voices": self.n_voices, "n_rows": ROWS}

    def encode(self, score: Score, n_steps: int | None = None) -> np.ndarray:
        return score_to_grid(score, self.step, n_steps, self.n_voices)

    def decode(self, grid, tempo: float = 120.0, time_signature=(4, 4)) -> Score:
        return grid_to_score(grid, self.step, tempo, time_signature)

    def melody_line(self, melody: Score) -> Score:
        """The line to harmonise: the first track of a multi-track file, else the top line; on track 0."""
        tracks = sorted(set(melody.track.tolist()) - set(melody.drum_tracks))
        if not tracks:
            raise TunesmithError("the melody file has no pitched notes")
        mel = (melody.select(melody.track == tracks[0]) if len(tracks) > 1 else melody.pitched()).sorted()
        if (np.diff(mel.start) < 1e-9).any() or (mel.start[1:] < (mel.start + mel.duration)[:-1] - 1e-6).any():
            mel = mel.monophonic()  # chords or overlaps: keep the top line (a single line is kept as given)
        mel.track = np.zeros(len(mel), np.int16)
        mel.programs = {0: 0}
        return mel


def _windows(grid: np.ndarray, length: int, hop: int) -> list[tuple[np.ndarray, int]]:
    T = grid.shape[1]
    out = []
    for a in range(0, max(T - length, 0) + 1, hop):
        w = grid[:, a:a + length]
        if w.shape[1] < length:
            w = np.concatenate([w, np.full((w.shape[0], length - w.shape[1]), REST, w.dtype)], 1)
        if (w != REST).any():
            out.append((w, a % 4))
    return out


@register_encoding("chorale_grid")
def build_chorale_grid(dataset: str = "bach-chorales", seq_len: int = 32, hop: int = 4, step: float = 0.25,
                       transpose: int = 6, val_fraction: float = 0.1, split_seed: int = 0,
                       val_windows: int = 256, max_pieces: int | None = None) -> DataBundle:
    if seq_len < 4:
        raise TunesmithError(f"data.seq_len must be >= 4, got {seq_len}")
    train, val = chorale_split(dataset, val_fraction, split_seed, max_pieces)
    codec = ChoraleGridCodec(seq_len, step, 4)
    rows = [w for sc in train for w in _windows(score_to_grid(sc, step), seq_len, hop)]
    if not rows:
        raise TunesmithError(f"no training windows of {seq_len} steps in {dataset}")
    grids = np.stack([np.clip(w, REST, None) for w, _ in rows])
    if ((grids != REST) & ((grids < LOW) | (grids > HIGH))).any():
        raise TunesmithError(f"{dataset} has pitches outside {LOW}..{HIGH}")
    ds = ChoraleGrids(torch.tensor(grids, dtype=torch.int16), torch.tensor([p for _, p in rows]), transpose)
    vrows = [w for sc in val for w in _windows(score_to_grid(sc, step), seq_len, seq_len)]
    vds = None
    if vrows and val_windows:
        rng = np.random.default_rng(1234)
        pick = np.sort(rng.choice(len(vrows), min(val_windows, len(vrows)), replace=False))
        vg = np.stack([vrows[i][0] for i in pick])
        g = torch.Generator().manual_seed(1234)
        vds = MaskedGrids(torch.tensor(grid_to_rows(vg)), torch.tensor([vrows[i][1] for i in pick]),
                          random_masks(len(pick), 4, seq_len, g))
    stats = {"pieces": len(train) + len(val), "train_songs": len(train), "val_songs": len(val), "items": len(ds),
             "val_items": len(vds) if vds is not None else 0}
    return DataBundle(ds, vds, codec, stats, reference=val)
