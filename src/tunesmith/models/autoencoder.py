"""Seed 001's autoencoder, variational autoencoder and a conditional VAE over whole-piece piano rolls.

The network is the seed's (its figures 4.7-4.11, layer sizes after the 16-bar Keras design it follows):
per bar (a time-distributed dense layer shared by the 16 bars) ``96*pitches -> bar_hidden (2000) ->
bar_code (200)``, then the 16 bar codes flattened ``-> hidden (1600) -> latent (100)``; the decoder mirrors
it and ends in a sigmoid per roll cell. ReLU, batch normalisation and dropout 0.2 between layers.
Loss: binary cross-entropy summed over the roll (+ ``beta`` x KL for the VAE, optionally annealed from 0
over ``kl_warmup_steps``). ``output = "softmax"`` is our alternative for melodies: one categorical choice
per time step among the pitches and "silence", so every decoded step is a clear decision instead of 35
independent coin flips that all stay under 0.5 early in training (see docs/autoencoders.md).

**Sliders.** ``on_checkpoint`` encodes (up to ``slider_items``) training items and stores, as buffers
saved with the weights: the latent mean, each slider's direction and scale. ``slider_basis = "std"`` (the
seed) ranks latent dimensions by their standard deviation over the encoded set and makes the top
``n_sliders`` the sliders; ``"pca"`` uses the principal directions of the codes instead. A slider value
is in standard deviations: ``z = mean + sum_i value_i * scale_i * direction_i``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .base import TunesmithModel, gaussian_kl_loss, register_model

SLIDER_RANGE = 3.0  # slider values are in standard deviations, within +-SLIDER_RANGE


class RollAutoencoder(TunesmithModel):
    objective = "likelihood"
    page_kind = "vae"
    variational = False
    conditional = False

    def __init__(self, pitches: int, bars: int = 16, steps_per_bar: int = 96, n_labels: int = 0,
                 latent_dim: int = 100, hidden: int = 1600, bar_hidden: int = 2000, bar_code: int = 200,
                 dropout: float = 0.2, bn_momentum: float = 0.1, batch_norm: bool = True, output: str = "sigmoid",
                 beta: float = 1.0, kl_warmup_steps: int = 0, n_sliders: int = 20, slider_basis: str = "std",
                 slider_items: int = 2048):
        super().__init__()
        if output not in ("sigmoid", "softmax"):
            raise TunesmithError(f"model.output must be 'sigmoid' or 'softmax', not {output!r}")
        if slider_basis not in ("std", "pca"):
            raise TunesmithError(f"model.slider_basis must be 'std' or 'pca', not {slider_basis!r}")
        if self.conditional and n_labels < 2:
            raise TunesmithError("a conditional VAE needs labels: set data.condition (meter, mode or corpus)")
        self.pitches, self.bars, self.steps_per_bar = int(pitches), int(bars), int(steps_per_bar)
        self.latent_dim, self.output, self.beta, self.kl_warmup_steps = int(latent_dim), output, float(beta), int(kl_warmup_steps)
        self.n_labels = int(n_labels) if self.conditional else 0
        self.n_sliders, self.slider_basis_kind, self.slider_items = min(int(n_sliders), self.latent_dim), slider_basis, int(slider_items)
        bar_in = steps_per_bar * pitches
        bar_out = steps_per_bar * (pitches + 1 if output == "softmax" else pitches)

        def bn(n):
            return nn.BatchNorm1d(n, momentum=bn_momentum) if batch_norm else nn.Identity()

        self.bn = bn
        self.enc_bar = nn.Sequential(nn.Linear(bar_in, bar_hidden), nn.ReLU(), nn.Linear(bar_hidden, bar_code),
                                     nn.ReLU())
        self.enc = nn.Sequential(nn.Linear(bars * bar_code + self.n_labels, hidden), bn(hidden), nn.ReLU(),
                                 nn.Dropout(dropout))
        self.to_latent = nn.Linear(hidden, latent_dim * (2 if self.variational else 1))
        self.dec = nn.Sequential(nn.Linear(latent_dim + self.n_labels, hidden), bn(hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, bars * bar_code), bn(bars * bar_code), nn.ReLU(),
                                 nn.Dropout(dropout))
        self.dec_bar = nn.Sequential(nn.Linear(bar_code, bar_hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(bar_hidden, bar_out))
        self.bar_code = bar_code
        # slider state, filled by on_checkpoint and saved with the weights
        self.register_buffer("latent_mean", torch.zeros(latent_dim))
        self.register_buffer("latent_std", torch.ones(latent_dim))
        self.register_buffer("slider_basis", torch.eye(latent_dim)[: self.n_sliders].clone())
        self.register_buffer("slider_scale", torch.ones(self.n_sliders))
        self.register_buffer("slider_dims", torch.arange(self.n_sliders))

    # ------------------------------------------------------------------ network
    def _onehot(self, label, n: int) -> torch.Tensor | None:
        if not self.n_labels:
            return None
        if label is None:
            raise TunesmithError("this conditional model needs a condition label")
        label = torch.as_tensor(label, device=self.device).long().reshape(-1)
        if label.numel() == 1 and n > 1:
            label = label.expand(n)
        return F.one_hot(label, self.n_labels).float()

    def encode(self, roll: torch.Tensor, label=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Roll (B, T, P) -> (mu, logvar); logvar is None for the plain autoencoder."""
        B = roll.shape[0]
        h = self.enc_bar(roll.reshape(B, self.bars, -1)).reshape(B, -1)
        c = self._onehot(label, B)
        if c is not None:
            h = torch.cat([h, c], 1)
        out = self.to_latent(self.enc(h))
        if self.variational:
            mu, logvar = out.chunk(2, dim=1)
            return mu, logvar.clamp(-30, 20)
        return out, None

    def decode_logits(self, z: torch.Tensor, label=None) -> torch.Tensor:
        B = z.shape[0]
        c = self._onehot(label, B)
        if c is not None:
            z = torch.cat([z, c], 1)
        h = self.dec(z).reshape(B, self.bars, self.bar_code)
        out = self.dec_bar(h)
        width = self.pitches + (1 if self.output == "softmax" else 0)
        return out.reshape(B, self.bars * self.steps_per_bar, width)

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> per-cell probabilities (B, T, P). For the softmax output: the chosen pitch per step
        (argmax, silence included) as 1, others 0 -- a decision, so the threshold does not matter."""
        if self.output == "sigmoid":
            return torch.sigmoid(logits)
        choice = logits.argmax(-1)
        return F.one_hot(choice, self.pitches + 1)[..., : self.pitches].to(logits.dtype)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, label=None) -> torch.Tensor:
        return self.probs(self.decode_logits(z, label))

    def recon_loss(self, logits: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
        """Summed over the roll, mean over the batch (nats per piece)."""
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(logits.float(), roll, reduction="sum") / len(roll)
        on = roll.sum(-1) > 0
        target = torch.where(on, roll.float().argmax(-1), torch.full_like(on, self.pitches, dtype=torch.long))
        return F.cross_entropy(logits.float().reshape(-1, self.pitches + 1), target.reshape(-1),
                               reduction="sum") / len(roll)

    def forward(self, batch, mode: str = "loss", step: int = 0):
        roll = batch["roll"]
        label = batch.get("label") if self.n_labels else None
        mu, logvar = self.encode(roll, label)
        if self.variational:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        else:
            z = mu
        logits = self.decode_logits(z, label)
        rec = self.recon_loss(logits, roll)
        out = {"recon": rec}
        loss = rec
        if self.variational:
            kl_term, kl = gaussian_kl_loss(mu, logvar, self.beta, step, self.kl_warmup_steps)
            loss = rec + kl_term
            out["kl"] = kl
        with torch.no_grad():
            pred = self.probs(logits) > 0.5
            tgt = roll > 0.5
            tp = (pred & tgt).sum()
            out["f1"] = 2 * tp / (pred.sum() + tgt.sum()).clamp(min=1)
        out["loss"] = loss
        return out

    # ------------------------------------------------------------------ sliders
    @torch.no_grad()
    def encode_items(self, data, max_items: int | None = None, batch_size: int = 256) -> np.ndarray:
        """Latent means of (an evenly spaced subset of) a dataset's items."""
        n = len(data)
        k = min(n, max_items or n)
        idx = torch.linspace(0, n - 1, k).round().long().unique()
        was = self.training
        self.eval()
        codes = []
        for i in range(0, len(idx), batch_size):
            b = data.batch(idx[i:i + batch_size])
            mu, _ = self.encode(b["roll"].to(self.device), b.get("label").to(self.device) if self.n_labels else None)
            codes.append(mu.float().cpu())
        self.train(was)
        return torch.cat(codes).numpy()

    @torch.no_grad()
    def fit_sliders(self, codes: np.ndarray) -> dict:
        codes = np.asarray(codes, np.float64)
        mean, std = codes.mean(0), codes.std(0) + 1e-8
        k = self.n_sliders
        if self.slider_basis_kind == "std":
            dims = np.argsort(-std, kind="stable")[:k]
            basis = np.eye(self.latent_dim)[dims]
            scale = std[dims]
        else:
            u, s, vt = np.linalg.svd(codes - mean, full_matrices=False)
            basis = vt[:k]
            scale = s[:k] / np.sqrt(max(len(codes), 1))
            dims = np.argmax(np.abs(basis), 1)
            if len(basis) < k:  # fewer items than sliders
                pad = k - len(basis)
                basis = np.concatenate([basis, np.zeros((pad, self.latent_dim))])
                scale = np.concatenate([scale, np.zeros(pad)])
                dims = np.concatenate([dims, np.zeros(pad, int)])
        dev = self.latent_mean.device
        self.latent_mean.copy_(torch.as_tensor(mean, dtype=torch.float32, device=dev))
        self.latent_std.copy_(torch.as_tensor(std, dtype=torch.float32, device=dev))
        self.slider_basis.copy_(torch.as_tensor(basis, dtype=torch.float32, device=dev))
        self.slider_scale.copy_(torch.as_tensor(scale, dtype=torch.float32, device=dev))
        self.slider_dims.copy_(torch.as_tensor(dims, dtype=torch.long, device=dev))
        return {"basis": self.slider_basis_kind, "items": int(len(codes)), "dims": [int(d) for d in dims],
                "scale": [round(float(s), 5) for s in scale], "latent_std_sorted": sorted((round(float(s), 5) for s in std), reverse=True)}

    def on_checkpoint(self, ctx) -> None:
        info = self.fit_sliders(self.encode_items(ctx.data, self.slider_items))
        run_dir = Path(ctx.run_dir)
        tmp = run_dir / ".sliders.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(run_dir / "sliders.json")
        try:
            _plot_spread(info["latent_std_sorted"], self.n_sliders, run_dir / "latent_spread.png")
        except Exception:  # a plot must never stop training
            pass

    def slider_z(self, values, n_rows: int = 1) -> torch.Tensor:
        """Slider values (k <= n_sliders, in std units) -> latent codes (n_rows, latent)."""
        v = torch.as_tensor(values, dtype=torch.float32, device=self.latent_mean.device)
        if v.dim() == 1:
            v = v[None]
        if v.shape[1] > self.n_sliders:
            raise TunesmithError(f"{v.shape[1]} slider values given; this model has {self.n_sliders} sliders")
        if not torch.isfinite(v).all() or v.abs().max() > 10 * SLIDER_RANGE:
            raise TunesmithError(f"slider values must be finite and within +-{10 * SLIDER_RANGE:g}")
        k = v.shape[1]
        z = self.latent_mean + (v * self.slider_scale[:k]) @ self.slider_basis[:k]
        return z.expand(n_rows, -1) if len(z) == 1 else z

    # ------------------------------------------------------------------ generation
    def prior(self, n: int, generator=None) -> torch.Tensor:
        eps = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        if self.variational:
            return eps
        return self.latent_mean + eps * self.latent_std  # AE: a Gaussian fitted to the encoded data

    @torch.no_grad()
    def generate(self, codec, n: int, generator=None, sliders: list[float] | None = None, interpolate=None, condition=None,
                 tempo: float | None = None, threshold: float | None = None):
        """``sliders``: values in std units (-3..3) for the top sliders -> n identical pieces;
        ``interpolate=(a, b)``: two MIDI paths or Scores -> n pieces on the line between their codes
        (endpoints included); otherwise n pieces from the prior."""
        label = None
        if self.n_labels:
            label = codec.label_index(condition if condition is not None else codec.labels[0])
        elif condition is not None:
            raise TunesmithError(f"{type(self).__name__} is not conditional: it takes no --condition")
        if interpolate is not None:
            if sliders is not None:
                raise TunesmithError("give either sliders or --interpolate, not both")
            a, b = (self.encode_score(codec, x, label) for x in interpolate)
            t = torch.linspace(0, 1, n, device=self.device)[:, None] if n > 1 else torch.zeros(1, 1, device=self.device)
            z = (1 - t) * a + t * b
        elif sliders is not None:
            z = self.slider_z(list(sliders) if not torch.is_tensor(sliders) else sliders, n)
        else:
            z = self.prior(n, generator)
        rolls = self.decode(z, label).float().cpu().numpy()
        return [codec.decode(r, threshold=threshold, tempo=tempo) for r in rolls]

    @torch.no_grad()
    def encode_score(self, codec, piece, label=None) -> torch.Tensor:
        from ..data.midi import read_midi

        score = read_midi(piece) if not hasattr(piece, "pitch") else piece
        roll = torch.from_numpy(codec.encode(score))[None].to(self.device)
        mu, _ = self.encode(roll, label)
        return mu[0]


def _plot_spread(std_sorted, k, path: Path) -> None:
    from ..files import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(6, 2.6), dpi=100)
    ax.bar(range(len(std_sorted)), std_sorted, color=["#d2691e" if i < k else "#999" for i in range(len(std_sorted))])
    ax.set_xlabel("latent dimension (sorted)"); ax.set_ylabel("std over training set")
    ax.set_title(f"latent spread: the top {k} are the sliders")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


@register_model("ae")
class PianoRollAE(RollAutoencoder):
    """Seed 001's autoencoder (BCE reconstruction)."""


@register_model("vae")
class PianoRollVAE(RollAutoencoder):
    """Seed 001's variational autoencoder (BCE + beta x KL)."""
    objective = "variational"
    variational = True


@register_model("cvae")
class PianoRollCVAE(RollAutoencoder):
    """A VAE whose encoder and decoder both see a one-hot label (meter, mode or corpus)."""
    objective = "variational"
    variational = True
    conditional = True
