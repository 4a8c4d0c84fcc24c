"""Seed 002: an LSTM generator with a PatchGAN-style discriminator over 88 piano keys + padding.

Generator: random input tokens (the seed feeds "noise data with the dimensions of the processed data") ->
Embedding 128 -> LSTM 256 -> Dense 89 softmax: a distribution over the 89 tokens at each of 64 steps.
Discriminator: Conv1D ('same' padding, LeakyReLU 0.2) layers over the (64, 89) sequence -> global average
pooling -> Dense 1 sigmoid, so it scores local patches and averages them. Real sequences are one-hot;
fakes are the generator's softmax (as the seed's Keras code passes them). BCE, Adam.

Known weakness, kept on purpose (docs/gans.md): a one-hot real and a softmax fake differ in a way the
discriminator can see without learning any music (the fake is never exactly one-hot).
Sampling draws each token from the softmax (``--temperature``) or takes the argmax (temperature 0 is
refused by the CLI; use a small value).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import register_model
from .gan_base import GANBase


class TokenGenerator(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        h, _ = self.lstm(self.embed(tokens))
        return torch.softmax(self.out(h), -1)


class PatchDiscriminator(nn.Module):
    def __init__(self, vocab: int, channels: list[int], kernel: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = vocab
        for ch in channels:
            layers += [nn.Conv1d(c, ch, kernel, padding="same"), nn.LeakyReLU(0.2)]
            c = ch
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(c, 1)

    def forward(self, x):  # (B, T, V)
        h = self.conv(x.transpose(1, 2))
        return self.out(h.mean(-1))  # global average pooling over time


@register_model("patchgan")
class PatchGAN(GANBase):

    def __init__(self, vocab_size: int = 89, seq_len: int = 64, embed_dim: int = 128, hidden: int = 256,
                 disc_channels: list[int] = (64, 128), kernel: int = 5, loss: str = "bce", gp_weight: float = 10.0):
        super().__init__(loss=loss, gp_weight=gp_weight)
        self.vocab_size, self.seq_len = int(vocab_size), int(seq_len)
        self.generator = TokenGenerator(self.vocab_size, embed_dim, hidden)
        self.critic = PatchDiscriminator(self.vocab_size, list(disc_channels), kernel)

    def real_input(self, batch):
        return F.one_hot(batch["tokens"], self.vocab_size).float()

    def fake(self, n, generator=None, real=None):
        noise = torch.randint(0, self.vocab_size, (n, self.seq_len), device=self.device, generator=generator)
        return self.generator(noise)

    def discrete(self, x):
        return x.argmax(-1)

    @torch.no_grad()
    def generate(self, codec, n, generator=None, tempo: float = 120.0, temperature: float = 1.0):
        probs = self.fake(n, generator=generator)
        logits = torch.log(probs.clamp_min(1e-9)) / max(float(temperature), 1e-4)
        ids = torch.multinomial(torch.softmax(logits, -1).reshape(-1, self.vocab_size), 1,
                                generator=generator).reshape(n, -1)
        return [codec.decode(r, tempo=tempo) for r in ids.tolist()]

    def to_scores(self, x, codec, tempo: float = 120.0, **opts):
        return [codec.decode(r, tempo=tempo) for r in self.discrete(x).tolist()]
