"""The model zoo: small trained runs shipped inside the package, loaded as ``zoo:NAME``.

Layout of one entry, ``src/tunesmith/zoo/NAME/``:

- ``checkpoint/`` -- a run's checkpoint folder (``model.safetensors`` in half precision, ``config.json``,
  ``codec.json``, ``meta.json``; no optimizer state), so every command that takes a run directory takes it;
- ``card.json`` -- the model card as data: ``title``, ``description`` (one line, shown in the web page),
  ``family``, ``data``, ``split``, ``command`` (``scripts/train_zoo.sh NAME``), ``steps``, ``wall_time_s``,
  ``hardware``, ``figures`` (name -> measured value, checked by the zoo test against a fresh evaluation),
  ``weaknesses`` (list of sentences);
- ``README.md`` -- the same card for people.

Nothing is downloaded: the weights are package data.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import TunesmithError

ZOO_DIR = Path(__file__).resolve().parent
PREFIX = "zoo:"


def names() -> list[str]:
    """Names of the shipped models (folders with a checkpoint)."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "checkpoint" / "model.safetensors").exists())


def is_zoo(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def resolve_run(spec) -> Path:
    """``zoo:NAME`` -> the entry's folder inside the package; anything else -> ``Path(spec)``."""
    if not is_zoo(spec):
        return Path(spec)
    name = spec[len(PREFIX):]
    have = names()
    if name not in have:
        raise TunesmithError(f"no zoo model {name!r}; shipped: {', '.join(have) or 'none'} (tunesmith zoo lists them)")
    return ZOO_DIR / name


def card(name: str) -> dict:
    """The model card of a zoo entry as a dict (``{}`` when it has none)."""
    p = resolve_run(name if is_zoo(name) else PREFIX + name) / "card.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TunesmithError(f"model card {p} is garbled: reinstall tunesmith") from None


def size_bytes() -> int:
    """Total size of all shipped files (the zoo must stay under 30 MB)."""
    return sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
