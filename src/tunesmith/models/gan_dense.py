"""Seed 000's GAN and WGAN over sequences of 100 normalised note indices, plus the shared GAN machinery.

:class:`GANBase` is what every GAN family in tunesmith builds on. It answers the adversarial contract of
:mod:`tunesmith.models.base` -- ``forward(batch, mode="critic")`` (critic loss: BCE, Wasserstein, gradient
penalty, L2 kernel penalty) and ``forward(batch, mode="generator")`` -- so the one trainer runs every GAN.
A family only says how to read a real batch (``real_input``), how to make fakes (``fake``), how to turn
generator output into discrete music (``discrete``) and into Scores (``to_scores``).

Logged per step (``d_*`` from the last critic update, ``g_*`` from the generator update): losses, the
Wasserstein estimate (``d_wasserstein`` = mean critic score real - fake), the gradient penalty and the mean
input-gradient norm, and a mode-collapse indicator on the generator's batch: ``g_distinct`` (fraction of
distinct discrete samples) and ``g_pairwise`` (mean pairwise Hamming distance between them). At every
checkpoint ``on_checkpoint`` decodes a fixed-noise batch, writes ``RUN/samples/step_XXXXXX.png`` (piano
rolls) and appends the same indicators to ``RUN/gan_diversity.csv``.

Seed 000 (appendix A.2/A.4, Keras): generator Dense 256 -> 512 -> 1024 (LeakyReLU 0.2, BatchNorm momentum
0.8) -> Dense 100 tanh: a *regression* of 100 note indices scaled to [-1, 1]; discriminator LSTM 512 ->
BiLSTM 512 -> Dense 512 -> 256 -> 100 (LeakyReLU 0.2) -> Dropout 0.5 -> Dense 1 (sigmoid; linear for the
WGAN critic). The WGAN variant adds Gaussian noise (sigma 0.1) after the layers and an L2 kernel penalty.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .base import TunesmithModel, register_model

LOSSES = ("bce", "wgan", "wgan-gp")


# ----------------------------------------------------------------------------- shared pieces
def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator=None):
    """WGAN-GP (Gulrajani et al. 2017): mean over the batch of (||grad_x critic(x_hat)||_2 - 1)^2 at random
    points x_hat on the lines between real and fake samples. Returns (penalty, mean gradient norm)."""
    a = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype,
                   generator=generator)
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    out = critic(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norm = g.flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean(), norm.mean()


def kernel_l2(module: nn.Module) -> torch.Tensor:
    """Sum of squared kernels (weights of Linear/Conv layers, not biases or norms), as Keras'
    ``kernel_regularizer=l2(lambda)`` adds lambda * this to the loss."""
    total = None
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
            s = (m.weight ** 2).sum()
            total = s if total is None else total + s
    return total if total is not None else torch.zeros(())


def diversity(d: torch.Tensor) -> tuple[float, float]:
    """Mode-collapse indicator of a batch of discrete samples (n, ...): (fraction of distinct samples,
    mean pairwise Hamming distance as a fraction of positions). Collapse shows as both falling to ~0."""
    d = d.reshape(len(d), -1)
    n = len(d)
    if n < 2:
        return 1.0, 0.0
    distinct = len(torch.unique(d, dim=0)) / n
    diff = (d[:, None, :] != d[None, :, :]).float().mean(-1)
    pairwise = diff.sum() / (n * (n - 1))
    return float(distinct), float(pairwise)


class GaussianNoise(nn.Module):
    """Keras' GaussianNoise: adds N(0, sigma^2) in training mode only."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x):
        if self.training and self.sigma > 0:
            return x + torch.randn_like(x) * self.sigma
        return x


