"""The machinery every GAN family in tunesmith builds on (moved out of the seed-000 file).

:class:`GANBase` answers the adversarial contract of :mod:`tunesmith.models.base` --
``forward(batch, mode="critic")`` (critic loss: BCE, Wasserstein, gradient penalty, L2 kernel penalty) and
``forward(batch, mode="generator")`` -- so the one trainer runs every GAN. A family only says how to read a
real batch (``real_input``), how to make fakes (``fake``), how to turn generator output into discrete music
(``discrete``) and into Scores (``to_scores``).

Logged per step (``d_*`` from the last critic update, ``g_*`` from the generator update): losses, the
Wasserstein estimate (``d_wasserstein`` = mean critic score real - fake), the gradient penalty and the mean
input-gradient norm, and a mode-collapse indicator on the generator's batch: ``g_distinct`` (fraction of
distinct discrete samples) and ``g_pairwise`` (mean pairwise Hamming distance between them). At every
checkpoint ``on_checkpoint`` decodes a fixed-noise batch, writes ``RUN/samples/step_XXXXXX.png`` (piano
rolls) and appends the same indicators to ``RUN/gan_diversity.csv``.
"""
from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .base import TunesmithModel

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


def without_cudnn_rnn(module: nn.Module):
    """cuDNN's RNN kernels have no double backward, and the gradient penalty differentiates the critic's input
    gradient: a critic with an LSTM/GRU (lstm_gan, gan_dense) runs that pass on PyTorch's own RNN kernels
    ("the derivative for '_cudnn_rnn_backward' is not implemented" on a GPU otherwise). Convolutional critics
    keep cuDNN."""
    if any(isinstance(m, nn.RNNBase) for m in module.modules()):
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


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
                with without_cudnn_rnn(self.critic):
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
            # on the loss's device: the trainer stacks every logged value into one tensor (one host sync)
            out.update(loss=loss, distinct=torch.tensor(dist, device=loss.device),
                       pairwise=torch.tensor(pair, device=loss.device))
            return out
        raise TunesmithError(f"{type(self).__name__} is adversarial: forward takes mode 'critic' or 'generator'")

    # ---- sampling and checkpoints
    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, tempo: float = 120.0):
        x = self.fake(n, generator=generator)
        return self.to_scores(x, codec, tempo=tempo)

    @torch.no_grad()
    def on_checkpoint(self, ctx) -> None:
        run_dir, step = Path(ctx.run_dir), ctx.step
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
            w.writerow([step, f"{dist:.4f}", f"{pair:.4f}"])
        codec = ctx.codec
        from .plotting import save_roll_grid

        scores = self.to_scores(x[:8], codec)
        save_roll_grid(scores, run_dir / "samples" / f"step_{step:06d}.png", cols=4,
                       title=f"{self.registry_name} step {step}: distinct {dist:.2f}, pairwise {pair:.2f}")
