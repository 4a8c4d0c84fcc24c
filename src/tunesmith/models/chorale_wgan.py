"""Seed 004: WGAN-GP over 4-track Bach chorale piano rolls, with accompaniment.

Generator (U-net-like): an encoder reads the *given* voices (a roll with the given tracks filled, plus a
mask channel per track) down to (512, 2, 8); the latent noise z of shape (2, 8, 512) (channels first here:
(512, 2, 8)) is concatenated there and a decoder with skip connections from the encoder upsamples to
(4 tracks, 32 steps, 128 pitches), sigmoid. The given voices are then copied into the output, so they
come out exactly as given. Critic: strided 2-D convolutions (LeakyReLU, no batch norm: the gradient
penalty is per sample) -> a linear score. Loss: Wasserstein with gradient penalty 10.

Accompaniment is conditioning + inpainting at once: during training each item is, with probability
``p_condition``, given one of its own voices (the soprano with probability ``p_soprano``, otherwise a
random voice); the critic judges the completed 4-voice roll. With nothing given the generator composes
all four voices. ``tunesmith sample RUN --condition melody.mid`` harmonises a melody (its first track, or
its top line), 32 sixteenths at a time.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import TunesmithError
from .base import register_model
from .gan_base import GANBase


def _down(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 4, 2, 1), nn.LeakyReLU(0.2))


def _up(i, o, last=False):
    if last:
        return nn.ConvTranspose2d(i, o, 4, 2, 1)
    return nn.Sequential(nn.ConvTranspose2d(i, o, 4, 2, 1), nn.BatchNorm2d(o), nn.ReLU())


class UNetGenerator(nn.Module):
    def __init__(self, tracks: int, widths: list[int], latent_channels: int):
        super().__init__()
        w = list(widths) + [latent_channels]  # e.g. 32, 64, 128, 512: 16x64, 8x32, 4x16, 2x8
        self.down = nn.ModuleList()
        c = 2 * tracks  # given roll + mask
        for o in w:
            self.down.append(_down(c, o))
            c = o
        self.up = nn.ModuleList()
        c = latent_channels + w[-1]
        for i in range(len(w) - 1, 0, -1):  # 2x8 -> 4x16 -> 8x32 -> 16x64
            self.up.append(_up(c, w[i - 1]))
            c = 2 * w[i - 1]
        self.last = _up(c, tracks, last=True)
        # start sparse: about 1.5% of a chorale roll is on; sigmoid(-4) = 1.8% (with bias 0 half the keys
        # sound at first and the first hundreds of steps are spent switching them off)
        nn.init.constant_(self.last.bias, -4.0)

    def forward(self, z, given, mask):
        h = torch.cat([given * mask, mask.expand_as(given)], 1)
        skips = []
        for d in self.down:
            h = d(h)
            skips.append(h)
        h = torch.cat([z, skips.pop()], 1)
        for u in self.up:
            h = torch.cat([u(h), skips.pop()], 1)
        return torch.sigmoid(self.last(h))


class RollCritic(nn.Module):
    def __init__(self, tracks: int, widths: list[int], seq_len: int, pitches: int = 128):
        super().__init__()
        layers, c = [], tracks
        for o in widths:
            layers.append(_down(c, o))
            c = o
        self.conv = nn.Sequential(*layers)
        f = 2 ** len(widths)
        self.out = nn.Linear(c * (seq_len // f) * (pitches // f), 1)

    def forward(self, x):
        return self.out(self.conv(x).flatten(1))


@register_model("chorale_wgan")
class ChoraleWGAN(GANBase):
    CONTROL_NOTES = {"threshold": '"calibrated" (default: as many voice-steps sound as in the chorales) or a '
                                  "number such as the seed's 0.5 (set in [sample]; no CLI flag)"}

    def __init__(self, seq_len: int = 32, n_tracks: int = 4, latent_channels: int = 512,
                 gen_widths: list[int] = (32, 64, 128), critic_widths: list[int] = (32, 64, 128, 256),
                 p_condition: float = 0.5, p_soprano: float = 0.5, loss: str = "wgan-gp", gp_weight: float = 10.0):
        super().__init__(loss=loss, gp_weight=gp_weight)
        if seq_len % 16:
            raise TunesmithError(f"chorale_wgan needs data.seq_len divisible by 16 (32 in the seed), not {seq_len}")
        self.seq_len, self.n_tracks, self.latent_channels = int(seq_len), int(n_tracks), int(latent_channels)
        self.p_condition, self.p_soprano = float(p_condition), float(p_soprano)
        self.generator = UNetGenerator(self.n_tracks, list(gen_widths), self.latent_channels)
        self.critic = RollCritic(self.n_tracks, list(critic_widths), self.seq_len)

    def real_input(self, batch):
        return batch["roll"]

    def latent(self, n, generator=None):
        return torch.randn(n, self.latent_channels, self.seq_len // 16, 8, device=self.device, generator=generator)

    def complete(self, given, mask, generator=None):
        """Fill the voices where ``mask`` (B, tracks, 1, 1) is 0; the given ones are copied unchanged."""
        out = self.generator(self.latent(len(given), generator), given, mask)
        return mask * given + (1 - mask) * out

    def fake(self, n, generator=None, real=None):
        mask = torch.zeros(n, self.n_tracks, 1, 1, device=self.device)
        given = torch.zeros(n, self.n_tracks, self.seq_len, 128, device=self.device)
        if real is not None and self.training and self.p_condition > 0:
            cond = torch.rand(n, device=self.device) < self.p_condition
            voice = torch.randint(0, self.n_tracks, (n,), device=self.device)
            voice = torch.where(torch.rand(n, device=self.device) < self.p_soprano, torch.zeros_like(voice), voice)
            mask[cond, voice[cond]] = 1.0
            given = real
        return self.complete(given, mask, generator)

    def discrete(self, x):
        return x > 0.5

    def to_scores(self, x, codec, tempo: float = 120.0, **opts):
        return [codec.decode(r, tempo=tempo) for r in x.detach().cpu().numpy()]

    @torch.no_grad()
    def accompany(self, codec, melody, n: int = 1, voice: int = 0, generator=None, tempo: float = 120.0):
        """n harmonisations of a melody (Score) given as ``voice``; windows of seq_len steps."""
        roll = torch.tensor(codec.melody_roll(melody, voice), dtype=torch.float32, device=self.device)
        chunks = roll.split(self.seq_len, dim=1)
        mask = torch.zeros(n, self.n_tracks, 1, 1, device=self.device)
        mask[:, voice] = 1.0
        outs = [self.complete(c.unsqueeze(0).expand(n, -1, -1, -1), mask, generator) for c in chunks]
        full = torch.cat(outs, 2)
        return [codec.decode(r, tempo=tempo) for r in full.cpu().numpy()]

    @torch.no_grad()
    def generate(self, codec, n, generator=None, tempo: float = 120.0, condition: str | None = None,
                 threshold: float | str = "calibrated"):
        """Compose n 2-bar chorales, or accompany the melody file ``condition``. Unconditional decoding:
        ``threshold = "calibrated"`` (default) keeps a voice's strongest pitch where it exceeds the threshold at
        which as many (voice, step) cells sound as in the chorales (``calibrated_threshold``); a number (the
        seed's 0.5) uses that fixed threshold."""
        if condition:
            from pathlib import Path

            from ..data.corpora import parse_file

            p = Path(condition).expanduser()
            if not p.is_file():
                raise TunesmithError(f"--condition must be a melody file (MIDI, MusicXML, ABC, kern): {p} not found")
            return self.accompany(codec, parse_file(p)[0], n, 0, generator, tempo)
        x = self.fake(n, generator=generator)
        if threshold == "calibrated":
            from ..data.chorale_roll import calibrated_threshold

            threshold = calibrated_threshold(x)
        elif isinstance(threshold, str) or not 0 < float(threshold) < 1:
            raise TunesmithError(f"threshold must be \"calibrated\" or a number in (0, 1), not {threshold!r}")
        return [codec.decode(r, tempo=tempo, threshold=float(threshold)) for r in x.cpu().numpy()]
