"""The one training loop: likelihood, adversarial and variational objectives, on CPU, one GPU or many
(``torchrun`` starts one process per GPU; this module then uses DistributedDataParallel)."""
from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ..config import Config, load_config, save_json
from ..data.base import build_data
from ..errors import TunesmithError
from ..models import build_model
from .checkpoint import checkpoint_dir, load_trainer_state, load_weights, write_checkpoint
from .logger import MetricsLogger, plot_losses
from .objectives import make_objective


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TunesmithError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        if device == "cuda":
            device = f"cuda:{local_rank}"
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise TunesmithError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


class Dist:
    """Process-group facts; world 1 when not started by torchrun."""

    def __init__(self, device_kind: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device_kind == "cuda" and torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


class BatchStream:
    """Endless shuffled batches; epoch e uses DistributedSampler's permutation for e (seeded), so the
    position ``consumed`` alone says where training stands -- which is what makes resume exact."""

    def __init__(self, data, batch_size: int, world: int, rank: int, seed: int, device, consumed: int = 0):
        self.data, self.bs, self.device = data, batch_size, device
        self.sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                          drop_last=True)
        self.per_epoch = len(self.sampler) // batch_size
        if self.per_epoch == 0:
            raise TunesmithError(f"train.batch_size {batch_size} is larger than the {len(data)} training items "
                                 f"(per process): lower the batch size or use more data")
        self.consumed, self._epoch, self._idx, self._last = consumed, -1, None, None

    @property
    def epoch(self) -> int:
        return self.consumed // self.per_epoch

    def __call__(self) -> dict[str, torch.Tensor]:
        epoch, off = divmod(self.consumed, self.per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._idx = torch.tensor(list(iter(self.sampler)), dtype=torch.long)
            self._epoch = epoch
        idx = self._idx[off * self.bs:(off + 1) * self.bs]
        self.consumed += 1
        nb = self.device.type == "cuda"
        self._last = {k: v.to(self.device, non_blocking=nb) for k, v in self.data.batch(idx).items()}
        return self._last

    def last(self) -> dict[str, torch.Tensor]:
        return self._last


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except Exception:
            pass


def _say(msg: str, on: bool = True) -> None:
    if on:
        print(msg, file=sys.stderr, flush=True)


def train(config: Config | str | Path, out_dir: str | Path, device: str = "auto", epochs: int | None = None,
          max_steps: int | None = None, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a config into ``out_dir``. Returns a summary dict (also written to ``out_dir/summary.json``)."""
    cfg = load_config(config) if not isinstance(config, Config) else config
    tc = cfg.train
    if epochs is not None:
        tc.epochs, tc.max_steps = int(epochs), None
    if max_steps is not None:
        tc.max_steps = int(max_steps)
    if tc.batch_size < 1 or (tc.max_steps is not None and tc.max_steps < 0) or tc.epochs < 0:
        raise TunesmithError("train.batch_size must be >= 1 and epochs/max_steps >= 0")
    out = Path(out_dir)
    kind = "cuda" if (device == "auto" and torch.cuda.is_available()) or device.startswith("cuda") else "cpu"
    dd = Dist(kind)
    dev = resolve_device(device, dd.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    has_ckpt = (out / "checkpoint" / "model.safetensors").exists() or (out / "checkpoint.old" / "model.safetensors").exists()
    if has_ckpt and not resume:
        raise TunesmithError(f"{out} already holds a checkpoint: pass --resume to continue it, or choose another --out")
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
    dd.barrier()

    torch.manual_seed(tc.seed); np.random.seed(tc.seed); random.seed(tc.seed)
    bundle = build_data(**cfg.data)
    model_kwargs = {k: v for k, v in cfg.model.items() if k != "name"}
    model = build_model(cfg.model["name"], bundle.codec.model_info(), **model_kwargs).to(dev)
    objective = make_objective(model, tc)
    scheds = {}
    if tc.lr_decay:
        scheds = {k: torch.optim.lr_scheduler.StepLR(o, tc.lr_decay_every, tc.lr_decay)
                  for k, o in objective.optimizers.items()}
    plateau = None
    if tc.plateau_patience is not None and "model" in objective.optimizers:
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(objective.optimizers["model"], factor=tc.plateau_factor,
                                                             patience=tc.plateau_patience)
    step, consumed, best, stale = 0, 0, math.inf, 0
    if resume and has_ckpt:
        ck = checkpoint_dir(out)
        import json

        saved = json.loads((ck / "config.json").read_text())
        for sec in ("data", "model"):
            if saved.get(sec) != getattr(cfg, sec):
                raise TunesmithError(f"the [{sec}] section differs from the checkpoint's in {out}: resume with the "
                                     "same config, or train into another --out")
        try:
            load_weights(model, ck / "model.safetensors")
        except Exception as e:
            raise TunesmithError(f"cannot resume: weights in {ck / 'model.safetensors'} are unreadable or do not fit "
                                 f"the model ({str(e).splitlines()[0][:100]}); start a new run") from None
        st = load_trainer_state(out)
        for k, o in objective.optimizers.items():
            o.load_state_dict(st["optimizers"][k])
        for k, s in scheds.items():
            if k in st.get("schedulers", {}):
                s.load_state_dict(st["schedulers"][k])
        if plateau is not None and "plateau" in st:
            plateau.load_state_dict(st["plateau"])
        step, consumed, best, stale = st["step"], st["consumed"], st.get("best", math.inf), st.get("stale", 0)
        _set_rng_state(st["rng"])
        _say(f"resuming {out} from step {step}", dd.main)
    elif resume:
        _say(f"--resume: no checkpoint in {out} yet, starting from scratch", dd.main)

    stream = BatchStream(bundle.train, tc.batch_size, dd.world, dd.rank, tc.seed, dev, consumed)
    bps = objective.batches_per_step
    steps_per_epoch = max(1, stream.per_epoch // bps)
    total = tc.max_steps if tc.max_steps is not None else tc.epochs * steps_per_epoch
    net = model
    if dd.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                  find_unused_parameters=model.objective == "adversarial")
    if tc.compile:
        net = torch.compile(net)

    logger = MetricsLogger(out, enabled=dd.main)
    if dd.main:
        _say(f"training {cfg.model['name']} on {dev} ({dd.world} process{'es' if dd.world > 1 else ''}): "
             f"{len(bundle.train)} items, {steps_per_epoch} steps/epoch, {total} steps; data: "
             f"{ {k: v for k, v in bundle.stats.items() if k in ('kept', 'train_songs', 'val_songs', 'train_tokens', 'items')} }")

    def checkpoint(val: dict | None = None) -> None:
        if dd.main:
            model.eval()
            model.on_checkpoint(bundle.train, out)
            model.train()
            state = {"optimizers": {k: o.state_dict() for k, o in objective.optimizers.items()},
                     "schedulers": {k: s.state_dict() for k, s in scheds.items()}, "step": step,
                     "consumed": stream.consumed, "best": best, "stale": stale, "rng": _rng_state()}
            if plateau is not None:
                state["plateau"] = plateau.state_dict()
            meta = {"step": step, "epoch": stream.epoch, "time": time.time(), "val": val or last_val,
                    "model": cfg.model["name"], "objective": model.objective, "data": bundle.stats,
                    "world_size": dd.world}
            write_checkpoint(out, model, cfg, bundle.codec, state, meta)
        dd.barrier()

    val_step = -1

    def validate() -> dict:
        nonlocal best, stale, val_step
        val_step = step
        v = objective.validate(model, bundle.val, tc.batch_size, dev, step) if dd.main else {}
        if v:
            logger.log(step, stream.epoch, "val", v)
            if v["loss"] < best - 1e-6:
                best, stale = v["loss"], 0
            else:
                stale += 1
            if plateau is not None:
                plateau.step(v["loss"])
        return v

    from tqdm import tqdm

    bar = tqdm(total=total, initial=step, disable=not (progress and dd.main), unit="step", dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 10.0, file=sys.stderr)
    model.train()
    acc: dict[str, float] = {}
    n_acc, last_val, stop_early, t0, start_step = 0, {}, False, time.time(), step
    try:
        while step < total and not stop_early:
            epoch_before = stream.epoch
            logs = objective.step(net, model, stream, step, dev)
            step += 1
            for s in scheds.values():
                s.step()
            logs = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
            loss = logs["loss"]
            if not math.isfinite(loss):
                raise TunesmithError(f"the loss became {loss} at step {step}: training stopped; the last good "
                                     f"checkpoint in {out} is kept (try a lower train.lr or train.grad_clip)")
            for k, v in logs.items():
                acc[k] = acc.get(k, 0.0) + v
            n_acc += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == total:
                means = {k: v / n_acc for k, v in acc.items()}
                logger.log(step, stream.epoch, "train", means)
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:3]})
                acc, n_acc = {}, 0
            epoch_done = stream.epoch != epoch_before
            if (tc.val_every and step % tc.val_every == 0) or (not tc.val_every and epoch_done):
                last_val = validate() or last_val
                if tc.early_stopping and stale >= tc.early_stopping:
                    _say(f"early stopping at step {step}: no validation improvement in {stale} checks", dd.main)
                    stop_early = True
            if step % tc.checkpoint_every == 0 and step < total and not stop_early:
                checkpoint()
    except KeyboardInterrupt:
        bar.close()
        checkpoint()
        logger.close()
        raise TunesmithError(f"interrupted at step {step}; checkpoint saved: continue with --resume") from None
    bar.close()
    loop_seconds = time.time() - t0
    if bundle.val is not None and val_step != step:
        last_val = validate() or last_val
    checkpoint(last_val)
    summary: dict[str, Any] = {"steps": step, "seconds": round(time.time() - t0, 2),
                               "steps_per_second": round((step - start_step) / max(loop_seconds, 1e-9), 3),
                               "val": last_val,
                               "data": bundle.stats, "checkpoint": str(out / "checkpoint")}
    if dd.main:
        if bundle.baseline is not None:
            summary["baseline"] = bundle.baseline()
            if summary["baseline"]:
                b = summary["baseline"]  # logged beside the validation metrics it is comparable with
                logger.log(step, stream.epoch, "baseline", {k[4:]: b[k] for k in ("val_loss", "val_acc") if k in b})
        logger.close()
        plot_losses(out)
        save_json(summary, out / "summary.json")
        msg = f"done: {step} steps in {summary['seconds']:.0f} s"
        if last_val:
            unit = getattr(model, "loss_unit", "")
            msg += f"; validation loss {last_val['loss']:.3f}" + (f" {unit}" if unit else "")
            if "acc" in last_val:
                msg += f", accuracy {last_val['acc']:.3f}"
        if summary.get("baseline"):
            b = summary["baseline"]
            msg += f" (n-gram baseline: {b['val_loss']:.3f} nats/step, accuracy {b['val_acc']:.3f})"
        _say(msg + f"; checkpoint in {out / 'checkpoint'}")
    dd.close()
    return summary
