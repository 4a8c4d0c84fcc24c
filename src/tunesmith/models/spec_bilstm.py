"""Seed 003's BiLSTM over spectrogram frames.

The seed read windows of 16 *whole clips*' spectrograms (in file order) and predicted the next clip;
here the windows are 16 consecutive STFT *frames* of one clip and the model predicts the next frame
(the sliding window of the seed, at the scale where "continuing a clip" means something). Each frame
(channels x bins, flattened) goes through 5 bidirectional LSTM layers of 128 units with dropout 0.2;
the last layer's final forward and backward states -> dense -> the next frame. Loss: mean squared error
(MAE logged); Adam with default settings, batch 32.

``residual = true`` (issue 13) predicts the *change* from the last context frame instead of the frame
itself (next = last + head(...)), so a continuation keeps the partials where they are unless the model
moves them; ``input_noise`` adds Gaussian noise (that standard deviation) to the context frames while
training, so the model learns to continue from slightly wrong frames, as it must from its own predictions.

Generation continues a clip from its first ``context`` frames (``--primer PATH.wav``, else one of the
training clips stored at each checkpoint), one frame at a time, re-reading the last ``context`` frames
(a bidirectional window cannot be stepped incrementally), then inverts the spectrogram.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.audio import postprocess
from .base import Audio, TunesmithModel, register_model


@register_model("spec_bilstm")
class SpecBiLSTM(TunesmithModel):
    objective = "likelihood"
    page_kind = "audio"

    def __init__(self, channels: int, frames: int, bins: int, context: int = 16, num_labels: int = 0,
                 hidden: int = 128, layers: int = 5, dropout: float = 0.2, num_primers: int = 8,
                 residual: bool = False, input_noise: float = 0.0):
        super().__init__()
        self.residual, self.input_noise = bool(residual), float(input_noise)
        self.dim, self.context, self.channels, self.bins = channels * bins, context, channels, bins
        self.lstm = nn.LSTM(self.dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, self.dim)
        self.register_buffer("primers", torch.zeros(num_primers, context, self.dim))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(B, context, dim) -> the next frame (B, dim)."""
        _, (h, _) = self.lstm(x)
        out = self.head(self.drop(torch.cat([h[-2], h[-1]], -1)))
        return x[:, -1] + out if self.residual else out

    def forward(self, batch, mode: str = "loss", step: int = 0):
        fr = batch["frames"]
        ctx = fr[:, :-1]
        if self.training and self.input_noise > 0:
            ctx = ctx + self.input_noise * torch.randn_like(ctx)
        pred = self.predict(ctx).float()
        y = fr[:, -1]
        return {"loss": F.mse_loss(pred, y), "mae": (pred - y).abs().mean()}

    def on_checkpoint(self, ctx) -> None:
        frames = getattr(ctx.data, "frames", None)
        if frames is None:
            return
        idx = torch.linspace(0, len(frames) - 1, len(self.primers)).long()
        self.primers.copy_(frames[idx, : self.context].to(self.primers))

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, primer: str | None = None,
                 steps: int | None = None, griffin_lim: bool = False, denoise: bool | float = False):
        if primer:
            spec = codec.audio_to_spec(codec.load(primer))  # (C, T, F)
            start = spec.permute(1, 0, 2).reshape(spec.shape[1], -1)[: self.context][None].repeat(n, 1, 1)
            names = [f"continues {primer}"] * n
        else:
            idx = torch.arange(n) % len(self.primers)
            start = self.primers[idx].cpu()
            names = [f"continues training clip {int(i)}" for i in idx]
        real = min(codec.frames, codec.num_samples // codec.hop + 1)
        total = min(codec.frames, self.context + steps) if steps else real
        seq = start.to(self.device)
        while seq.shape[1] < total:
            nxt = self.predict(seq[:, -self.context:]).clamp(-1, 1)
            seq = torch.cat([seq, nxt[:, None]], 1)
        specs = seq.view(n, -1, self.channels, self.bins).permute(0, 2, 1, 3).cpu()
        specs = codec._fit_frames(specs)
        return [Audio(postprocess(codec.spec_to_audio(s, griffin_lim=griffin_lim), codec.sample_rate, denoise),
                      codec.sample_rate, name) for s, name in zip(specs, names)]
