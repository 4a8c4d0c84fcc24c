"""Range checks of the sampling options every family shares, before a model runs.

A value outside its range is bad input: one line that names the option, its range and the value given
(``--temperature must be a finite number > 0, got nan``). Without these, NaN silently returned the primer,
``--tempo 0`` silently became 120, ``--tempo 1e12`` wrote a MIDI tempo of 0 microseconds per beat and a
negative ``--top-k`` / ``--steps`` ended in a raw torch error.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

from ..data.midi import TEMPO_RANGE
from ..errors import TunesmithError

MAX_STEPS = 100_000   # steps of one sampled piece (at 16th notes, about 3.5 hours at 120 bpm)
MAX_NUM = 10_000      # pieces in one command


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_options(options: dict[str, Any]) -> None:
    """Raise TunesmithError for a shared option (``temperature``, ``top_k``, ``steps``, ``tempo``, ``noise``,
    ``num``, ``seed``) outside its range; options that are None or not shared are left to the family."""
    def get(k):
        return options.get(k)

    t = get("temperature")
    if t is not None and not (_number(t) and math.isfinite(t) and t > 0):
        raise TunesmithError(f"--temperature must be > 0 and finite, got {t}")
    for k, hi in (("top_k", None), ("steps", MAX_STEPS), ("num", MAX_NUM)):
        v = get(k)
        if v is None:
            continue
        if not _int(v) or v < 1:
            extra = " (leave it out to sample among all symbols)" if k == "top_k" else ""
            raise TunesmithError(f"{_flag(k)} must be a whole number >= 1{extra}, got {v}")
        if hi is not None and v > hi:
            raise TunesmithError(f"{_flag(k)} must be at most {hi:,}, got {v:,}")
    tempo = get("tempo")
    if tempo is not None:
        lo, hi = TEMPO_RANGE
        if not (_number(tempo) and math.isfinite(tempo) and lo <= tempo <= hi):
            raise TunesmithError(f"--tempo must be between {lo:g} and {hi:g} quarter notes per minute, got {tempo:g}")
    seed = get("seed")
    if seed is not None and not (_int(seed) and 0 <= seed < 2**63):  # torch seeds are 64-bit
        raise TunesmithError(f"--seed must be a whole number from 0 to 2**63 - 1, got {seed}")
    noise = get("noise")
    if noise is not None and not (_number(noise) and math.isfinite(noise) and noise >= 0):
        raise TunesmithError(f"--noise must be a finite number >= 0, got {noise}")


def check_out_folder(path: str | Path, flag: str = "--out", what: str | None = None) -> Path:
    """An output folder that can be written, checked before any work and without creating it: it is a folder
    (or does not exist yet) and its nearest existing ancestor is a folder we can write into. ``what`` names
    it in messages (default: the flag); the advice is always to choose another ``flag``."""
    path = Path(path)
    what = what or flag
    if path.exists() and not path.is_dir():
        raise TunesmithError(f"{what} {path} is a file, not a folder: choose another {flag}")
    probe_dir = path
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        raise TunesmithError(f"{what} {path}: {probe_dir} is a file, not a folder: choose another {flag}")
    _probe(probe_dir, f"{what} {path}", flag)
    return path


def check_wav_out(path: str | Path) -> Path:
    """The output of ``tunesmith render``: a ``.wav`` file name (not a folder) in a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise TunesmithError(f"{path} is a folder: give the WAV file to write, e.g. {path / 'out.wav'}")
    if path.suffix.lower() != ".wav":
        raise TunesmithError(f"render writes WAV only: name the output file .wav (got {path.name!r})")
    check_out_folder(path.parent, "output file", "output folder")
    return path


def _probe(folder: Path, what: str, flag: str) -> None:
    import os
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".write-test", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise TunesmithError(f"cannot write to {what} ({e.strerror or e}): choose another {flag}") from None
