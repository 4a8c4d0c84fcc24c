"""Datasets tunesmith makes itself (``tunesmith datasets build NAME``), offline, and caches.

``nsynth-mini``: an NSynth-shaped set of single notes rendered with FluidSynth and the General MIDI
soundfont: 7 instrument families x 12 pitches x 3 velocities = 252 clips of 4 s at 16 kHz, written in
the NSynth layout (``examples.json`` + ``audio/NAME.wav``) under ``$TUNESMITH_CACHE/datasets/nsynth-mini``.
Each family is rendered in one FluidSynth call (one note every 5 s) and cut into 4-s clips, so the
whole build takes a few seconds.

``nsynth-small``: 4,125 notes of 55 General MIDI instruments (5 per NSynth family), split by instrument;
rendered by :mod:`tunesmith.data.nsynth_small`.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import TunesmithError
from .corpora import cache_dir

BUILD_VERSION = 1

# family -> (NSynth family id, source, General MIDI program (0-based), lowest pitch)
NSYNTH_MINI_FAMILIES: dict[str, tuple[int, str, int, int]] = {
    "brass": (1, "acoustic", 56, 52),      # trumpet
    "flute": (2, "acoustic", 73, 62),      # flute
    "guitar": (3, "acoustic", 24, 45),     # nylon guitar
    "keyboard": (4, "acoustic", 0, 48),    # acoustic grand piano
    "organ": (6, "electronic", 16, 48),    # drawbar organ
    "reed": (7, "acoustic", 65, 50),       # alto sax
    "string": (8, "acoustic", 40, 55),     # violin
}
NSYNTH_MINI_PITCH_STEP = 2     # 12 pitches: low, low+2, ... low+22
NSYNTH_MINI_PITCHES = 12
NSYNTH_MINI_VELOCITIES = (50, 90, 127)

BUILDABLE: dict[str, str] = {
    "nsynth-mini": "252 NSynth-style 4-s notes (7 families x 12 pitches x 3 velocities), FluidSynth-rendered",
    "nsynth-small": "4,125 NSynth-style 4-s notes (11 families x 5 GM programs x 25 pitches x 3 velocities), "
                    "split by instrument",
}
#: datasets whose examples carry a fixed split (NAME:train / :val / :test by instrument)
FIXED_SPLIT: dict[str, bool] = {"nsynth-mini": False, "nsynth-small": True}


def dataset_dir(name: str) -> Path:
    return cache_dir() / "datasets" / name


def is_built(name: str) -> bool:
    if name not in BUILDABLE:
        return False
    d = dataset_dir(name)
    try:
        meta = json.loads((d / "build.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return meta.get("version") == _version(name) and (d / "examples.json").is_file()


def _version(name: str) -> int:
    if name == "nsynth-small":
        from .nsynth_small import VERSION

        return VERSION
    return BUILD_VERSION


def build(name: str, refresh: bool = False, verbose: bool = True) -> Path:
    """Build a dataset into the cache (no-op when already built unless ``refresh``). Returns its folder."""
    if name not in BUILDABLE:
        raise TunesmithError(f"unknown buildable dataset {name!r}; known: {', '.join(sorted(BUILDABLE))}")
    d = dataset_dir(name)
    if is_built(name) and not refresh:
        if verbose:
            print(f"{name} is already built in {d} (use --refresh to rebuild)", file=sys.stderr)
        return d
    with _build_lock(d) as lock:  # two processes asking for the same set: one builds, the other waits, reuses it
        if lock.waited and is_built(name):
            return d
        if name == "nsynth-small":
            from .nsynth_small import build as build_nsynth_small

            return build_nsynth_small(d, verbose)
        return _build_nsynth_mini(d, verbose)


class _build_lock:
    """An exclusive lock file beside the dataset folder (``flock``; released when the process ends)."""

    def __init__(self, d: Path):
        self.path, self.waited = d.with_name(f".{d.name}.lock"), False

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another process is building {self.path.name[1:-5]}: waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(self.f, fcntl.LOCK_EX)
            self.waited = True
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def replace_dir(tmp: Path, d: Path) -> None:
    """Put the finished ``tmp`` folder at ``d``: the old one is renamed away first, then removed (a reader
    of the old set or a crash never leaves ``d`` half-deleted)."""
    d.parent.mkdir(parents=True, exist_ok=True)
    old = d.with_name(f".{d.name}.old{os.getpid()}")
    if d.exists():
        os.replace(d, old)
    os.replace(tmp, d)
    shutil.rmtree(old, ignore_errors=True)


def _find_tools() -> tuple[str, str]:
    exe = shutil.which("fluidsynth")
    sf2 = None
    env = os.environ.get("TUNESMITH_SOUNDFONT")
    for p in ([env] if env else []) + ["/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
                                       "/usr/share/sounds/sf2/default-GM.sf2"]:
        if p and Path(p).is_file():
            sf2 = p
            break
    if not exe or not sf2:
        raise TunesmithError("building nsynth-mini needs FluidSynth and a General MIDI soundfont: "
                             "apt-get install -y --no-install-recommends fluidsynth timgm6mb-soundfont")
    return exe, sf2


def _build_nsynth_mini(d: Path, verbose: bool) -> Path:
    import soundfile as sf

    from .nsynth_small import render_slots, slot_clip

    exe, sf2 = _find_tools()
    t0 = time.time()
    tmp = d.with_name(f".{d.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "audio").mkdir(parents=True)
    examples: dict[str, dict] = {}
    note_id = 0
    from .nsynth_small import SAMPLE_RATE as sr  # 3 s notes in 5 s slots, 4 s clips, as nsynth-small
    for inst, (family, (fam_id, source, program, low)) in enumerate(NSYNTH_MINI_FAMILIES.items()):
        pitches = [low + NSYNTH_MINI_PITCH_STEP * i for i in range(NSYNTH_MINI_PITCHES)]
        slots = [(p, v) for p in pitches for v in NSYNTH_MINI_VELOCITIES]
        x = render_slots(slots, program, exe, sf2, tmp, family, fluid_args=())
        for k, (p, v) in enumerate(slots):
            seg = slot_clip(x, k)
            peak = float(np.abs(seg).max())
            if peak > 0:  # NSynth clips are normalised per note
                seg = seg / peak * 0.9
            name = f"{family}_{source}_{inst:03d}-{p:03d}-{v:03d}"
            sf.write(str(tmp / "audio" / f"{name}.wav"), seg, sr, subtype="PCM_16")
            examples[name] = {
                "note": note_id, "note_str": name, "instrument": inst, "instrument_str": f"{family}_{source}_{inst:03d}",
                "pitch": int(p), "velocity": int(v), "sample_rate": int(sr),
                "instrument_family": fam_id, "instrument_family_str": family,
                "instrument_source": {"acoustic": 0, "electronic": 1, "synthetic": 2}[source],
                "instrument_source_str": source, "qualities": [0] * 10, "qualities_str": [],
                "gm_program": program,
            }
            note_id += 1
    (tmp / "examples.json").write_text(json.dumps(examples, indent=1))
    (tmp / "build.json").write_text(json.dumps({"version": BUILD_VERSION, "soundfont": sf2, "clips": len(examples),
                                                "seconds": round(time.time() - t0, 2)}))
    replace_dir(tmp, d)
    if verbose:
        print(f"built nsynth-mini: {len(examples)} clips ({len(NSYNTH_MINI_FAMILIES)} families) in {d} "
              f"({time.time() - t0:.1f} s)", file=sys.stderr)
    return d
