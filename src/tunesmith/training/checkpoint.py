"""Self-describing run directories and atomic checkpoints.

``RUN/checkpoint/`` holds ``model.safetensors`` (weights), ``config.json`` (the resolved config),
``codec.json`` (the vocabulary / encoding), ``trainer.pt`` (optimizer, scheduler and random states, step)
and ``meta.json``. A new checkpoint is written to a temporary folder and swapped in with renames, so a
crash never leaves a half-written one; loading falls back to ``checkpoint.old`` if a crash hit between
the two renames.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ..config import Config, save_json
from ..data.base import codec_from_state
from ..errors import TunesmithError

CKPT = "checkpoint"


def weights_state(model: torch.nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's state dict as independent, contiguous CPU tensors, every name kept.

    ``safetensors`` refuses tensors that share storage without one covering all of it: cuDNN keeps an LSTM's
    weights as views into one flat buffer, and tied weights are one tensor under two names. Copying each
    entry makes every tensor its own storage, so any model on any device can be saved; loading copies the
    values back into whatever layout the model has."""
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.to("cpu", copy=True).contiguous()
    return out


def save_weights(model: torch.nn.Module, path: Path, dtype: torch.dtype | None = None) -> None:
    from safetensors.torch import save_file

    save_file(weights_state(model, dtype), str(path))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load ``path`` into ``model`` (strict). Files written before every name was kept (by
    ``safetensors.torch.save_model``, which drops one name of each tied pair) load too: a name missing from
    the file is accepted when the model's tensor under it shares storage with one the file has."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state))
    if missing:
        def alias(t: torch.Tensor) -> tuple:
            return (t.data_ptr(), tuple(t.shape), t.stride())

        present = {alias(own[k]) for k in state if k in own}
        missing = [k for k in missing if alias(own[k]) not in present]
        # buffers added to a family later (its OPTIONAL_STATE) keep their initial values in older files
        missing = [k for k in missing if k not in getattr(model, "OPTIONAL_STATE", ())]
    if unexpected or missing:
        raise RuntimeError(f"unexpected keys {unexpected[:3]}, missing keys {missing[:3]}")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise RuntimeError(f"{k} has shape {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model")
    model.load_state_dict(state, strict=False)


def write_checkpoint(run_dir: Path, model: torch.nn.Module, config: Config, codec, trainer_state: dict,
                     meta: dict) -> Path:
    run_dir = Path(run_dir)
    tmp = run_dir / f".{CKPT}.tmp{os.getpid()}"
    for stale in run_dir.glob(f".{CKPT}.tmp*"):   # left by a crash; the live checkpoint is newer or adopted
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        save_weights(model, tmp / "model.safetensors")
        save_json(config.to_dict(), tmp / "config.json")
        save_json(codec.state(), tmp / "codec.json")
        torch.save(trainer_state, tmp / "trainer.pt")
        save_json(meta, tmp / "meta.json")          # written last: its presence marks a complete folder
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = "the last checkpoint is kept" if checkpoint_exists(run_dir) else "no earlier checkpoint exists"
        if e.errno == errno.ENOSPC:
            raise TunesmithError(f"disk full while writing a checkpoint in {run_dir}: {kept}; free some space "
                                 "and continue with --resume") from None
        raise TunesmithError(f"could not write a checkpoint in {run_dir} ({e.strerror or e}): {kept}") from None
    final, old = run_dir / CKPT, run_dir / f"{CKPT}.old"
    # At every moment a complete checkpoint exists under `checkpoint` or `checkpoint.old`.
    if final.exists():
        if old.exists():
            shutil.rmtree(old)   # `checkpoint` is complete (it was renamed into place whole)
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def _complete(d: Path) -> bool:
    return all((d / f).exists() for f in ("model.safetensors", "config.json", "codec.json", "meta.json"))


def checkpoint_exists(run_dir: Path) -> bool:
    return any((Path(run_dir) / n / "model.safetensors").exists() for n in (CKPT, f"{CKPT}.old"))


def adopt_orphans(run_dir: Path) -> Path | None:
    """A crash between the renames of two successive checkpoints can leave only complete temporary
    folders (``.checkpoint.tmpPID`` with ``meta.json``, written last). Rename the newest into place."""
    run_dir = Path(run_dir)
    if checkpoint_exists(run_dir) or not run_dir.is_dir():
        return None
    done = [d for d in run_dir.glob(f".{CKPT}.tmp*") if _complete(d) and (d / "trainer.pt").exists()]
    if not done:
        return None

    def step(d: Path) -> int:
        try:
            return int(json.loads((d / "meta.json").read_text()).get("step", -1))
        except (OSError, ValueError, AttributeError):
            return -1
    best = max(done, key=step)
    os.replace(best, run_dir / CKPT)
    return run_dir / CKPT


def checkpoint_dir(run_dir: str | Path) -> Path:
    from ..zoo import is_zoo, resolve_run

    zoo = is_zoo(run_dir)
    run_dir = resolve_run(run_dir)
    if not zoo:
        try:
            adopt_orphans(run_dir)
        except OSError:
            pass
    for name in (CKPT, f"{CKPT}.old"):
        d = run_dir / name
        if (d / "model.safetensors").exists():
            return d
    if (run_dir / CKPT).is_dir() and any((run_dir / CKPT).iterdir()):
        raise TunesmithError(f"the checkpoint in {run_dir} is incomplete ({run_dir / CKPT / 'model.safetensors'} is "
                             "missing): restore it, or train into another --out")
    if not run_dir.exists():
        raise TunesmithError(f"run directory {run_dir} does not exist: train first with "
                             f"`tunesmith train CONFIG --out {run_dir}`")
    raise TunesmithError(f"no checkpoint in {run_dir}: train first with `tunesmith train CONFIG --out {run_dir}`")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TunesmithError(f"checkpoint file {path} is missing: the run is incomplete; retrain") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TunesmithError(f"checkpoint file {path} is garbled (not JSON): retrain or restore it") from None


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, codec, config, meta) from a run directory alone."""
    from ..models import build_model

    d = checkpoint_dir(run_dir)
    cfg = Config.from_dict(read_json(d / "config.json"), source=str(d / "config.json"))
    codec = codec_from_state(read_json(d / "codec.json"))
    meta = read_json(d / "meta.json") if (d / "meta.json").exists() else {}
    model = build_model(cfg.model["name"], codec.model_info(), **{k: v for k, v in cfg.model.items() if k != "name"})
    try:
        load_weights(model, d / "model.safetensors")
    except Exception as e:
        raise TunesmithError(f"weights in {d / 'model.safetensors'} are unreadable or do not fit the model "
                             f"({str(e).splitlines()[0][:100]}): retrain or restore the checkpoint") from None
    model.to(device).eval()
    return model, codec, cfg, meta


def load_trainer_state(run_dir: Path) -> dict:
    d = checkpoint_dir(run_dir)
    try:
        return torch.load(d / "trainer.pt", map_location="cpu", weights_only=False)
    except Exception as e:
        raise TunesmithError(f"{d / 'trainer.pt'} is unreadable ({str(e).splitlines()[0][:80]}): "
                             "cannot resume; start a new run") from None
