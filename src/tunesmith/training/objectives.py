"""How one training step works for each objective. The trainer owns everything else."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch

from ..config import TrainConfig
from ..errors import TunesmithError


def make_optimizer(name: str, params, lr: float, betas, weight_decay: float) -> torch.optim.Optimizer:
    name = name.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise TunesmithError(f"unknown train.optimizer {name!r}; use adam, adamw, rmsprop or sgd")


class Objective:
    """Base: one optimizer over all parameters, ``loss`` mode, one batch per step."""

    batches_per_step = 1

    def __init__(self, model, cfg: TrainConfig):
        self.cfg = cfg
        self.optimizers = {"model": make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.betas,
                                                   cfg.weight_decay)}

    def autocast(self, device: torch.device):
        if self.cfg.precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, net, model, opt, loss, params, norm: bool = False) -> torch.Tensor | None:
        """Backward and step; clips to ``train.grad_clip`` when set. With ``norm`` (or clipping) returns the
        parameter-gradient norm before clipping, for the logs."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        total = None
        if self.cfg.grad_clip or norm:
            total = torch.nn.utils.clip_grad_norm_([p for p in params if p.requires_grad],
                                                   self.cfg.grad_clip or float("inf"))
        opt.step()
        return total

    def step(self, net, model, next_batch: Callable[[], dict], step: int, device) -> dict[str, torch.Tensor]:
        with self.autocast(device):
            out = net(next_batch(), mode="loss", step=step)
        self._update(net, model, self.optimizers["model"], out["loss"], model.parameters())
        return out

    @torch.no_grad()
    def validate(self, model, data, batch_size: int, device, step: int) -> dict[str, float]:
        if data is None or len(data) == 0:
            return {}
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        n = 0
        for i in range(0, len(data), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(data)))
            batch = {k: v.to(device) for k, v in data.batch(idx).items()}
            with self.autocast(device):
                out = model(batch, mode="loss", step=step)
            for k, v in out.items():
                v = (v.detach().double().to(device) if torch.is_tensor(v) else torch.tensor(float(v), dtype=torch.float64,
                                                                                 device=device)) * len(idx)
                sums[k] = sums[k] + v if k in sums else v
            n += len(idx)
        model.train()
        keys = list(sums)
        values = torch.stack([sums[k].reshape(()) for k in keys]).tolist() if keys else []   # one host sync
        return {k: v / n for k, v in zip(keys, values)}


class LikelihoodObjective(Objective):
    """Maximum likelihood (cross-entropy, MSE...): the model's ``loss``."""


class VariationalObjective(Objective):
    """ELBO: the model's ``loss`` is reconstruction + beta * KL; ``step`` drives KL annealing."""


class AdversarialObjective(Objective):
    """GANs and WGANs: ``n_critic`` critic updates (each on a fresh batch, optional weight clipping),
    then one generator update. The model computes its own losses (BCE, Wasserstein, gradient penalty)."""

    def __init__(self, model, cfg: TrainConfig):
        self.cfg = cfg
        if not hasattr(model, "generator") or not hasattr(model, "critic"):
            raise TunesmithError(f"{type(model).__name__} is adversarial but has no generator/critic modules")
        self.batches_per_step = max(1, int(cfg.n_critic))
        self.optimizers = {
            "generator": make_optimizer(cfg.optimizer, model.generator.parameters(), cfg.lr, cfg.betas,
                                        cfg.weight_decay),
            "critic": make_optimizer(cfg.optimizer_critic or cfg.optimizer, model.critic.parameters(),
                                     cfg.lr_critic or cfg.lr, cfg.betas_critic or cfg.betas, cfg.weight_decay),
        }

    def step(self, net, model, next_batch, step, device):
        logs: dict[str, torch.Tensor] = {}
        for _ in range(self.batches_per_step):
            with self.autocast(device):
                d_out = net(next_batch(), mode="critic", step=step)
            d_norm = self._update(net, model, self.optimizers["critic"], d_out["loss"], model.critic.parameters(),
                                  norm=True)
            if self.cfg.clip_critic:
                with torch.no_grad():
                    for p in model.critic.parameters():
                        p.clamp_(-self.cfg.clip_critic, self.cfg.clip_critic)
        with self.autocast(device):
            g_out = net(next_batch.last(), mode="generator", step=step)
        g_norm = self._update(net, model, self.optimizers["generator"], g_out["loss"], model.generator.parameters(),
                              norm=True)
        logs.update({k if k.startswith("d_") else f"d_{k}": v for k, v in d_out.items()})
        logs.update({k if k.startswith("g_") else f"g_{k}": v for k, v in g_out.items()})
        logs["d_grad_norm"], logs["g_grad_norm"] = d_norm, g_norm
        logs["loss"] = g_out["loss"]
        return logs

    @torch.no_grad()
    def validate(self, model, data, batch_size, device, step):
        return {}  # a GAN has no held-out likelihood; evaluation compares samples instead


OBJECTIVES = {"likelihood": LikelihoodObjective, "variational": VariationalObjective,
              "adversarial": AdversarialObjective}


def make_objective(model, cfg: TrainConfig) -> Objective:
    kind = getattr(model, "objective", "likelihood")
    if kind not in OBJECTIVES:
        raise TunesmithError(f"unknown objective {kind!r}")
    return OBJECTIVES[kind](model, cfg)
