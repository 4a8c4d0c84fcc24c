"""The one training loop: likelihood, adversarial and variational objectives, on CPU, one GPU or many
(``torchrun`` starts one process per GPU; this module then uses DistributedDataParallel)."""
from __future__ import annotations

import gc
import math
import os
import random
import signal
import sys
import threading
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
from ..models.base import CheckpointContext
from .checkpoint import (adopt_orphans, checkpoint_dir, checkpoint_exists, load_trainer_state, load_weights,
                         write_checkpoint)
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


class Interrupted(TunesmithError):
    """Training stopped by a signal after writing a checkpoint at a step boundary (CLI exit 128 + signal)."""

    def __init__(self, msg: str, signum: int):
        super().__init__(msg)
        self.exit_code = 128 + int(signum)


class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM (sent by torchrun, SLURM and other schedulers before they kill a job) set a
    flag; the trainer finishes the step it is in, writes a checkpoint and stops. A second Ctrl-C aborts at
    once without saving. Handlers are only installed from the main thread and restored on exit."""

    def __init__(self, announce: bool = True):
        self.signum: int | None = None
        self.announce = announce
        self._old: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            self.signum = signum
            _say(f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint"
                 + (" (Ctrl-C again aborts without saving)" if signum == signal.SIGINT else ""), self.announce)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)


class Control:
    """Decisions every rank must share (stop on a signal, the validation loss behind early stopping and the
    plateau scheduler), exchanged as small CPU tensors over a gloo group -- never a GPU sync. World size 1:
    plain local values."""

    def __init__(self, dd: "Dist"):
        self.enabled = dd.enabled
        self.group = None
        if self.enabled and dist.get_backend() != "gloo":
            self.group = dist.new_group(backend="gloo")

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return bool(t.item())

    def from_main(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every rank."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.broadcast(t, src=0, group=self.group)
        return t.tolist()

    def gather(self, value: float) -> list[float]:
        if not self.enabled:
            return [value]
        out = [torch.zeros(1, dtype=torch.float64) for _ in range(dist.get_world_size())]
        dist.all_gather(out, torch.tensor([value], dtype=torch.float64), group=self.group)
        return [float(o) for o in out]


def weights_checksum(model: torch.nn.Module) -> float:
    """A float that differs when any parameter differs (used to prove that DDP ranks agree)."""
    total = 0.0
    for i, p in enumerate(model.parameters()):
        v = p.detach().double().flatten()
        total += float((v * torch.arange(1, v.numel() + 1, dtype=torch.float64, device=v.device)).sum()) * (i + 1)
    return total


class Trainer:
    """One training run, in the order a reader follows it: ``__init__`` sets up (process group, device, data,
    model, objective, schedulers), ``resume`` restores a checkpoint, ``run`` loops over ``train_step`` with
    periodic ``flush_logs``, ``validate`` and ``checkpoint``, then ``finish`` writes the summary.

    No host synchronisation happens per step: losses are accumulated on the device and read at logging
    time (every ``train.log_every`` steps, and before every checkpoint or validation), which is also when a
    non-finite loss is detected -- with the exact step it first appeared at."""

    def __init__(self, cfg: Config, out: Path, device: str = "auto", resume: bool = False, progress: bool = True):
        self.cfg, self.tc, self.out, self.progress = cfg, cfg.train, Path(out), progress
        tc = self.tc
        kind = "cuda" if (device == "auto" and torch.cuda.is_available()) or device.startswith("cuda") else "cpu"
        self.dd = Dist(kind)
        self.control = Control(self.dd)
        self.dev = resolve_device(device, self.dd.local_rank)
        if self.dev.type == "cuda":
            torch.cuda.set_device(self.dev)
        if tc.num_threads:
            torch.set_num_threads(tc.num_threads)
        if tc.deterministic:
            if self.dev.type == "cuda":   # cuBLAS is deterministic only with a fixed workspace, set before its first use
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)
        out = self.out
        if out.exists() and not out.is_dir():
            raise TunesmithError(f"--out {out} is a file, not a run directory: choose another --out")
        if self.dd.main:
            try:
                out.mkdir(parents=True, exist_ok=True)
                probe = out / f".write-test{os.getpid()}"
                probe.write_bytes(b""); probe.unlink()
            except OSError as e:
                raise TunesmithError(f"cannot write to --out {out} ({e.strerror or e}): choose another --out") from None
            adopt_orphans(out)
        self.dd.barrier()
        self.has_ckpt = checkpoint_exists(out)
        if not self.has_ckpt and (out / "checkpoint").is_dir() and any((out / "checkpoint").iterdir()):
            raise TunesmithError(f"the checkpoint in {out} is incomplete ({out / 'checkpoint' / 'model.safetensors'} "
                                 "is missing): restore it, or train into another --out")
        if self.has_ckpt and not resume:
            raise TunesmithError(f"{out} already holds a checkpoint: pass --resume to continue it, or choose another --out")

        torch.manual_seed(tc.seed); np.random.seed(tc.seed); random.seed(tc.seed)
        self.bundle = build_data(**cfg.data)
        model_kwargs = {k: v for k, v in cfg.model.items() if k != "name"}
        self.model = build_model(cfg.model["name"], self.bundle.codec.model_info(), **model_kwargs).to(self.dev)
        self.objective = make_objective(self.model, tc)
        self.scheds = {}
        if tc.lr_decay:
            self.scheds = {k: torch.optim.lr_scheduler.StepLR(o, tc.lr_decay_every, tc.lr_decay)
                           for k, o in self.objective.optimizers.items()}
        self.plateau = None
        if tc.plateau_patience is not None and "model" in self.objective.optimizers:
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.objective.optimizers["model"], factor=tc.plateau_factor, patience=tc.plateau_patience)
        self.step, consumed, self.best, self.stale = 0, 0, math.inf, 0
        if resume and self.has_ckpt:
            consumed = self.resume()
        elif resume:
            _say(f"--resume: no checkpoint in {out} yet, starting from scratch", self.dd.main)

        self.stream = BatchStream(self.bundle.train, tc.batch_size, self.dd.world, self.dd.rank, tc.seed, self.dev,
                                  consumed)
        self.steps_per_epoch = max(1, self.stream.per_epoch // self.objective.batches_per_step)
        self.total = tc.max_steps if tc.max_steps is not None else tc.epochs * self.steps_per_epoch
        self.net = self.model
        if self.dd.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.model, device_ids=[self.dev.index] if self.dev.type == "cuda" else None,
                           find_unused_parameters=self.model.objective == "adversarial")
        if tc.compile:
            self.net = torch.compile(self.net)
        self.logger = MetricsLogger(out, enabled=self.dd.main)
        self.acc: dict[str, torch.Tensor] = {}
        self.n_acc, self.acc_from = 0, self.step + 1
        self.bad_step: torch.Tensor | None = None   # first step with a non-finite loss, on the device (0: none)
        self.last_val: dict = {}
        self.val_step = -1

    # -- resume -------------------------------------------------------------------------------------------
    def resume(self) -> int:
        """Restore weights, optimizer/scheduler/random states and the position in the data; returns the
        number of batches already consumed."""
        import json

        out = self.out
        ck = checkpoint_dir(out)
        try:
            saved = json.loads((ck / "config.json").read_text())
        except (OSError, ValueError):
            raise TunesmithError(f"cannot resume: {ck / 'config.json'} is missing or garbled; start a new run") from None
        for sec in ("data", "model"):
            if saved.get(sec) != getattr(self.cfg, sec):
                raise TunesmithError(f"the [{sec}] section differs from the checkpoint's in {out}: resume with the "
                                     "same config, or train into another --out")
        try:
            load_weights(self.model, ck / "model.safetensors")
        except Exception as e:
            raise TunesmithError(f"cannot resume: weights in {ck / 'model.safetensors'} are unreadable or do not fit "
                                 f"the model ({str(e).splitlines()[0][:100]}); start a new run") from None
        st = load_trainer_state(out)
        for k, o in self.objective.optimizers.items():
            o.load_state_dict(st["optimizers"][k])
        for k, sch in self.scheds.items():
            if k in st.get("schedulers", {}):
                sch.load_state_dict(st["schedulers"][k])
        if self.plateau is not None and "plateau" in st:
            self.plateau.load_state_dict(st["plateau"])
        self.step, self.best, self.stale = st["step"], st.get("best", math.inf), st.get("stale", 0)
        _set_rng_state(st["rng"])
        _say(f"resuming {out} from step {self.step}", self.dd.main)
        return st["consumed"]

    # -- one step -----------------------------------------------------------------------------------------
    def train_step(self) -> None:
        logs = self.objective.step(self.net, self.model, self.stream, self.step, self.dev)
        self.step += 1
        for sch in self.scheds.values():
            sch.step()
        for k, v in logs.items():
            if v is None:
                continue
            # a metric a model made on the CPU joins the others on the device (flush_logs stacks them all)
            v = v.detach().float().to(self.dev, non_blocking=True) if torch.is_tensor(v) \
                else torch.tensor(float(v), device=self.dev)
            self.acc[k] = self.acc[k] + v if k in self.acc else v
        loss = logs["loss"].detach() if torch.is_tensor(logs["loss"]) else torch.tensor(float(logs["loss"]))
        loss = loss.to(self.dev)
        here = torch.where(torch.isfinite(loss), torch.zeros((), dtype=torch.long, device=self.dev),
                           torch.full((), self.step, dtype=torch.long, device=self.dev))
        self.bad_step = here if self.bad_step is None else torch.where(self.bad_step > 0, self.bad_step, here)
        self.n_acc += 1

    def flush_logs(self, bar=None) -> None:
        """Read the accumulated losses (one host sync), stop on a non-finite loss, log the means."""
        if not self.n_acc:
            return
        keys = list(self.acc)
        vals = torch.stack([self.acc[k] for k in keys] + [self.bad_step.to(self.acc[keys[0]].dtype)]).tolist()
        bad = int(vals.pop())
        if bad:
            raise TunesmithError(f"the loss became {self.acc['loss'].item()} at step {bad}: training stopped; the last "
                                 f"good checkpoint in {self.out} is kept (try a lower train.lr or train.grad_clip)")
        means = {k: v / self.n_acc for k, v in zip(keys, vals)}
        self.logger.log(self.step, self.stream.epoch, "train", means)
        if bar is not None:
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:3]})
        self.acc, self.n_acc, self.bad_step = {}, 0, None

    # -- validation ---------------------------------------------------------------------------------------
    def validate(self) -> dict:
        """Rank 0 validates; its loss is broadcast so every rank takes the same early-stopping and
        learning-rate decisions."""
        self.val_step = self.step
        v = self.objective.validate(self.model, self.bundle.val, self.tc.batch_size, self.dev, self.step) \
            if self.dd.main else {}
        if self.dd.main and v:
            self.logger.log(self.step, self.stream.epoch, "val", v)
        has, loss = self.control.from_main([1.0 if v else 0.0, float(v.get("loss", 0.0)) if v else 0.0])
        if has:
            if loss < self.best - 1e-6:
                self.best, self.stale = loss, 0
            else:
                self.stale += 1
            if self.plateau is not None:
                self.plateau.step(loss)
        return v

    # -- checkpoint ---------------------------------------------------------------------------------------
    def checkpoint(self, val: dict | None = None) -> None:
        if self.dd.main:
            model = self.model
            model.eval()
            model.on_checkpoint(CheckpointContext(self.bundle.train, self.bundle.codec, self.step, self.out))
            model.train()
            state = {"optimizers": {k: o.state_dict() for k, o in self.objective.optimizers.items()},
                     "schedulers": {k: sch.state_dict() for k, sch in self.scheds.items()}, "step": self.step,
                     "consumed": self.stream.consumed, "best": self.best, "stale": self.stale, "rng": _rng_state()}
            if self.plateau is not None:
                state["plateau"] = self.plateau.state_dict()
            meta = {"step": self.step, "epoch": self.stream.epoch, "time": time.time(), "val": val or self.last_val,
                    "model": self.cfg.model["name"], "objective": model.objective, "data": self.bundle.stats,
                    "world_size": self.dd.world}
            write_checkpoint(self.out, model, self.cfg, self.bundle.codec, state, meta)
        self.dd.barrier()

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from tqdm import tqdm

        tc, dd, cfg = self.tc, self.dd, self.cfg
        if dd.main:
            _say(f"training {cfg.model['name']} on {self.dev} ({dd.world} process{'es' if dd.world > 1 else ''}): "
                 f"{len(self.bundle.train)} items, {self.steps_per_epoch} steps/epoch, {self.total} steps; data: "
                 f"{ {k: v for k, v in self.bundle.stats.items() if k in ('kept', 'train_songs', 'val_songs', 'train_tokens', 'items')} }")
        bar = tqdm(total=self.total, initial=self.step, disable=not (self.progress and dd.main), unit="step",
                   dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0, file=sys.stderr)
        self.model.train()
        stop_early, t0, start_step = False, time.time(), self.step
        self.aside = 0.0   # seconds of the loop spent validating and checkpointing (not training)
        with StopSignals(announce=dd.main) as signals:
            try:
                while self.step < self.total and not stop_early:
                    if self.control.any(signals.signum is not None):
                        self._stop_on_signal(signals.signum or signal.SIGTERM, bar)
                    epoch_before = self.stream.epoch
                    self.train_step()
                    bar.update(1)
                    if self.step % tc.log_every == 0 or self.step == self.total:
                        self.flush_logs(bar)
                    epoch_done = self.stream.epoch != epoch_before
                    if (tc.val_every and self.step % tc.val_every == 0) or (not tc.val_every and epoch_done):
                        self.flush_logs(bar)
                        ta = time.time()
                        self.last_val = self.validate() or self.last_val
                        self.aside += time.time() - ta
                        if tc.early_stopping and self.stale >= tc.early_stopping:
                            _say(f"early stopping at step {self.step}: no validation improvement in {self.stale} "
                                 "checks", dd.main)
                            stop_early = True
                    if self.step % tc.checkpoint_every == 0 and self.step < self.total and not stop_early:
                        self.flush_logs(bar)
                        ta = time.time()
                        self.checkpoint()
                        self.aside += time.time() - ta
                self.flush_logs(bar)
            except KeyboardInterrupt:   # a second Ctrl-C: abort without saving
                bar.close()
                self.logger.close()
                raise
        bar.close()
        return self.finish(time.time() - t0, start_step)

    def _stop_on_signal(self, signum: int, bar) -> None:
        self.flush_logs(bar)
        bar.close()
        self.checkpoint()
        self.logger.close()
        name = signal.Signals(signum).name
        self.close_dist()
        raise Interrupted(f"{'interrupted' if signum == signal.SIGINT else name} at step {self.step}; checkpoint saved "
                          f"in {self.out}: continue with --resume", signum)

    def finish(self, loop_seconds: float, start_step: int) -> dict[str, Any]:
        dd, out, step = self.dd, self.out, self.step
        if self.bundle.val is not None and self.val_step != step:
            self.last_val = self.validate() or self.last_val
        self.checkpoint(self.last_val)
        summary: dict[str, Any] = {"steps": step, "seconds": round(loop_seconds, 2),
                                   "steps_per_second": round((step - start_step) / max(loop_seconds, 1e-9), 3),
                                   # the training steps alone: the loop's validations and checkpoints left out
                                   "train_steps_per_second": round((step - start_step) / max(
                                       loop_seconds - getattr(self, "aside", 0.0), 1e-9), 3),
                                   "val": self.last_val, "data": self.bundle.stats,
                                   "checkpoint": str(out / "checkpoint")}
        if dd.enabled:
            summary["rank_checksums"] = self.control.gather(weights_checksum(self.model))
        if dd.main:
            if self.bundle.baseline is not None:
                summary["baseline"] = self.bundle.baseline()
                if summary["baseline"]:
                    b = summary["baseline"]  # logged beside the validation metrics it is comparable with
                    self.logger.log(step, self.stream.epoch, "baseline",
                                    {k[4:]: b[k] for k in ("val_loss", "val_acc") if k in b})
            self.logger.close()
            plot_losses(out)
            save_json(summary, out / "summary.json")
            msg = f"done: {step} steps in {summary['seconds']:.0f} s"
            last_val = self.last_val
            if last_val:
                unit = getattr(self.model, "loss_unit", "")
                msg += f"; validation loss {last_val['loss']:.3f}" + (f" {unit}" if unit else "")
                if "acc" in last_val:
                    msg += f", accuracy {last_val['acc']:.3f}"
            if summary.get("baseline"):
                b = summary["baseline"]
                msg += f" (n-gram baseline: {b['val_loss']:.3f} nats/step, accuracy {b['val_acc']:.3f})"
            _say(msg + f"; checkpoint in {out / 'checkpoint'}")
        self.close_dist()
        return summary

    def close_dist(self) -> None:
        """The end of a torchrun run: every rank meets, then frees its DDP wrapper (whose reducer holds the process
        group) while the interpreter is whole, then destroys the group. A rank that left the group to the
        interpreter's exit aborted now and then ("terminate called without an active exception", about 1 run
        in 15 of two ranks on two busy cores)."""
        if self.dd.enabled:
            self.dd.barrier()
            self.net = self.model
            gc.collect()
        self.dd.close()


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
    return Trainer(cfg, Path(out_dir), device=device, resume=resume, progress=progress).run()
