"""NSynth- and GTZAN-layout audio datasets: loading, dataset names, splits, and sample labels (seed 003).

Layouts
    * NSynth: ``FOLDER/examples.json`` (note_str -> instrument_family_str, instrument_str,
      instrument_source_str, pitch, velocity, sample_rate[, split]) and ``FOLDER/audio/NOTE_STR.wav``
      (16 kHz, 4 s). Real NSynth folders (nsynth-train/-valid/-test) work as they are.
    * GTZAN: ``FOLDER/GENRE/*.wav`` (one folder of clips per genre; 22,050 Hz, 30 s in the original).
    * Built sets (``tunesmith datasets build NAME``, built automatically on first use): ``nsynth-mini`` (252
      notes, one instrument per family) and ``nsynth-small`` (11 families x 5 GM programs, 4,125 notes, with
      a split by instrument; see :mod:`tunesmith.data.nsynth_small`).

Dataset names
    ``NAME`` is every clip; ``NAME:train`` / ``NAME:val`` (or ``:valid``) / ``NAME:test`` one part of the
    split. A folder whose ``examples.json`` gives each note a ``split`` (``train`` / ``valid`` / ``test``;
    nsynth-small does, by instrument) is split that way, so held-out figures are about instruments a
    model never heard; any other folder is split at random (``val_fraction``, ``split_seed``; no test part).

Sample labels (the contract between samplers and ``tunesmith evaluate``)
    A sampler that was asked for a pitch and/or a family writes ``OUT/samples.json`` beside its WAVs with
    :func:`write_sample_labels`::

        {"version": 1, "samples": [{"file": "sample_000.wav", "pitch": 60, "family": "brass"}, ...]}

    (``file`` relative to OUT; ``pitch`` a MIDI number or null; ``family`` an NSynth family or null).
    :func:`requested_labels` reads it back for a WAV; without a ``samples.json`` entry, an NSynth-style
    file name (``brass_acoustic_056-060-127.wav``: family_source_instrument-PITCH-velocity) says the same,
    so real notes can be evaluated as if they were generated (the metrics' sanity check).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import TunesmithError
from .audio import AUDIO_EXT
from .corpora import split_by_piece

#: the NSynth instrument families, in NSynth's id order
NSYNTH_FAMILIES = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
                   "synth_lead", "vocal"]
#: dataset-name suffix -> the ``split`` value in examples.json
PARTS = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}
SAMPLE_LABELS = "samples.json"


# ---------------------------------------------------------------------------------------------- loading
@dataclass
class Clip:
    """One recording and what the dataset says about it."""
    path: Path
    label: str                # NSynth instrument family or GTZAN genre
    name: str = ""
    pitch: int = -1           # MIDI pitch (NSynth), -1 if unknown
    velocity: int = -1
    source: str = ""
    sample_rate: int = 0      # as stored in the file's metadata (0 = unknown)
    instrument: str = ""      # NSynth instrument_str ("" if unknown)
    split: str = ""           # "train" / "valid" / "test" where the dataset fixes its split, else ""


def load_nsynth(folder: str | Path) -> list[Clip]:
    """Clips of an NSynth-layout folder, sorted by name."""
    folder = Path(folder)
    js = folder / "examples.json"
    try:
        meta = json.loads(js.read_text())
    except FileNotFoundError:
        raise TunesmithError(f"{folder} has no examples.json: it is not an NSynth-layout folder") from None
    except json.JSONDecodeError as e:
        raise TunesmithError(f"{js} is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise TunesmithError(f"{js} must map note names to their metadata (NSynth's examples.json)")
    clips = []
    for name, m in sorted(meta.items()):
        wav = folder / "audio" / f"{m.get('note_str', name)}.wav"
        if not wav.is_file():
            raise TunesmithError(f"{js} lists {name} but {wav} is missing")
        split = str(m.get("split", ""))
        if split and split not in ("train", "valid", "test"):
            raise TunesmithError(f"{js}: {name} has split {split!r}; use train, valid or test")
        clips.append(Clip(wav, str(m.get("instrument_family_str", "unknown")), name, int(m.get("pitch", -1)),
                          int(m.get("velocity", -1)), str(m.get("instrument_source_str", "")),
                          int(m.get("sample_rate", 0)), str(m.get("instrument_str", "")), split))
    if not clips:
        raise TunesmithError(f"{js} lists no clips")
    return clips


def load_gtzan(folder: str | Path) -> list[Clip]:
    """Clips of a GTZAN-layout folder (one sub-folder of audio files per genre), sorted."""
    folder = Path(folder)
    clips = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in AUDIO_EXT:
                clips.append(Clip(f, sub.name, f"{sub.name}/{f.stem}"))
    if not clips:
        raise TunesmithError(f"{folder} has no GENRE/*.wav clips: it is not a GTZAN-layout folder")
    return clips


def parse_name(spec: str | Path) -> tuple[str, str]:
    """``"nsynth-small:val"`` -> ("nsynth-small", "val"); a folder or a plain name -> (it, "")."""
    s = str(spec)
    base, sep, part = s.rpartition(":")
    if sep and part in PARTS and base and not Path(s).exists():
        return base, part
    return s, ""


def find_dataset(name_or_path: str | Path) -> tuple[Path, str]:
    """(folder, layout) for a buildable set (``nsynth-mini``, ``nsynth-small``: built on first use) or an
    NSynth/GTZAN-shaped folder. A ``:part`` suffix is ignored here (see :func:`load_clips`)."""
    from . import builders

    s, _ = parse_name(name_or_path)
    if s in builders.BUILDABLE:
        if not builders.is_built(s):
            print(f"{s} is not built yet: building it now (tunesmith datasets build {s})", file=sys.stderr,
                  flush=True)
            builders.build(s)
        return builders.dataset_dir(s), "nsynth"
    p = Path(s).expanduser()
    if not p.is_dir():
        raise TunesmithError(f"audio dataset {s!r} is neither a buildable dataset ({', '.join(builders.BUILDABLE)}) "
                             "nor a folder (NSynth: examples.json + audio/*.wav; GTZAN: GENRE/*.wav)")
    if (p / "examples.json").is_file():
        return p, "nsynth"
    return p, "gtzan"


def has_fixed_split(clips: list[Clip]) -> bool:
    """True when every clip carries its dataset's split (nsynth-small: by instrument)."""
    return bool(clips) and all(c.split for c in clips)


