"""Seed 003's spectrogram GAN (GANSynth-style images of log magnitude + phase).

Generator: noise (``latent_dim``) -> dense -> reshape to (``base_channels``, frames/2^n, bins/2^n) ->
``n_up`` transposed convolutions (stride 2, batch norm, leaky ReLU) -> tanh, giving a (channels, frames,
bins) spectrogram in [-1, 1]. Critic: strided convolutions with leaky ReLU and dropout -> dense -> one
logit. Losses as in the seed: binary cross-entropy with label smoothing (real 0.9, fake 0, each plus
uniform noise up to ``label_noise``) and a gradient penalty (weight 10) on real/fake interpolates inside
the critic loss; the generator is trained towards label 1. Adam 2e-4, decayed by 0.9 every 10k steps
(``train.lr_decay`` in the config).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.audio import postprocess
from ..errors import TunesmithError
from .base import Audio, TunesmithModel, register_model


class SpecGenerator(nn.Module):
    def __init__(self, channels: int, frames: int, bins: int, latent_dim: int, base_channels: int, n_up: int,
                 leak: float):
        super().__init__()
        f = 2 ** n_up
        if frames % f or bins % f:
            raise TunesmithError(f"model.n_up {n_up}: frames ({frames}) and bins ({bins}) must be multiples of {f}")
        self.h0, self.w0, self.c0 = frames // f, bins // f, base_channels
        self.dense = nn.Linear(latent_dim, base_channels * self.h0 * self.w0)
        self.bn0 = nn.BatchNorm1d(base_channels * self.h0 * self.w0)
        layers: list[nn.Module] = []
        c = base_channels
        for i in range(n_up):
            last = i == n_up - 1
            out = channels if last else max(8, c // 2)
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.LeakyReLU(leak)]
            c = out
        self.net = nn.Sequential(*layers)
        self.leak = leak

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.bn0(self.dense(z)), self.leak).view(len(z), self.c0, self.h0, self.w0)
        return torch.tanh(self.net(h))


class SpecCritic(nn.Module):
    def __init__(self, channels: int, frames: int, bins: int, critic_channels: int, n_down: int, dropout: float,
                 leak: float):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c = channels, critic_channels
        for _ in range(n_down):
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(leak), nn.Dropout(dropout)]
            c_in, c = c, min(c * 2, 512)
        self.net = nn.Sequential(*layers)
        f = 2 ** n_down
        self.out = nn.Linear(c_in * (frames // f) * (bins // f), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x).flatten(1)).squeeze(1)


@register_model("spec_gan")
class SpecGAN(TunesmithModel):
    objective = "adversarial"
    page_kind = "audio"

    def __init__(self, channels: int, frames: int, bins: int, num_labels: int = 0, context: int = 0,
                 latent_dim: int = 100, base_channels: int = 256, n_up: int = 4, critic_channels: int = 32,
                 n_down: int = 4, dropout: float = 0.3, leak: float = 0.2, gp_weight: float = 10.0,
                 real_label: float = 0.9, label_noise: float = 0.05):
        super().__init__()
        self.latent_dim, self.gp_weight = latent_dim, gp_weight
        self.real_label, self.label_noise = real_label, label_noise
        self.generator = SpecGenerator(channels, frames, bins, latent_dim, base_channels, n_up, leak)
        self.critic = SpecCritic(channels, frames, bins, critic_channels, n_down, dropout, leak)

    def _targets(self, n: int, base: float, like: torch.Tensor) -> torch.Tensor:
        return (base + self.label_noise * torch.rand(n, device=like.device)).clamp(0, 1)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        a = torch.rand(len(real), 1, 1, 1, device=real.device)
        mix = (a * real + (1 - a) * fake).requires_grad_(True)
        g, = torch.autograd.grad(self.critic(mix).sum(), mix, create_graph=True)
        return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def forward(self, batch, mode: str = "critic", step: int = 0):
        real = batch["spec"]
        z = torch.randn(len(real), self.latent_dim, device=real.device)
        if mode == "critic":
            with torch.no_grad():
                fake = self.generator(z)
            d_real, d_fake = self.critic(real), self.critic(fake)
            loss_real = F.binary_cross_entropy_with_logits(d_real, self._targets(len(real), self.real_label, real))
            loss_fake = F.binary_cross_entropy_with_logits(d_fake, self._targets(len(real), 0.0, real))
            gp = self.gradient_penalty(real, fake)
            return {"loss": loss_real + loss_fake + self.gp_weight * gp, "real": loss_real, "fake": loss_fake,
                    "gp": gp, "acc": ((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2}
        if mode == "generator":
            d_fake = self.critic(self.generator(z))
            return {"loss": F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))}
        raise ValueError(f"SpecGAN has no mode {mode!r}")

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
                 griffin_lim: bool = False, denoise: bool | float = False):
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device) * temperature
        specs = self.generator(z).cpu()
        return [Audio(postprocess(codec.spec_to_audio(s, griffin_lim=griffin_lim), codec.sample_rate, denoise),
                      codec.sample_rate, "spec_gan") for s in specs]
