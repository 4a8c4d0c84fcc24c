"""Experiment configs: small TOML files with [data], [model], [train] and [sample] sections."""
from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import TunesmithError

TOP_KEYS = {"name", "description", "seed_report", "data", "model", "train", "sample"}


@dataclass
class TrainConfig:
    """Everything the trainer reads. Adversarial-only keys are ignored by the other objectives."""
    epochs: int = 10
    max_steps: int | None = None          # overrides epochs when set
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"               # adam | adamw | rmsprop | sgd
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = None        # gradient-norm clipping
    seed: int = 0
    log_every: int = 25                   # steps between train-metric rows in metrics.csv
    checkpoint_every: int = 500           # steps; a checkpoint is also written at the end and on Ctrl-C
    val_every: int | None = None          # steps; default: once per epoch
    lr_decay: float | None = None         # StepLR: multiply the learning rate by this ...
    lr_decay_every: int = 10000           # ... every this many steps
    plateau_patience: int | None = None   # ReduceLROnPlateau on the validation loss (validations)
    plateau_factor: float = 0.5
    early_stopping: int | None = None     # stop after this many validations without improvement
    precision: str = "fp32"               # fp32 | bf16 (autocast; for GPUs)
    compile: bool = False                 # torch.compile the model
    deterministic: bool = False           # torch.use_deterministic_algorithms
    num_threads: int | None = None        # CPU threads for torch
    # adversarial objective
    n_critic: int = 1                     # critic updates per generator update
    lr_critic: float | None = None        # default: lr
    optimizer_critic: str | None = None   # default: optimizer
    betas_critic: tuple[float, float] | None = None
    clip_critic: float | None = None      # WGAN weight clipping to [-c, c] after every critic update


@dataclass
class Config:
    name: str = "experiment"
    description: str = ""
    seed_report: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config", warn_old_names: bool = False) -> "Config":
        """``warn_old_names``: a config file a user edits (a warning per old key name, ``schema.KEY_ALIASES``);
        saved runs keep their old names silently."""
        d = copy.deepcopy(d)
        from .schema import apply_aliases

        apply_aliases(d, source, warn=warn_old_names)
        unknown = set(d) - TOP_KEYS
        if unknown:
            raise TunesmithError(f"{source}: unknown config key {sorted(unknown)[0]!r}; valid top-level keys: "
                                 f"{', '.join(sorted(TOP_KEYS))}")
        tr = d.pop("train", {}) or {}
        valid = {f.name for f in dataclasses.fields(TrainConfig)}
        for k in tr:
            if k not in valid:
                raise TunesmithError(f"{source}: unknown config key train.{k!r}; valid keys: {', '.join(sorted(valid))}")
        from .schema import check_train

        check_train(tr, source)          # types and ranges before anything converts a value
        for k in ("betas", "betas_critic"):
            if tr.get(k) is not None:
                tr[k] = tuple(tr[k])
        for sec in ("data", "model", "sample"):
            if sec in d and not isinstance(d[sec], dict):
                raise TunesmithError(f"{source}: [{sec}] must be a table")
        if "name" not in d.get("model", {}):
            raise TunesmithError(f"{source}: [model] needs a name (e.g. name = \"melody_lstm\")")
        if "encoding" not in d.get("data", {}):
            raise TunesmithError(f"{source}: [data] needs an encoding (e.g. encoding = \"timestep\")")
        for k in ("name", "description", "seed_report"):
            if k in d and not isinstance(d[k], str):
                raise TunesmithError(f"{source}: {k} must be a string, got {d[k]!r}")
        return cls(train=TrainConfig(**tr), **d)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise TunesmithError(f"config file not found: {path} (see configs/ for examples)")
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise TunesmithError(f"{path} is not valid TOML: {e}") from None
    cfg = Config.from_dict(d, source=str(path), warn_old_names=True)
    from .schema import validate

    validate(cfg, str(path))     # every section typed, before any work starts
    return cfg


def save_json(obj: Any, path: Path) -> None:
    from .files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
