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

Issue 13 variant (``configs/audio_wavenet_pitch.toml``): ``source_harmonics = K`` feeds the decoder, besides
the codes, K sinusoids at the note's harmonics (k x f0 of its MIDI pitch, random start phases, harmonics
above 0.95 x Nyquist silent), as neural source-filter vocoders do: the codes say *how* the note sounds, the
source *at which pitch*, so ``tunesmith sample RUN --primer NOTE.wav --pitch 64`` re-pitches a note by
changing the conditioning. With a source the phase of the output is the source's, not the recording's, so
``loss = "mrstft"`` (multi-resolution STFT: spectral convergence + L1 of log magnitudes at FFT sizes 512,
1024, 2048, the metric of ``tunesmith.evaluation.audio_metrics.mrstft_distance``) replaces the seed's MAE.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.audio import postprocess
from ..errors import TunesmithError
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
                 pool: int = 64, dropout: float = 0.1, num_primers: int = 4, train_crop: int | None = 8192,
                 source_harmonics: int = 0, loss: str = "l1"):
        super().__init__()
        if loss not in ("l1", "mrstft"):
            raise TunesmithError(f"model.loss must be 'l1' (the seed's MAE) or 'mrstft', not {loss!r}")
        self.source_harmonics, self.loss_kind, self.sample_rate = int(source_harmonics), loss, int(sample_rate)
        dil = list(dilations) * int(stacks)
        self.pool, self.num_samples = int(pool), int(num_samples)
        self.train_crop = int(train_crop) if train_crop else None
        self.enc_in = CausalConv1d(1, channels, kernel_size)
        self.enc = Stack(channels, kernel_size, dil, dropout)
        self.to_code = nn.Conv1d(channels, bottleneck, 1)
        self.from_code = nn.Conv1d(bottleneck, channels, 1)
        self.from_source = nn.Conv1d(self.source_harmonics, channels, 1) if self.source_harmonics else None
        self.dec = Stack(channels, kernel_size, dil, dropout)
        self.out = nn.Conv1d(channels, 1, 1)
        self.register_buffer("primers", torch.zeros(num_primers, 1, num_samples))
        self.register_buffer("primer_pitch", torch.full((num_primers,), -1, dtype=torch.long))

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

    def source(self, pitch: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) MIDI pitches -> (B, source_harmonics, length) sinusoids at k x f0, random start phases."""
        f0 = 440.0 * 2.0 ** ((pitch.double() - 69.0) / 12.0)
        k = torch.arange(1, self.source_harmonics + 1, dtype=torch.float64, device=pitch.device)
        fk = f0[:, None] * k                                                    # (B, K)
        phi = torch.rand(fk.shape, generator=generator, dtype=torch.float64, device=pitch.device) * 2 * math.pi
        t = torch.arange(length, dtype=torch.float64, device=pitch.device) / self.sample_rate
        s = torch.sin(2 * math.pi * fk[:, :, None] * t + phi[:, :, None])
        return (s * (fk < 0.95 * self.sample_rate / 2)[:, :, None]).float()

    def decode(self, codes: torch.Tensor, length: int, pitch: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes (and, with a source, the MIDI pitch to play) -> (B, 1, length); code k is heard during
        block k + 1 (causality)."""
        held = F.pad(codes, (1, 0))[..., :-1].repeat_interleave(self.pool, -1)[..., :length]
        h = self.from_code(held)
        if self.from_source is not None:
            if pitch is None:
                raise TunesmithError("this WaveNet plays a harmonic source: it needs the note's MIDI pitch")
            h = h + self.from_source(self.source(pitch, length, generator).to(h))
        return self.out(self.dec(h))

    def forward(self, batch, mode: str = "loss", step: int = 0):
        x = batch["audio"]
        L = x.shape[-1]
        if self.training and self.train_crop and L > self.train_crop:  # a random window of each clip
            start = torch.randint(0, (L - self.train_crop) // self.pool + 1, (len(x),)) * self.pool
            idx = (start[:, None] + torch.arange(self.train_crop)).to(x.device)
            x = torch.gather(x, 2, idx[:, None])
        y = self.decode(self.encode(x), x.shape[-1], batch.get("pitch")).float()
        out = {"l1": F.l1_loss(y, x), "mse": F.mse_loss(y, x)}
        if self.loss_kind == "mrstft":
            out["loss"] = mrstft_loss(y[:, 0], x[:, 0])
        else:
            out["loss"] = out["l1"]
        return out

    def on_checkpoint(self, ctx) -> None:
        tensors = getattr(ctx.data, "tensors", {})
        if "audio" not in tensors:
            return
        a = tensors["audio"]
        idx = torch.linspace(0, len(a) - 1, len(self.primers)).long()
        self.primers.copy_(a[idx].to(self.primers))
        if "pitch" in tensors:
            self.primer_pitch.copy_(tensors["pitch"][idx].to(self.primer_pitch))

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, primer: str | None = None,
                 noise: float = 0.0, pitch: int | None = None, denoise: bool | float = False):
        if pitch is not None and not self.source_harmonics:
            raise TunesmithError("--pitch re-pitches notes with a WaveNet that plays a harmonic source "
                                 "(model.source_harmonics > 0, configs/audio_wavenet_pitch.toml); this one has none")
        if primer:
            x = torch.from_numpy(codec.load(primer))
            x = (x / x.abs().max().clamp_min(1e-8))[None, None].repeat(n, 1, 1)
            names = [f"reconstructs {primer}"] * n
            own = primer_pitch(primer) if self.source_harmonics else -1
            if self.source_harmonics and own < 0 and pitch is None:
                raise TunesmithError(f"cannot tell the pitch of {primer}: name it like an NSynth note "
                                     "(family_source_000-PITCH-velocity.wav) or give --pitch MIDI")
            src = torch.full((n,), own, dtype=torch.long)
        else:
            idx = torch.arange(n) % len(self.primers)
            x = self.primers[idx].cpu()
            names = [f"reconstructs training clip {int(i)}" for i in idx]
            src = self.primer_pitch[idx].cpu()
        target = torch.full((n,), self._check_pitch(pitch), dtype=torch.long) if pitch is not None else src
        x = x.to(self.device)
        codes = self.encode(x)
        if noise:
            eps = torch.randn(codes.shape, generator=generator, device=codes.device)
            codes = codes + noise * codes.std(dim=-1, keepdim=True) * eps
        play = target.to(self.device) if self.source_harmonics else None
        y = self.decode(codes, x.shape[-1], play, generator).squeeze(1).cpu().numpy()
        if pitch is not None:
            names = [f"{nm}, re-pitched to MIDI {int(pitch)}" for nm in names]
        return [Audio(postprocess(s, codec.sample_rate, denoise), codec.sample_rate, nm,
                      pitch=int(p) if self.source_harmonics else -1) for s, nm, p in zip(y, names, target)]

    @staticmethod
    def _check_pitch(pitch) -> int:
        if not isinstance(pitch, int) or isinstance(pitch, bool) or not 0 <= pitch <= 127:
            raise TunesmithError(f"--pitch must be a MIDI note number 0-127, got {pitch!r}")
        return pitch


