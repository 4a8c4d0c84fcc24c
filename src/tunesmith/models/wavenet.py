"""Seed 003's WaveNet autoencoder on raw audio, kept causal end to end.

Encoder: a causal convolution, then residual blocks of dilated causal convolutions (dilations 1, 4, 16,
the seed's final choice) with ReLU, dropout, residual and skip connections; the summed skips -> 1x1
convolution to ``bottleneck`` channels -> average over blocks of ``pool`` samples (the code: 16 channels
at sample_rate/pool Hz instead of 1 channel at sample_rate). Decoder: the codes, each held for the
*next* block of samples (so the output at sample t only depends on audio before the block that holds t),
-> 1x1 convolution -> residual blocks of dilated causal convolutions with skip connections -> a linear
output convolution: the waveform. Training reads a random ``train_crop``-sample window of each clip
(8192, as NSynth's WaveNet trained on 6144-sample crops; the network is convolutional, and whole 4-s
clips cost ~60 s per step of 16 on 2 CPU cores); validation uses whole clips.
Loss: mean absolute error (the seed's); Adam 1e-3 with
ReduceLROnPlateau and early stopping on the validation loss (config ``[train]``).

The seed used ReLU + batch normalisation inside the blocks; batch statistics mix time steps (and so the
future) during training, so this version leaves batch norm out to stay causal. Generation, as in the
seed, reconstructs clips through the bottleneck: ``--primer PATH.wav`` or stored training clips, with
Gaussian noise of scale ``noise`` (a [sample] option) x the code's standard deviation added to the code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.audio import postprocess
from .base import Audio, TunesmithModel, register_model


class CausalConv1d(nn.Conv1d):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int = 1):
        super().__init__(c_in, c_out, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left, 0)))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = CausalConv1d(channels, channels, kernel_size, dilation)
        self.drop = nn.Dropout(dropout)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        h = self.drop(F.relu(self.conv(x)))
        return x + self.res(h), self.skip(h)


class Stack(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations: list[int], dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(ResidualBlock(channels, kernel_size, d, dropout) for d in dilations)

    def forward(self, x):
        skips = 0
        for b in self.blocks:
            x, s = b(x)
            skips = skips + s
        return F.relu(skips)


@register_model("wavenet")
class WaveNetAE(TunesmithModel):
    objective = "likelihood"
    page_kind = "audio"

    def __init__(self, num_samples: int, num_labels: int = 0, sample_rate: int = 16000, channels: int = 32,
                 kernel_size: int = 2, dilations: list[int] = (1, 4, 16), stacks: int = 1, bottleneck: int = 16,
                 pool: int = 64, dropout: float = 0.1, num_primers: int = 4, train_crop: int | None = 8192):
        super().__init__()
        dil = list(dilations) * int(stacks)
        self.pool, self.num_samples = int(pool), int(num_samples)
        self.train_crop = int(train_crop) if train_crop else None
        self.enc_in = CausalConv1d(1, channels, kernel_size)
        self.enc = Stack(channels, kernel_size, dil, dropout)
        self.to_code = nn.Conv1d(channels, bottleneck, 1)
        self.from_code = nn.Conv1d(bottleneck, channels, 1)
        self.dec = Stack(channels, kernel_size, dil, dropout)
        self.out = nn.Conv1d(channels, 1, 1)
        self.register_buffer("primers", torch.zeros(num_primers, 1, num_samples))

    @property
    def receptive_field(self) -> int:
        return 1 + sum(b.conv.left for b in self.enc.blocks) + self.enc_in.left

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, L) -> codes (B, bottleneck, ceil(L / pool)); code k summarises samples [k*pool, (k+1)*pool)."""
        h = self.to_code(self.enc(self.enc_in(x)))
        L = h.shape[-1]
        K = -(-L // self.pool)
        h = F.pad(h, (0, K * self.pool - L))
        return h.view(h.shape[0], h.shape[1], K, self.pool).mean(-1)

    def decode(self, codes: torch.Tensor, length: int) -> torch.Tensor:
        """Codes -> (B, 1, length); code k is heard during block k + 1 (causality)."""
        held = F.pad(codes, (1, 0))[..., :-1].repeat_interleave(self.pool, -1)[..., :length]
        return self.out(self.dec(self.from_code(held)))

    def forward(self, batch, mode: str = "loss", step: int = 0):
        x = batch["audio"]
        L = x.shape[-1]
        if self.training and self.train_crop and L > self.train_crop:  # a random window of each clip
            start = torch.randint(0, (L - self.train_crop) // self.pool + 1, (len(x),)) * self.pool
            idx = (start[:, None] + torch.arange(self.train_crop)).to(x.device)
            x = torch.gather(x, 2, idx[:, None])
        y = self.decode(self.encode(x), x.shape[-1]).float()
        return {"loss": F.l1_loss(y, x), "mse": F.mse_loss(y, x)}

    def on_checkpoint(self, ctx) -> None:
        tensors = getattr(ctx.data, "tensors", {})
        if "audio" not in tensors:
            return
        a = tensors["audio"]
        idx = torch.linspace(0, len(a) - 1, len(self.primers)).long()
        self.primers.copy_(a[idx].to(self.primers))

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, primer: str | None = None,
                 noise: float = 0.0, denoise: bool | float = False):
        if primer:
            x = torch.from_numpy(codec.load(primer))
            x = (x / x.abs().max().clamp_min(1e-8))[None, None].repeat(n, 1, 1)
            names = [f"reconstructs {primer}"] * n
        else:
            idx = torch.arange(n) % len(self.primers)
            x = self.primers[idx].cpu()
            names = [f"reconstructs training clip {int(i)}" for i in idx]
        x = x.to(self.device)
        codes = self.encode(x)
        if noise:
            eps = torch.randn(codes.shape, generator=generator, device=codes.device)
            codes = codes + noise * codes.std(dim=-1, keepdim=True) * eps
        y = self.decode(codes, x.shape[-1]).squeeze(1).cpu().numpy()
        return [Audio(postprocess(s, codec.sample_rate, denoise), codec.sample_rate, nm) for s, nm in zip(y, names)]
