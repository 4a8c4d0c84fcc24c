"""The contract between models and the one trainer.

A model is an ``nn.Module`` whose ``forward(batch, mode=..., step=...)`` returns a dict of scalar tensors with
a ``"loss"`` entry (plus any metrics to log). Which modes it answers depends on its ``objective``:

* ``"likelihood"`` and ``"variational"``: ``mode="loss"`` (training and validation; ``step`` lets a VAE
  anneal its KL weight);
* ``"adversarial"``: ``mode="critic"`` (critic/discriminator loss, gradient penalty included) and
  ``mode="generator"``; the model has ``generator`` and ``critic`` sub-modules, each optimised on its own.

Because everything goes through ``forward``, the trainer can wrap the whole model in
``DistributedDataParallel`` for every objective.

``generate(codec, n, **options)`` makes new pieces and returns a list of :class:`~tunesmith.data.Score`
or of :class:`Audio`; ``sampling/`` writes them to files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import torch
from torch import nn

MODELS: dict[str, type["TunesmithModel"]] = {}


def register_model(name: str):
    def deco(cls):
        MODELS[name] = cls
        cls.registry_name = name
        return cls
    return deco


def gaussian_kl_loss(mu, logvar, beta: float, step: int, warmup_steps: int):
    """KL(q(z|x) || N(0, I)) averaged over the batch, and its weight: ``beta`` ramped linearly over the first
    ``warmup_steps`` (none: full weight). Returns (weighted term, kl)."""
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
    weight = beta * (min(1.0, step / warmup_steps) if warmup_steps else 1.0)
    return weight * kl, kl


@dataclass
class Audio:
    """A generated clip: mono float samples in [-1, 1]."""
    samples: np.ndarray
    sample_rate: int
    label: str = ""
    pitch: int = -1           # the MIDI pitch a conditional model was asked for (-1: none)


@dataclass
class CheckpointContext:
    """What a model's ``on_checkpoint`` hook gets from the trainer: the training data, its codec, the step
    the checkpoint is written at and the run directory (``None`` outside a run)."""
    data: Any
    codec: Any
    step: int
    run_dir: Optional[Path]


#: How the web page (serve/) presents a model: each family declares one as ``page_kind`` and serve/ reads that
#: declaration (and the controls of models/controls.py), never the model's attributes or signatures.
PAGE_KINDS: dict[str, str] = {
    "lstm": "continues a melody: primer in the encoding's text, temperature, steps (controls primer, temperature, "
            "steps; a codec with vocab and step)",
    "vae": "latent sliders: slider_z(values), decode(codes, label), encode_score and the slider buffers "
           "(control sliders)",
    "chorale": "harmonises a melody in serve/harmonize.py's panel (control melody; a harmonize method)",
    "generic": "samples; the page offers tempo and seed",
    "audio": "makes audio (a list of Audio), which the page does not play yet",
}


class TunesmithModel(nn.Module):
    objective: ClassVar[str] = "likelihood"
    registry_name: ClassVar[str] = ""
    #: how the web page presents this model: a key of PAGE_KINDS
    page_kind: ClassVar[str] = "generic"
    #: what the validation loss measures, for messages (e.g. "nats/step")
    loss_unit: ClassVar[str] = ""

    def forward(self, batch: dict[str, torch.Tensor], mode: str = "loss", step: int = 0) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, codec, n: int, **options) -> list[Any]:
        raise NotImplementedError

    def on_checkpoint(self, ctx: "CheckpointContext") -> None:
        """Called on rank 0 before each checkpoint is written (e.g. refresh buffers, write a PNG)."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