def load_clips(dataset: str | Path = "nsynth-mini", families: list[str] | None = None,
               pitch_range: list[int] | None = None, max_items: int | None = None) -> list[Clip]:
    """The dataset's clips, filtered by label (family or genre) and MIDI pitch range (inclusive). A
    ``:train`` / ``:val`` / ``:test`` suffix keeps that part of a dataset with a fixed split."""
    base, part = parse_name(dataset)
    folder, layout = find_dataset(base)
    clips = load_nsynth(folder) if layout == "nsynth" else load_gtzan(folder)
    if part:
        if not has_fixed_split(clips):
            raise TunesmithError(f"{base} has no fixed split (no 'split' in its examples.json): name it without "
                                 f":{part} and use val_fraction / split_seed, or reference_paths(split=...)")
        clips = [c for c in clips if c.split == PARTS[part]]
    if families:
        known = sorted({c.label for c in clips})
        bad = [f for f in families if f not in known]
        if bad:
            raise TunesmithError(f"data.families: {bad[0]!r} is not in {dataset}; known: {', '.join(known)}")
        clips = [c for c in clips if c.label in set(families)]
    if pitch_range:
        lo, hi = pitch_range
        clips = [c for c in clips if c.pitch < 0 or lo <= c.pitch <= hi]
    if max_items:
        clips = clips[: int(max_items)]
    if not clips:
        raise TunesmithError(f"no clips left in {dataset} after filtering (families={families}, "
                             f"pitch_range={pitch_range})")
    return clips


