"""Coconet (Huang, Cooijmans, Roberts, Courville, Eck 2017, "Counterpoint by Convolution"): a convolutional
network over the voices x time x pitch grid, trained to fill in randomly erased notes (orderless NADE), and
blocked Gibbs sampling with an annealed masking schedule to compose, harmonise or fill in.

Input: per voice, the one-hot pitch grid with erased cells zeroed (4 channels), the erasure mask (4 channels)
and the position of each 16th note in its beat (4 channels, one-hot), all laid out as images of
``time x pitch rows`` (row 0 = rest). A 3x3 convolution, residual blocks of two dilated 3x3 convolutions with
batch norm (dilation grows 1, 2, 4, 8 in both time and pitch, so the receptive field covers every voice's
range and two bars), and a 3x3 convolution to 4 output channels: logits over pitch rows per voice and step.
Because everything is convolutional, a piece of any length is processed at once.

Training (``forward``): each item gets a random erasure mask (rate uniform in (0, 1]; half the items keep
their soprano); the loss is the cross-entropy of the erased cells, averaged per item (Coconet's normalisation)
and then over the batch: nats per erased (voice, 16th-note) cell.

Sampling (``gibbs``): the cells to fill start erased; at Gibbs step i a random share
``p_i = max(p_min, p_max - i (p_max - p_min) / (eta N))`` of them is erased again and re-drawn from the model
given everything else (Coconet's annealed blocked Gibbs; p_max 0.9, p_min 0.05, eta 0.75). Given cells never
change.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.coconet_data import REST, grid_to_rows, random_masks, rows_to_grid
from ..data.notes import Score
from ..errors import TunesmithError
from .base import TunesmithModel, register_model


def parallel_counts(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """For every cell (n, V, T) and candidate row r: how many parallel fifths/octaves writing r there would make
    with the other voices' current notes, against the previous and the next step (the definition of
    ``evaluation.voice_leading.parallels``: both voices move in the same direction and keep a perfect fifth
    or octave/unison, modulo 12). Returns (n, V, T, n_rows) counts; rests never count."""
    from ..data.coconet_data import LOW

    P = torch.where(rows > 0, rows + LOW - 1, torch.full_like(rows, -1))
    c = torch.arange(n_rows, device=rows.device)
    cv = (c > 0)
    c = torch.where(cv, c + LOW - 1, torch.full_like(c, -1))
    n, V, T = rows.shape
    out = torch.zeros(n, V, T, n_rows, device=rows.device)
    if T < 2:
        return out

    def par(a0, a1, b0, b1):  # voice a moves a0 -> a1 (one of them a candidate), voice b moves b0 -> b1
        ok = (a0 >= 0) & (a1 >= 0) & (b0 >= 0) & (b1 >= 0)
        ma, mb = a1 - a0, b1 - b0
        same = (ma != 0) & (mb != 0) & (torch.sign(ma) == torch.sign(mb))
        i1, i2 = (a0 - b0).abs() % 12, (a1 - b1).abs() % 12
        return (ok & same & (i1 == i2) & ((i1 == 0) | (i1 == 7))).float()

    for v in range(V):
        for u in range(V):
            if u == v:
                continue
            u0, u1 = P[:, u, :-1, None], P[:, u, 1:, None]
            out[:, v, 1:] += par(P[:, v, :-1, None], c, u0, u1)   # into the candidate (step t-1 -> t)
            out[:, v, :-1] += par(c, P[:, v, 1:, None], u0, u1)   # out of the candidate (t -> t+1)
    return out * cv


class _Block(nn.Module):
    def __init__(self, c: int, d: int):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=False)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        return F.relu(x + self.b2(self.c2(h)))


@register_model("coconet")
class Coconet(TunesmithModel):
    objective = "likelihood"
    page_kind = "chorale"
    loss_unit = "nats/erased cell"
    CONTROL_NOTES = {
        "steps": "length of a composed piece in 16th notes (default 128; ignored with --melody)",
        "temperature": "softmax temperature of every Gibbs draw: < 1 more notes in the key, more parallels",
        "gibbs_steps": "annealed Gibbs steps (set in the run config's [sample] section; no CLI flag)",
        "parallel_penalty": "a rule, not the model: logit penalty per parallel fifth/octave, plus repair steps; "
                            "0 = the model alone (set in [sample]; no CLI flag)",
    }

    def __init__(self, n_voices: int = 4, n_rows: int = 60, channels: int = 32, blocks: int = 6,
                 dilations: list[int] = (1, 2, 4, 8), p_keep_soprano: float = 0.5):
        super().__init__()
        if channels < 1 or blocks < 1 or not dilations:
            raise TunesmithError("model.channels and model.blocks must be >= 1 and model.dilations non-empty")
        self.n_voices, self.n_rows = int(n_voices), int(n_rows)
        self.p_keep_soprano = float(p_keep_soprano)
        c = int(channels)
        self.inp = nn.Sequential(nn.Conv2d(2 * self.n_voices + 4, c, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(c), nn.ReLU())
        ds = list(dilations)
        self.blocks = nn.Sequential(*[_Block(c, int(ds[i % len(ds)])) for i in range(int(blocks))])
        self.out = nn.Conv2d(c, self.n_voices, 3, padding=1)

    # ------------------------------------------------------------------ network
    def logits(self, rows: torch.Tensor, mask: torch.Tensor, phase: torch.Tensor | int = 0) -> torch.Tensor:
        """rows (B, V, T) long, mask (B, V, T) 1 = erased, phase (B,) or int: position of step 0 in its beat.
        Returns logits (B, V, T, n_rows)."""
        B, V, T = rows.shape
        x = F.one_hot(rows.clamp(0, self.n_rows - 1), self.n_rows).float() * (1 - mask).unsqueeze(-1)
        m = mask.unsqueeze(-1).expand(B, V, T, self.n_rows)
        ph = torch.as_tensor(phase, device=rows.device).reshape(-1, 1) + torch.arange(T, device=rows.device)
        pos = F.one_hot(ph.expand(B, T) % 4, 4).float().transpose(1, 2)  # (B, 4, T)
        pos = pos.unsqueeze(-1).expand(B, 4, T, self.n_rows)
        h = self.blocks(self.inp(torch.cat([x, m, pos], 1)))
        return self.out(h)

    def forward(self, batch, mode: str = "loss", step: int = 0):
        rows = batch["rows"].long()
        B, V, T = rows.shape
        mask = batch.get("mask")
        if mask is None:
            mask = random_masks(B, V, T, p_keep_soprano=self.p_keep_soprano).to(rows.device)
        mask = mask.float()
        logits = self.logits(rows, mask, batch.get("phase", 0))
        nll = F.cross_entropy(logits.permute(0, 3, 1, 2), rows, reduction="none")  # (B, V, T)
        per_item = (nll * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)
        with torch.no_grad():
            hit = (logits.argmax(-1) == rows).float()
            acc = (hit * mask).sum() / mask.sum().clamp_min(1)
        return {"loss": per_item.mean(), "acc": acc}

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def gibbs(self, rows: torch.Tensor, fill: torch.Tensor, phase: int = 0, steps: int = 64,
              temperature: float = 1.0, p_max: float = 0.9, p_min: float = 0.05, eta: float = 0.75,
              generator: torch.Generator | None = None, parallel_penalty: float = 0.0,
              repair_steps: int = 48) -> torch.Tensor:
        """Blocked Gibbs sampling: re-draw the ``fill`` cells (bool (n, V, T)) of ``rows`` (n, V, T) with
        an annealed share of them erased at each step; the other cells are kept as given.

        ``parallel_penalty`` > 0 is a rule, not the model: each candidate's logit is lowered by that much per
        parallel fifth/octave it would make with the current neighbours (0 = the model alone); after the
        annealed steps, up to ``repair_steps`` more steps re-draw (a random half of) the cells still in a
        parallel, until none is left."""
        if temperature <= 0:
            raise TunesmithError(f"temperature must be > 0, got {temperature}")
        was = self.training
        self.eval()
        dev = self.device
        x = rows.to(dev).long().clone()
        fill = fill.to(dev).bool()
        n = len(x)
        steps = max(int(steps), 1)
        for i in range(steps):
            pm = 1.0 if i == 0 else max(p_min, p_max - i * (p_max - p_min) / (eta * steps))
            m = fill & (torch.rand(x.shape, generator=generator, device=dev) < pm)
            none = (m.flatten(1).sum(1) == 0) & (fill.flatten(1).sum(1) > 0)
            for j in torch.nonzero(none).flatten().tolist():  # at least one cell per item
                cells = torch.nonzero(fill[j].flatten()).flatten()
                pick = cells[torch.randint(len(cells), (1,), generator=generator, device=dev)]
                m[j].view(-1)[pick] = True
            if not m.any():
                break
            x = self._redraw(x, m, phase, temperature, parallel_penalty, generator)
        if parallel_penalty:
            # repair: re-draw (half of, at random) the cells that still take part in a parallel, with the penalty
            for _ in range(repair_steps):
                counts = parallel_counts(x, self.n_rows).gather(-1, x.unsqueeze(-1)).squeeze(-1)
                bad = fill & (counts > 0)
                if not bad.any():
                    break
                m = bad & (torch.rand(x.shape, generator=generator, device=dev) < 0.5)
                x = self._redraw(x, m, phase, temperature, parallel_penalty, generator)
        self.train(was)
        return x

    def _redraw(self, x, m, phase, temperature, parallel_penalty, generator):
        """One Gibbs step: erase the cells ``m``, draw them all from the model given the others."""
        if not m.any():
            return x
        logits = self.logits(x, m.float(), phase).float() / temperature
        if parallel_penalty:
            logits = logits - parallel_penalty * parallel_counts(x, self.n_rows)
        probs = torch.softmax(logits, -1)
        draw = torch.multinomial(probs.reshape(-1, self.n_rows), 1, generator=generator).reshape(x.shape)
        return torch.where(m, draw, x)

    def _fill(self, codec, grid: np.ndarray, erase: np.ndarray, n: int, generator, steps: int,
              temperature: float, parallel_penalty: float = 0.0) -> np.ndarray:
        rows = torch.tensor(grid_to_rows(np.where(erase, REST, grid)), device=self.device)
        rows = rows.unsqueeze(0).expand(n, -1, -1)
        fill = torch.tensor(erase, device=self.device).unsqueeze(0).expand(n, -1, -1)
        out = self.gibbs(rows, fill, 0, steps, temperature, generator=generator, parallel_penalty=parallel_penalty)
        return np.stack([rows_to_grid(r) for r in out.cpu().numpy()])

    @torch.no_grad()
    def harmonize(self, codec, melody: Score, n: int = 1, generator=None, steps: int = 64,
                  temperature: float = 1.0, tempo: float | None = None, parallel_penalty: float = 0.0) -> list[Score]:
        """n four-voice harmonisations of a melody (its first track, or its top line) as the soprano. The
        soprano of each result is the melody's own notes, unchanged; alto, tenor and bass are sampled."""
        mel = codec.melody_line(melody)
        if len(mel) == 0:
            raise TunesmithError("the melody has no notes to harmonise")
        T = max(int(np.ceil(mel.length / codec.step - 1e-9)), 1)
        grid = np.full((self.n_voices, T), REST, np.int16)
        grid[0] = codec.encode(mel, T)[0]
        erase = np.zeros(grid.shape, bool)
        erase[1:] = True
        grids = self._fill(codec, grid, erase, n, generator, steps, temperature, parallel_penalty)
        out = []
        for g in grids:
            sc = codec.decode(g, tempo=tempo or melody.tempo, time_signature=melody.time_signature)
            lower = sc.select(sc.track != 0)
            out.append(_merge(mel, lower, sc, melody.title))
        return out

    @torch.no_grad()
    def infill(self, codec, score: Score, erase: np.ndarray, n: int = 1, generator=None, steps: int = 64,
               temperature: float = 1.0, parallel_penalty: float = 0.0) -> list[Score]:
        """n completions of a four-voice score with the cells ``erase`` (bool (4, T) over 16th notes, e.g.
        a bar of every voice, or one voice throughout) re-composed. Every note that touches no erased cell is
        kept exactly as it was (repeated notes included); the erased cells and the rest of notes cut by them
        come from the sampled grid."""
        erase = np.asarray(erase, bool)
        grid = codec.encode(score, erase.shape[1])
        if erase.shape != grid.shape:
            raise TunesmithError(f"erase mask has shape {erase.shape}, the score's grid {grid.shape}")
        grids = self._fill(codec, grid, erase, n, generator, steps, temperature, parallel_penalty)
        region = erase.copy()  # cells taken from the sampled grid: erased ones and those of notes they cut
        keep = np.ones(len(score), bool)
        for i, (s, d, t) in enumerate(zip(score.start, score.duration, score.track)):
            if not 0 <= t < self.n_voices:
                continue
            a = int(round(s / codec.step))
            b = max(a + 1, int(round((s + d) / codec.step)))
            if erase[int(t), a:b].any():
                keep[i] = False
                region[int(t), a:b] = True
        kept = score.select(keep)
        out = []
        for g in grids:
            new = codec.decode(np.where(region, g, REST), tempo=score.tempo, time_signature=score.time_signature)
            cols = [np.concatenate([getattr(kept, k), getattr(new, k)])
                    for k in ("pitch", "start", "duration", "velocity", "track")]
            out.append(Score(*cols, tempo=score.tempo, time_signature=score.time_signature, key=score.key,
                             title=score.title, programs={v: 0 for v in range(self.n_voices)},
                             end=score.end).sorted())
        return out

    @torch.no_grad()
    def compose(self, codec, n: int, length: int = 128, generator=None, steps: int = 64,
                temperature: float = 1.0, tempo: float = 80.0, parallel_penalty: float = 0.0) -> list[Score]:
        """n four-voice pieces of ``length`` 16th notes, every cell sampled."""
        grid = np.full((self.n_voices, int(length)), REST, np.int16)
        grids = self._fill(codec, grid, np.ones(grid.shape, bool), n, generator, steps, temperature,
                           parallel_penalty)
        return [codec.decode(g, tempo=tempo) for g in grids]

    @torch.no_grad()
    def generate(self, codec, n, generator=None, melody: str | None = None, steps: int | None = None,
                 temperature: float = 1.0, tempo: float | None = None, gibbs_steps: int = 64,
                 parallel_penalty: float = 0.0):
        """Without ``melody``: compose ``steps`` 16th notes (default 128) in four voices. With ``melody`` (a
        MIDI/MusicXML/ABC/kern file): harmonise it, the melody kept exactly as the soprano."""
        if melody:
            from ..data.corpora import parse_file

            p = Path(melody).expanduser()
            if not p.is_file():
                raise TunesmithError(f"--melody must be a melody file (MIDI, MusicXML, ABC, kern): {p} not found")
            return self.harmonize(codec, parse_file(p)[0], n, generator, gibbs_steps, temperature, tempo,
                                  parallel_penalty)
        length = 128 if steps is None else int(steps)
        if length < 1:
            raise TunesmithError(f"--steps must be >= 1, got {length}")
        return self.compose(codec, n, length, generator, gibbs_steps, temperature, tempo or 80.0, parallel_penalty)


def _merge(melody: Score, lower: Score, like: Score, title: str) -> Score:
    """The melody's notes as track 0 plus the sampled lower voices (tracks 1..3)."""
    cols = [np.concatenate([a, b]) for a, b in ((melody.pitch, lower.pitch), (melody.start, lower.start),
                                                 (melody.duration, lower.duration),
                                                 (melody.velocity, lower.velocity),
                                                 (np.zeros(len(melody), np.int16), lower.track))]
    sc = Score(*cols, tempo=like.tempo, time_signature=like.time_signature, title=title,
               programs={v: 0 for v in range(4)}, end=max(like.length, melody.length))
    return sc.sorted()
