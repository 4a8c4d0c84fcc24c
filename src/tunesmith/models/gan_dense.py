"""Seed 000's GAN and WGAN over sequences of 100 normalised note indices (the shared GAN machinery is in
:mod:`tunesmith.models.gan_base`).

Seed 000 (appendix A.2/A.4, Keras): generator Dense 256 -> 512 -> 1024 (LeakyReLU 0.2, BatchNorm momentum
0.8) -> Dense 100 tanh: a *regression* of 100 note indices scaled to [-1, 1]; discriminator LSTM 512 ->
BiLSTM 512 -> Dense 512 -> 256 -> 100 (LeakyReLU 0.2) -> Dropout 0.5 -> Dense 1 (sigmoid; linear for the
WGAN critic). The WGAN variant adds Gaussian noise (sigma 0.1) after the layers and an L2 kernel penalty.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import register_model
from .gan_base import GANBase, GaussianNoise


def _lrelu():
    return nn.LeakyReLU(0.2)


# ----------------------------------------------------------------------------- seed 000
class DenseGenerator(nn.Module):
    def __init__(self, latent: int, hidden: list[int], out: int, noise: float, bn_momentum: float):
        super().__init__()
        layers: list[nn.Module] = []
        d = latent
        for h in hidden:
            # Keras order: Dense -> [GaussianNoise] -> LeakyReLU -> BatchNorm(momentum 0.8 = torch 0.2)
            layers += [nn.Linear(d, h), GaussianNoise(noise), _lrelu(),
                       nn.BatchNorm1d(h, momentum=1 - bn_momentum, eps=1e-3)]
            d = h
        layers += [nn.Linear(d, out), nn.Tanh(), GaussianNoise(noise)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class LSTMDiscriminator(nn.Module):
    """LSTM -> BiLSTM (final states of both directions) -> Dense stack -> Dropout -> Dense 1 (logit)."""

    def __init__(self, in_dim: int, hidden: int, dense: list[int], dropout: float, noise: float):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True)
        self.bilstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.noise = GaussianNoise(noise)
        layers: list[nn.Module] = []
        d = 2 * hidden
        for i, h in enumerate(dense):
            last = i == len(dense) - 1
            # the seed's A.4: noise after the BiLSTM and after the first dense layers, not the last
            layers += [nn.Linear(d, h)] + ([] if last else [GaussianNoise(noise)]) + [_lrelu()]
            d = h
        layers += [nn.Dropout(dropout), nn.Linear(d, 1)]
        self.head = nn.Sequential(*layers)

    def forward(self, x):  # x (B, T, F)
        h, _ = self.lstm(x)
        _, (hn, _) = self.bilstm(self.noise(h))
        feat = torch.cat([hn[0], hn[1]], -1)  # forward final + backward final, as Keras' Bidirectional
        return self.head(self.noise(feat))


@register_model("gan_dense")
class DenseGAN(GANBase):
    """Seed 000's GAN (``loss="bce"``) and WGAN (``loss="wgan"``, ``noise=0.1``, ``l2=0.1`` with
    ``train.clip_critic``) over ``seq_len`` note indices normalised to [-1, 1] (tanh output)."""

    def __init__(self, vocab_size: int, seq_len: int = 100, latent_dim: int = 1000,
                 gen_hidden: list[int] = (256, 512, 1024), disc_hidden: int = 512,
                 disc_dense: list[int] = (512, 256, 100), dropout: float = 0.5, noise: float = 0.0,
                 bn_momentum: float = 0.8, loss: str = "bce", gp_weight: float = 10.0, l2: float = 0.0):
        super().__init__(loss=loss, gp_weight=gp_weight, l2=l2)
        self.vocab_size, self.seq_len, self.latent_dim = int(vocab_size), int(seq_len), int(latent_dim)
        self.generator = DenseGenerator(self.latent_dim, list(gen_hidden), self.seq_len, noise, bn_momentum)
        self.critic = LSTMDiscriminator(1, disc_hidden, list(disc_dense), dropout, noise)

    def normalise(self, idx: torch.Tensor) -> torch.Tensor:
        half = self.vocab_size / 2
        return (idx.float() - half) / half

    def real_input(self, batch):
        return self.normalise(batch["tokens"][:, : self.seq_len])

    def critic_score(self, x):
        return self.critic(x.unsqueeze(-1)).reshape(-1)

    def fake(self, n, generator=None, real=None):
        z = torch.randn(n, self.latent_dim, device=self.device, generator=generator)
        return self.generator(z)

    def discrete(self, x):
        """The seed's read-back: int(x * V/2 + V/2); indices outside [0, V) become -1 (seed: 'C5')."""
        half = self.vocab_size / 2
        idx = torch.trunc(x * half + half).long()
        return torch.where((idx >= 0) & (idx < self.vocab_size), idx, torch.full_like(idx, -1))

    def to_scores(self, x, codec, tempo: float = 120.0, **opts):
        return [codec.decode(row, tempo=tempo) for row in self.discrete(x).tolist()]