class GANBase(TunesmithModel):
    """Adversarial losses, logging and checkpoint pictures shared by every GAN family."""

    objective = "adversarial"
    n_fixed = 32  # fixed-noise batch for on_checkpoint

    def __init__(self, loss: str = "bce", gp_weight: float = 10.0, l2: float = 0.0, l2_generator: bool = True):
        super().__init__()
        if loss not in LOSSES:
            raise TunesmithError(f"model.loss must be one of {', '.join(LOSSES)}, not {loss!r}")
        self.loss_kind, self.gp_weight, self.l2 = loss, float(gp_weight), float(l2)
        self.l2_generator = bool(l2_generator)
        self._step = 0

    # ---- hooks each family provides
    def real_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def fake(self, n: int, generator: torch.Generator | None = None, real: torch.Tensor | None = None):
        """n generator outputs in the form the critic reads (``real`` lets conditional models condition)."""
        raise NotImplementedError

    def discrete(self, x: torch.Tensor) -> torch.Tensor:
        """Generator output (or real input) -> the discrete music it stands for, (n, ...)."""
        raise NotImplementedError

    def to_scores(self, x: torch.Tensor, codec, tempo: float = 120.0, **opts) -> list:
        raise NotImplementedError

    # ---- the adversarial contract
    def critic_score(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).reshape(-1)

    def forward(self, batch, mode: str = "loss", step: int = 0):
        real = self.real_input(batch)
        n = real.shape[0]
        if mode == "critic":
            self._step = step
            with torch.no_grad():
                fake = self.fake(n, real=real)
            d_real, d_fake = self.critic_score(real), self.critic_score(fake)
            out: dict[str, torch.Tensor] = {"real": d_real.mean().detach(), "fake": d_fake.mean().detach()}
            if self.loss_kind == "bce":
                loss = 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
                out["acc"] = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
            else:
                w = d_real.mean() - d_fake.mean()
                loss = -w
                out["wasserstein"] = w.detach()
            out["adv"] = loss.detach()
            if self.loss_kind == "wgan-gp":
                gp, gnorm = gradient_penalty(self.critic_score, real, fake)
                loss = loss + self.gp_weight * gp
                out["gp"], out["input_grad_norm"] = gp.detach(), gnorm.detach()
            if self.l2:
                pen = self.l2 * kernel_l2(self.critic)
                loss = loss + pen
                out["l2"] = pen.detach()
            out["loss"] = loss
            return out
        if mode == "generator":
            self._step = step + 1
            fake = self.fake(n, real=real)
            d_fake = self.critic_score(fake)
            if self.loss_kind == "bce":
                loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            else:
                loss = -d_fake.mean()
            out = {"adv": loss.detach()}
            if self.l2 and self.l2_generator:
                pen = self.l2 * kernel_l2(self.generator)
                loss = loss + pen
                out["l2"] = pen.detach()
            with torch.no_grad():
                dist, pair = diversity(self.discrete(fake.detach()))
            out.update(loss=loss, distinct=torch.tensor(dist), pairwise=torch.tensor(pair))
            return out
        raise TunesmithError(f"{type(self).__name__} is adversarial: forward takes mode 'critic' or 'generator'")

    # ---- sampling and checkpoints
    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, tempo: float = 120.0):
        x = self.fake(n, generator=generator)
        return self.to_scores(x, codec, tempo=tempo)

    @torch.no_grad()
    def on_checkpoint(self, train_data, run_dir) -> None:
        run_dir = Path(run_dir)
        g = torch.Generator(device=self.device)
        g.manual_seed(1234)  # the same noise at every checkpoint
        x = self.fake(self.n_fixed, generator=g)
        dist, pair = diversity(self.discrete(x))
        path = run_dir / "gan_diversity.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "distinct", "pairwise"])
            w.writerow([self._step, f"{dist:.4f}", f"{pair:.4f}"])
        codec = getattr(train_data, "codec", None)
        if codec is None:
            return
        from .plotting import save_roll_grid

        scores = self.to_scores(x[:8], codec)
        save_roll_grid(scores, run_dir / "samples" / f"step_{self._step:06d}.png", cols=4,
                       title=f"{self.registry_name} step {self._step}: distinct {dist:.2f}, pairwise {pair:.2f}")


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

    def __init__(self, n_vocab: int, seq_len: int = 100, latent_dim: int = 1000,
                 gen_hidden: list[int] = (256, 512, 1024), disc_hidden: int = 512,
                 disc_dense: list[int] = (512, 256, 100), dropout: float = 0.5, noise: float = 0.0,
                 bn_momentum: float = 0.8, loss: str = "bce", gp_weight: float = 10.0, l2: float = 0.0):
        super().__init__(loss=loss, gp_weight=gp_weight, l2=l2)
        self.n_vocab, self.seq_len, self.latent_dim = int(n_vocab), int(seq_len), int(latent_dim)
        self.generator = DenseGenerator(self.latent_dim, list(gen_hidden), self.seq_len, noise, bn_momentum)
        self.critic = LSTMDiscriminator(1, disc_hidden, list(disc_dense), dropout, noise)

    def normalise(self, idx: torch.Tensor) -> torch.Tensor:
        half = self.n_vocab / 2
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
        half = self.n_vocab / 2
        idx = torch.trunc(x * half + half).long()
        return torch.where((idx >= 0) & (idx < self.n_vocab), idx, torch.full_like(idx, -1))

    def to_scores(self, x, codec, tempo: float = 120.0, **opts):
        return [codec.decode(row, tempo=tempo) for row in self.discrete(x).tolist()]
