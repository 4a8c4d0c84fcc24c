"""Seed 001's LSTM-GAN over sequences of (pitch, note duration, rest duration) tuples.

Generator: per-step noise (B, 100, 100) -> Dense 400 (ReLU) -> LSTM 400 -> LSTM 400 -> Dense 3 (linear).
Discriminator: LSTM 400 -> LSTM 400 -> Dense 1 (sigmoid) on the last step. BCE, Adam 2e-4 (beta1 0.5).
The tuples are standardised by the data (``data/tuples.py``); decoding snaps them to valid values.

Remedies for its mode collapse (docs/gans.md), as variant configs: ``loss = "wgan-gp"``
(configs/gan_tuples_wgangp.toml) and **minibatch discrimination** (Salimans et al. 2016,
configs/gan_tuples_minibatch.toml): ``minibatch_kernels = B`` projects the discriminator's last LSTM state
through a tensor T to B rows of ``minibatch_dims`` = C numbers, and appends to it, for each kernel b,
``sum_j exp(-||M_i,b - M_j,b||_1)`` over the *other* items j of the batch. A batch of near-identical fakes
then looks unlike a batch of varied real melodies, so collapsing no longer fools the discriminator.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import TunesmithError
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


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, section 3.2: (N, A) features -> (N, A + B) with B closeness-to-the-batch values."""

    def __init__(self, in_features: int, kernels: int, dims: int):
        super().__init__()
        self.kernels, self.dims = int(kernels), int(dims)
        self.T = nn.Parameter(torch.randn(in_features, self.kernels * self.dims) * 0.1)

    def forward(self, f):
        m = (f @ self.T).view(len(f), self.kernels, self.dims)               # (N, B, C)
        l1 = (m[:, None] - m[None, :]).abs().sum(-1)                       # (N, N, B)
        o = torch.exp(-l1).sum(1) - 1.0                                    # minus exp(0) of the item itself
        return torch.cat([f, o], 1)


class TupleDiscriminator(nn.Module):
    def __init__(self, features: int, hidden: int, minibatch_kernels: int = 0, minibatch_dims: int = 5):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.mbd = MinibatchDiscrimination(hidden, minibatch_kernels, minibatch_dims) if minibatch_kernels else None
        self.out = nn.Linear(hidden + int(minibatch_kernels), 1)

    def forward(self, x):
        h, _ = self.lstm(x)
        f = h[:, -1]
        return self.out(self.mbd(f) if self.mbd is not None else f)


@register_model("lstm_gan")
class LSTMGAN(GANBase):
    def __init__(self, seq_len: int = 100, latent_dim: int = 100, hidden: int = 400, loss: str = "bce",
                 gp_weight: float = 10.0, minibatch_kernels: int = 0, minibatch_dims: int = 5):
        super().__init__(loss=loss, gp_weight=gp_weight)
        if minibatch_kernels < 0 or minibatch_dims < 1:
            raise TunesmithError("model.minibatch_kernels must be >= 0 (0: off) and model.minibatch_dims >= 1")
        if minibatch_kernels and loss == "wgan-gp":
            raise TunesmithError("model.minibatch_kernels needs loss 'bce' or 'wgan': the gradient penalty is per "
                                 "item and minibatch features mix the batch (set minibatch_kernels = 0)")
        self.seq_len, self.latent_dim = int(seq_len), int(latent_dim)
        self.generator = TupleGenerator(self.latent_dim, hidden, 3)
        self.critic = TupleDiscriminator(3, hidden, int(minibatch_kernels), int(minibatch_dims))

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
