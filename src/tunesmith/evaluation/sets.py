"""The two sets ``tunesmith evaluate`` compares: what a set specification names, and loading its pieces.

Set specifications (GENERATED and ``--reference``):

* a folder: every MIDI (and kern/ABC/MusicXML) file in it, recursively; a folder of WAV files is an audio
  set (:mod:`tunesmith.evaluation.audio_report`);
* a run directory (it has ``checkpoint/``): its ``samples/`` folder;
* one music file;
* a built-in dataset. ``essen-erk`` (and every ``essen-*``) means all its songs after the melody LSTM's
  filtering and transposition to C major / A minor (train + validation), ``essen-erk:train`` and
  ``essen-erk:val`` the two halves of that split, ``NAME:raw`` the corpus as parsed (no filter, no
  transposition); other datasets (``bach-chorales``) are used as parsed;
* a built audio dataset: ``nsynth-mini`` / ``nsynth-small`` (every note), ``NAME:train``, ``NAME:val`` and,
  for nsynth-small (split by instrument), ``NAME:test``: their WAV files.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..data.corpora import CORPORA, MIDI_EXT, MUSIC21_EXT, list_files, load_corpus, parse_file
from ..data.notes import Score
from ..errors import TunesmithError

MAX_NOTES = 200_000  # a piece with more notes than this is skipped as "too large"
AUDIO_EXT = {".wav"}
SUFFIXES = ("train", "val", "raw")


def _is_dataset(spec: str) -> bool:
    base, _, suffix = spec.partition(":")
    return base in CORPORA and (not suffix or suffix in SUFFIXES)


def _dataset(spec: str) -> tuple[list[Score], str]:
    base, _, suffix = spec.partition(":")
    if base == "bach-chorales" and suffix in ("train", "val"):  # the chorale models' split (316 / 35)
        from ..data.coconet_data import chorale_split

        train, val = chorale_split(base)
        return (train, f"{base} training chorales") if suffix == "train" else (val, f"{base} held-out chorales")
    if suffix == "raw" or (not suffix and not base.startswith("essen")):
        return load_corpus(base), f"built-in dataset {base} (as parsed)"
    from ..data.timestep import prepared_songs

    train, val = prepared_songs(base, verbose=False)
    if suffix == "train":
        return train, f"{base} training songs (filtered, transposed to C major / A minor)"
    if suffix == "val":
        return val, f"{base} held-out songs (filtered, transposed to C major / A minor)"
    return train + val, f"{base}, all songs (filtered, transposed to C major / A minor)"


def resolve(spec: str) -> tuple[str, object]:
    """What a set specification names: ("dataset", name) | ("files", [paths]) | ("audio", [paths])."""
    spec = str(spec)
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_dir() and (p / "checkpoint").is_dir():
            s = p / "samples"
            if not s.is_dir():
                raise TunesmithError(f"run directory {p} has no samples/ folder: run `tunesmith sample {p}` first")
            p = s
        if p.is_file():
            ext = p.suffix.lower()
            if ext in AUDIO_EXT:
                return "audio", [p]
            if ext in MIDI_EXT | MUSIC21_EXT:
                return "files", [p]
            raise TunesmithError(f"{p}: unsupported file type {ext!r} (use a MIDI file or a folder of them)")
        music = list_files(p)   # a piece written in several formats once
        if music:
            return "files", music
        wavs = list_files(p, AUDIO_EXT)
        if wavs:
            return "audio", wavs
        raise TunesmithError(f"no MIDI (.mid .midi), kern/ABC/MusicXML or WAV files in folder {p}")
    if _is_dataset(spec):
        return "dataset", spec
    base, _, suffix = spec.partition(":")
    from ..data import builders

    if base in builders.BUILDABLE:  # an audio dataset tunesmith builds (nsynth-mini, nsynth-small): its WAV clips
        from ..data.nsynth import dataset_parts, reference_paths

        parts = dataset_parts(base)
        if suffix and suffix not in parts:
            raise TunesmithError(f"unknown dataset part {suffix!r} in {spec!r}: use {base}, "
                                 + ", ".join(f"{base}:{s}" for s in parts))
        parts = [suffix] if suffix else [s for s in parts if s != "valid"]
        return "audio", [p for part in parts for p in reference_paths(base, split=part)]
    if base in CORPORA:
        raise TunesmithError(f"unknown dataset part {suffix!r} in {spec!r}: use {base}, "
                             + ", ".join(f"{base}:{s}" for s in SUFFIXES))
    raise TunesmithError(f"{spec!r} is neither a folder, a music file nor a known dataset "
                         f"({', '.join(CORPORA)}; add :train, :val or :raw; audio: "
                         f"{', '.join(builders.BUILDABLE)})")


def _subsample(items: list, max_pieces: int | None, seed: int = 0) -> list:
    if max_pieces is None or len(items) <= max_pieces:
        return items
    if max_pieces < 1:
        raise TunesmithError(f"--max-pieces must be >= 1, got {max_pieces}")
    idx = np.sort(np.random.default_rng(seed).choice(len(items), max_pieces, replace=False))
    return [items[i] for i in idx]


def load_set(spec: str, max_pieces: int | None = None, role: str = "generated") -> tuple[list[Score], dict]:
    """Scores of a set and what happened while loading: unreadable files, pieces without pitched notes
    (empty, drum-only) and pieces that are too large are counted and left out. Raises TunesmithError
    when nothing usable is left."""
    kind, what = resolve(spec)
    if kind == "audio":
        raise TunesmithError(f"{spec} holds WAV files: audio sets are evaluated by evaluate_command "
                             "(both sets must be WAV)")
    skipped: dict[str, list[str]] = {}
    if kind == "dataset":
        scores, source = _dataset(what)
        files = len(scores)
    else:
        paths = _subsample(what, max_pieces)
        scores, files = [], len(paths)
        for f in paths:
            try:
                scores.extend(parse_file(f))
            except TunesmithError as e:
                skipped.setdefault("unreadable", []).append(str(e))
        source = f"{len(what)} file(s) in {spec}" if len(what) > 1 else str(what[0])
    scores = _subsample(scores, max_pieces)
    kept = []
    for s in scores:
        n = len(s.pitched())
        name = s.title or "?"
        if n == 0:
            reason = "drum-only" if len(s) else "no notes"
            skipped.setdefault(reason, []).append(name)
        elif n > MAX_NOTES:
            skipped.setdefault("too large", []).append(f"{name} ({n} notes > {MAX_NOTES})")
        else:
            kept.append(s)
    info = {"spec": str(spec), "source": source, "files": files, "pieces": len(kept),
            "skipped": {k: len(v) for k, v in skipped.items()},
            "skipped_examples": {k: v[:3] for k, v in skipped.items()}}
    if not kept:
        why = "; ".join(f"{len(v)} {k} (e.g. {v[0]})" for k, v in skipped.items()) or "no pieces"
        raise TunesmithError(f"no usable piece in the {role} set {spec}: {why}")
    if skipped:
        print(f"warning: {role} set {spec}: left out " +
              ", ".join(f"{len(v)} {k}" for k, v in skipped.items()), file=sys.stderr)
    return kept, info


