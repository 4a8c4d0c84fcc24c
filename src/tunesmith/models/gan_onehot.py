"""Our variant of seed 000's GAN: the same data (100 Essen Erk note indices, one note every half beat) and
the same decoding, but the generator outputs a *distribution over the pitch vocabulary* at every step
instead of regressing the index through tanh, and it is trained as a WGAN-GP (Gulrajani et al. 2017, who
used exactly this -- softmax outputs against one-hot data -- for character-level text).

Why: note indices are categories. Regressing them as numbers makes neighbouring indices "close", so a
generator that hedges between two pitches outputs the one in between, and tanh's saturating ends are the
lowest and highest notes. A softmax per step has no such bias, and the gradient penalty gives a critic
that stays informative without clipping or a sigmoid that saturates.

Generator: z (128) -> Linear -> (256, 25) -> ConvTranspose1d x2 (to 100 steps) -> Conv1d to V -> softmax.
Critic: Conv1d (V -> 128 -> 256, stride 2, LeakyReLU) -> Linear 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import register_model
from .gan_base import GANBase


class SoftmaxSeqGenerator(nn.Module):
    def __init__(self, latent: int, vocab: int, seq_len: int, channels: int):
        super().__init__()
        self.t0, self.c = seq_len // 4, channels
        self.fc = nn.Sequential(nn.Linear(latent, channels * self.t0), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose1d(channels, channels, 4, 2, 1), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.ConvTranspose1d(channels, channels // 2, 4, 2, 1), nn.BatchNorm1d(channels // 2), nn.ReLU(),
            nn.Conv1d(channels // 2, vocab, 5, padding=2))

    def forward(self, z):
        h = self.fc(z).view(len(z), self.c, self.t0)
        return torch.softmax(self.net(h), 1).transpose(1, 2)  # (B, T, V)


class SeqCritic(nn.Module):
    def __init__(self, vocab: int, seq_len: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(vocab, channels // 2, 5, 2, 2), nn.LeakyReLU(0.2),
                                 nn.Conv1d(channels // 2, channels, 5, 2, 2), nn.LeakyReLU(0.2))
        self.out = nn.Linear(channels * ((seq_len + 3) // 4), 1)

    def forward(self, x):  # (B, T, V)
        return self.out(self.net(x.transpose(1, 2)).flatten(1))


@register_model("gan_onehot")
class OneHotWGAN(GANBase):
    def __init__(self, vocab_size: int, seq_len: int = 100, latent_dim: int = 128, channels: int = 256,
                 loss: str = "wgan-gp", gp_weight: float = 10.0):
        super().__init__(loss=loss, gp_weight=gp_weight)
        if seq_len % 4:
            from ..errors import TunesmithError

            raise TunesmithError(f"gan_onehot needs data.seq_len divisible by 4, not {seq_len}")
        self.vocab_size, self.seq_len, self.latent_dim = int(vocab_size), int(seq_len), int(latent_dim)
        self.generator = SoftmaxSeqGenerator(self.latent_dim, self.vocab_size, self.seq_len, channels)
        self.critic = SeqCritic(self.vocab_size, self.seq_len, channels)

    def real_input(self, batch):
        return F.one_hot(batch["tokens"][:, : self.seq_len], self.vocab_size).float()

    def fake(self, n, generator=None, real=None):
        return self.generator(torch.randn(n, self.latent_dim, device=self.device, generator=generator))

    def discrete(self, x):
        return x.argmax(-1)

    def to_scores(self, x, codec, tempo: float = 120.0, **opts):
        return [codec.decode(r, tempo=tempo) for r in self.discrete(x).tolist()]
