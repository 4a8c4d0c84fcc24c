"""Seed 004's data: 4-track piano rolls of the Bach chorales (music21 corpus): 32 sixteenth-note steps x
128 pitches x 4 voices (soprano, alto, tenor, bass), windows every ``hop`` steps, transposition
augmentation by a random shift in [-transpose, +transpose] semitones per training item.

A piano roll only says which keys are down at each step, so two repeated notes of the same pitch in one
voice merge into one long note when decoded (the roll of the seed's JSB-Chorales data has the same limit).
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


def score_to_roll(score: Score, step: float = 0.25, n_tracks: int = 4, n_steps: int | None = None) -> np.ndarray:
    """Score -> bool (n_tracks, T, 128); tracks beyond n_tracks are dropped."""
    T = n_steps if n_steps is not None else int(np.ceil(score.length / step - 1e-9))
    roll = np.zeros((n_tracks, max(T, 0), 128), bool)
    for p, s, d, t in zip(score.pitch, score.start, score.duration, score.track):
        if t >= n_tracks or not 0 <= p < 128:
            continue
        a = int(round(s / step))
        b = max(a + 1, int(round((s + d) / step)))
        roll[int(t), a:min(b, T), int(p)] = True
    return roll


def roll_to_score(roll, step: float = 0.25, tempo: float = 120.0, threshold: float = 0.5,
                  one_note_per_voice: bool = False) -> Score:
    """(n_tracks, T, 128) values -> Score: each run of active steps of a pitch in a track is one note.

    ``one_note_per_voice`` keeps, in each track and step, only the most active pitch (if above the
    threshold): a chorale voice sings one note at a time, and a generator's soft roll often lights several
    neighbouring pitches at once."""
    v = np.asarray(roll, dtype=np.float32)
    if one_note_per_voice:
        best = v.argmax(-1)
        keep = np.take_along_axis(v, best[..., None], -1)[..., 0] > threshold
        r = np.zeros(v.shape, bool)
        t_idx, s_idx = np.nonzero(keep)
        r[t_idx, s_idx, best[t_idx, s_idx]] = True
    else:
        r = v > threshold
    n_tracks, T, _ = r.shape
    notes = []
    padded = np.concatenate([np.zeros((n_tracks, 1, 128), bool), r, np.zeros((n_tracks, 1, 128), bool)], 1)
    diff = np.diff(padded.astype(np.int8), axis=1)  # +1 at onsets, -1 after offsets
    for t, a, p in zip(*np.nonzero(diff == 1)):
        b = a + np.argmax(diff[t, a:, p] == -1)
        notes.append((int(p), a * step, (b - a) * step, 90, int(t)))
    return Score.from_notes(sorted(notes, key=lambda n: (n[1], n[4])), tempo=tempo, end=T * step)


class ChoraleRolls:
    """Dataset of windows; ``batch`` returns float rolls (B, 4, T, 128), randomly transposed if asked."""

    def __init__(self, rolls: torch.Tensor, transpose: int = 0):
        self.rolls, self.transpose = rolls, int(transpose)

    def __len__(self) -> int:
        return len(self.rolls)

    def batch(self, idx):
        x = self.rolls[idx].float()
        if self.transpose:
            shifts = torch.randint(-self.transpose, self.transpose + 1, (len(idx),))
            x = torch.stack([torch.roll(r, int(s), dims=-1) for r, s in zip(x, shifts)])
        return {"roll": x}


class ChoraleRollCodec(Codec):
    name = "chorale_roll"

    def __init__(self, seq_len: int = 32, step: float = 0.25, n_tracks: int = 4):
        self.seq_len, self.step, self.n_tracks = int(seq_len), float(step), int(n_tracks)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "seq_len": self.seq_len, "step": self.step, "n_tracks": self.n_tracks}

    @classmethod
    def from_state(cls, s):
        return cls(s["seq_len"], s["step"], s["n_tracks"])

    def model_info(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "n_tracks": self.n_tracks}

    def encode(self, score: Score) -> np.ndarray:
        return score_to_roll(score, self.step, self.n_tracks)

    def decode(self, roll, tempo: float = 120.0, threshold: float = 0.5) -> Score:
        sc = roll_to_score(roll, self.step, tempo, threshold=threshold, one_note_per_voice=True)
        sc.programs = {t: 0 for t in range(self.n_tracks)}
        return sc

    def melody_roll(self, melody: Score, voice: int = 0) -> np.ndarray:
        """A melody (its ``voice`` track if it has several, else its top line) as a roll whose ``voice``
        track holds it, the others empty; length padded to whole windows."""
        if len(set(melody.track.tolist())) > 1:
            mel = melody.select(melody.track == voice)
        else:
            mel = melody.monophonic()
        mel = mel.select(slice(None))
        mel.track = np.full(len(mel), voice, np.int16)
        T = int(np.ceil(max(mel.length, self.step) / self.step / self.seq_len)) * self.seq_len
        return score_to_roll(mel, self.step, self.n_tracks, T)


#: share of (voice, 16th-note) cells in which a voice sounds in the 351 chorales (measured: 0.9896)
SOUNDING = 0.99


def calibrated_threshold(rolls, sounding: float = SOUNDING) -> float:
    """Decoding threshold for a batch of soft rolls (n, tracks, T, 128): the (1 - ``sounding``) quantile of
    every (voice, step) cell's strongest pitch, so that as many cells sound as in the chorales (a generator
    whose outputs all stay below 0.5 would otherwise decode to silence)."""
    peak = torch.as_tensor(rolls).float().amax(-1).flatten()
    return float(torch.quantile(peak, 1.0 - float(sounding)))


def windows(roll: np.ndarray, length: int, hop: int) -> list[np.ndarray]:
    T = roll.shape[1]
    out = []
    for a in range(0, max(T - length, 0) + 1, hop):
        w = roll[:, a:a + length]
        if w.shape[1] < length:
            w = np.concatenate([w, np.zeros((w.shape[0], length - w.shape[1], w.shape[2]), bool)], 1)
        if w.any():
            out.append(w)
    return out


@register_encoding("chorale_roll")
def build_chorale_roll(dataset: str = "bach-chorales", seq_len: int = 32, hop: int = 16, step: float = 0.25,
                       transpose: int = 5, val_fraction: float = 0.1, split_seed: int = 0,
                       max_pieces: int | None = None) -> DataBundle:
    scores = [s for s in load_corpus(dataset) if len(set(s.track.tolist())) >= 4]
    if max_pieces:
        scores = scores[:max_pieces]
    if not scores:
        raise TunesmithError(f"{dataset} has no pieces with 4 voices")
    train, val = split_by_piece(scores, val_fraction, split_seed)
    codec = ChoraleRollCodec(seq_len, step, 4)
    rows = [w for sc in train for w in windows(score_to_roll(sc, step, 4), seq_len, hop)]
    ds = ChoraleRolls(torch.tensor(np.stack(rows)), transpose)
    stats = {"pieces": len(scores), "train_songs": len(train), "val_songs": len(val), "items": len(ds)}
    return DataBundle(ds, None, codec, stats, reference=val)