def primer_pitch(path) -> int:
    """The MIDI pitch of a primer WAV from its samples.json entry or NSynth-style name (-1: unknown)."""
    from ..data.nsynth import requested_labels

    p, _ = requested_labels(path)
    return -1 if p is None else int(p)


def mrstft_loss(y: torch.Tensor, x: torch.Tensor, sizes=(512, 1024, 2048)) -> torch.Tensor:
    """Multi-resolution STFT loss between (B, L) signals (differentiable, batched; the same definition as the
    evaluation's ``mrstft_distance``, which is a later stage): the mean over FFT sizes of spectral
    convergence (||X| - |Y||_F / ||X||_F, over the batch) + mean |log(|X| + 1e-5) - log(|Y| + 1e-5)|, hop =
    size / 4, Hann windows."""
    total = 0.0
    for n in sizes:
        w = torch.hann_window(n, device=x.device)
        X = torch.stft(x, n, n // 4, window=w, return_complex=True).abs()
        Y = torch.stft(y, n, n // 4, window=w, return_complex=True).abs()
        # spectral convergence over the whole batch: a crop of near-silence cannot divide by ~0
        sc = torch.linalg.norm(X - Y) / torch.linalg.norm(X).clamp_min(1e-3)
        lm = (torch.log(X + 1e-5) - torch.log(Y + 1e-5)).abs().mean()
        total = total + sc + lm
    return total / len(sizes)