def split_clips(clips: list[Clip], val_fraction: float, split_seed: int) -> tuple[list[Clip], list[Clip]]:
    """(training, held-out) clips: the dataset's own split where it has one (the test part is left out of
    both), else a seeded random split of ``val_fraction``."""
    if has_fixed_split(clips):
        return [c for c in clips if c.split == "train"], [c for c in clips if c.split == "valid"]
    return split_by_piece(clips, val_fraction, split_seed)


def reference_paths(dataset: str | Path = "nsynth-mini", families: list[str] | None = None,
                    pitch_range: list[int] | None = None, val_fraction: float = 0.1, split_seed: int = 0,
                    split: str = "val") -> list[Path]:
    """WAV paths of the held-out (``split="val"``), training (``"train"``) or test (``"test"``, datasets
    with a fixed split only) clips exactly as the encodings split them: the reference set for
    :func:`tunesmith.evaluation.audio_metrics.evaluate_audio`."""
    if split not in PARTS:
        raise TunesmithError(f"unknown split {split!r}: use train, val or test")
    clips = load_clips(parse_name(dataset)[0], families, pitch_range)
    if has_fixed_split(clips):
        return [c.path for c in clips if c.split == PARTS[split]]
    if split == "test":
        raise TunesmithError(f"{dataset} has no test part (its split is random): use {dataset}:train or :val")
    train, val = split_clips(clips, val_fraction, split_seed)
    return [c.path for c in (val if split == "val" else train)]


def dataset_parts(name: str) -> tuple[str, ...]:
    """The ``:part`` suffixes a buildable audio dataset accepts."""
    from . import builders

    return ("train", "val", "valid", "test") if builders.FIXED_SPLIT.get(name) else ("train", "val")


# ------------------------------------------------------------------------------------ sample labels
def write_sample_labels(out_dir: str | Path, rows: list[dict]) -> Path:
    """Write ``OUT/samples.json``: what each generated WAV was asked to be. ``rows``: dicts with ``file``
    (a name relative to ``out_dir``), ``pitch`` (MIDI int or None) and ``family`` (str or None); other keys
    (seed, temperature, ...) are kept. Returns the path."""
    out = Path(out_dir)
    clean = []
    for r in rows:
        if "file" not in r:
            raise TunesmithError("write_sample_labels: each row needs a 'file'")
        p = r.get("pitch")
        clean.append({**r, "file": str(r["file"]), "pitch": None if p is None else int(p),
                      "family": None if r.get("family") is None else str(r["family"])})
    out.mkdir(parents=True, exist_ok=True)
    path = out / SAMPLE_LABELS
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"version": 1, "samples": clean}, indent=1))
    tmp.replace(path)
    return path


def read_sample_labels(folder: str | Path) -> dict[str, dict]:
    """``{file name relative to folder: {"pitch": int | None, "family": str | None, ...}}`` from
    ``FOLDER/samples.json`` ({} when there is none)."""
    path = Path(folder) / SAMPLE_LABELS
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text())["samples"]
        return {str(r["file"]): r for r in rows}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise TunesmithError(f"{path} is not a samples.json ({{'samples': [{{'file', 'pitch', 'family'}}]}}): "
                             f"{e}") from None


_NSYNTH_NAME = re.compile(r"^(?P<family>[a-z_]+?)_(acoustic|electronic|synthetic)_\d+-(?P<pitch>\d{3})-\d{3}$")


def requested_labels(wav: str | Path, labels: dict[str, dict] | None = None) -> tuple[int | None, str | None]:
    """(MIDI pitch, family) a WAV was asked to be: its ``samples.json`` entry (``labels``: that file read
    by :func:`read_sample_labels`, else read from the WAV's folder), else its NSynth-style name, else
    (None, None)."""
    wav = Path(wav)
    if labels is None:
        labels = read_sample_labels(wav.parent)
    row = labels.get(wav.name)
    if row is not None:
        p = row.get("pitch")
        return (None if p is None else int(p)), row.get("family")
    m = _NSYNTH_NAME.match(wav.stem)
    if m and m.group("family") in NSYNTH_FAMILIES:
        return int(m.group("pitch")), m.group("family")
    return None, None
