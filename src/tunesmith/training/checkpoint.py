"""Self-describing run directories and atomic checkpoints.

``RUN/checkpoint/`` holds ``model.safetensors`` (weights), ``config.json`` (the resolved config),
``codec.json`` (the vocabulary / encoding), ``trainer.pt`` (optimizer, scheduler and random states, step)
and ``meta.json``. A new checkpoint is written to a temporary folder and swapped in with renames, so a
crash never leaves a half-written one; loading falls back to ``checkpoint.old`` if a crash hit between
the two renames.
"""
from __future__ import annotations

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


def write_checkpoint(run_dir: Path, model: torch.nn.Module, config: Config, codec, trainer_state: dict,
                     meta: dict) -> Path:
    from safetensors.torch import save_model

    run_dir = Path(run_dir)
    tmp = run_dir / f".{CKPT}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    save_json(config.to_dict(), tmp / "config.json")
    save_json(codec.state(), tmp / "codec.json")
    torch.save(trainer_state, tmp / "trainer.pt")
    save_json(meta, tmp / "meta.json")
    final, old = run_dir / CKPT, run_dir / f"{CKPT}.old"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def checkpoint_dir(run_dir: str | Path) -> Path:
    from ..zoo import resolve_run

    run_dir = resolve_run(run_dir)
    for name in (CKPT, f"{CKPT}.old"):
        d = run_dir / name
        if (d / "model.safetensors").exists():
            return d
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
    from safetensors.torch import load_model

    from ..models import build_model

    d = checkpoint_dir(run_dir)
    cfg = Config.from_dict(read_json(d / "config.json"), source=str(d / "config.json"))
    codec = codec_from_state(read_json(d / "codec.json"))
    meta = read_json(d / "meta.json") if (d / "meta.json").exists() else {}
    model = build_model(cfg.model["name"], codec.model_info(), **{k: v for k, v in cfg.model.items() if k != "name"})
    try:
        load_model(model, str(d / "model.safetensors"), strict=True, device=str(device))
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
