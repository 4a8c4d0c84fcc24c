"""Seed 001's LSTM-GAN over sequences of (pitch, note duration, rest duration) tuples.

Generator: per-step noise (B, 100, 100) -> Dense 400 (ReLU) -> LSTM 400 -> LSTM 400 -> Dense 3 (linear).
Discriminator: LSTM 400 -> LSTM 400 -> Dense 1 (sigmoid) on the last step. BCE, Adam 2e-4 (beta1 0.5).
The tuples are standardised by the data (``data/tuples.py``); decoding snaps them to valid values.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import register_model
from .gan_base import GANBase


class TupleGenerator(nn.Module):
    def __init__(self, latent_dim: int, hidden: int, features: int):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU())
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, features)

    def forward(self, z):
        h, _ = self.lstm(self.inp(z))
        return self.out(h)


class TupleDiscriminator(nn.Module):
    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        h, _ = self.lstm(x)
        return self.out(h[:, -1])


@register_model("lstm_gan")
class LSTMGAN(GANBase):
    def __init__(self, seq_len: int = 100, latent_dim: int = 100, hidden: int = 400, loss: str = "bce",
                 gp_weight: float = 10.0):
        super().__init__(loss=loss, gp_weight=gp_weight)
        self.seq_len, self.latent_dim = int(seq_len), int(latent_dim)
        self.generator = TupleGenerator(self.latent_dim, hidden, 3)
        self.critic = TupleDiscriminator(3, hidden)

    def real_input(self, batch):
        return batch["tuples"]

    def fake(self, n, generator=None, real=None):
        z = torch.randn(n, self.seq_len, self.latent_dim, device=self.device, generator=generator)
        return self.generator(z)

    def discrete(self, x):
        """For the diversity indicator: values binned to a quarter standard deviation."""
        return torch.round(x * 4).long()

    def to_scores(self, x, codec, tempo: float = 120.0, **opts):
        return [codec.decode(row, tempo=tempo) for row in x.detach().cpu().numpy()]
