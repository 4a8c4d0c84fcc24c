"""Built-in corpora (from music21's bundled corpus: nothing is downloaded) and user folders.

Parsed corpora are cached as pickled :class:`Score` lists under ``$TUNESMITH_CACHE`` (default
``~/.cache/tunesmith``), so only the first load pays music21's parsing time.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TunesmithError
from ..files import atomic_path, printable
from .notes import Score

CACHE_VERSION = 2  # 2: Score.pickup (anacrusis) read from the first measure
MIDI_EXT = {".mid", ".midi"}
MUSIC21_EXT = {".krn", ".abc", ".xml", ".musicxml", ".mxl"}


def cache_dir() -> Path:
    d = Path(os.environ.get("TUNESMITH_CACHE", Path.home() / ".cache" / "tunesmith"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def atomic_pickle(obj, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- music21 -> Score
def from_music21(stream, title: str = "") -> Score:
    """Convert a music21 Score/Part/Stream: one track per part, ties merged, chords kept as notes."""
    import music21 as m21

    parts = list(stream.parts) if hasattr(stream, "parts") and len(stream.parts) else [stream]
    pitch, start, dur, track = [], [], [], []
    for ti, part in enumerate(parts):
        flat = part.stripTies(matchByPitch=True).flatten()
        for n in flat.notes:
            ql = float(n.duration.quarterLength)
            if ql <= 0:  # grace notes
                continue
            off = float(n.offset)
            ps = [p.midi for p in n.pitches] if isinstance(n, m21.chord.Chord) else [n.pitch.midi]
            for p in ps:
                pitch.append(p); start.append(off); dur.append(ql); track.append(ti)
    key = None
    keys = list(stream.recurse().getElementsByClass(m21.key.Key))
    if keys:
        key = (keys[0].tonic.pitchClass, keys[0].mode if keys[0].mode in ("major", "minor") else "major")
    tss = list(stream.recurse().getElementsByClass(m21.meter.TimeSignature))
    ts = (tss[0].numerator, tss[0].denominator) if tss else (4, 4)
    if not title and stream.metadata is not None:
        title = stream.metadata.title or ""
    s = Score.from_notes(zip(pitch, start, dur, [90] * len(pitch), track), time_signature=ts, key=key,
                         title=title, end=float(stream.highestTime), pickup=_pickup(parts[0]))
    return s.sorted()


def _pickup(part) -> float:
    """Length in beats of an incomplete first measure followed by others (an anacrusis), else 0."""
    import music21 as m21

    ms = list(part.getElementsByClass(m21.stream.Measure))
    if len(ms) < 2:
        return 0.0
    bar = float(ms[0].barDuration.quarterLength)
    have = float(ms[0].highestTime)
    return have if 0 < have < bar and (ms[0].paddingLeft > 0 or ms[0].number == 0) else 0.0


def parse_file(path: Path) -> list[Score]:
    """One file -> Scores (an ABC or kern file may hold several tunes)."""
    from .midi import read_midi

    ext = path.suffix.lower()
    if ext in MIDI_EXT:
        return [read_midi(path)]
    if ext in MUSIC21_EXT:
        import music21 as m21

        if path.stat().st_size == 0:
            raise TunesmithError(f"{path} is empty (0 bytes)")
        try:
            parsed = m21.converter.parse(str(path))
        except Exception as e:
            raise TunesmithError(f"{path} could not be parsed by music21 ({str(e).splitlines()[0][:80]})") from None
        if isinstance(parsed, m21.stream.Opus):
            return [from_music21(s) for s in parsed.scores]
        return [from_music21(parsed, title=printable(path.stem))]
    raise TunesmithError(f"{path}: unsupported file type {ext!r} (use .mid, .midi, .krn, .abc, .xml, .musicxml, .mxl)")


# ---------------------------------------------------------------- built-in corpora
def _music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _essen(names: list[str]) -> Callable[[], list[Score]]:
    def load() -> list[Score]:
        import music21 as m21

        base = _music21_corpus_dir() / "essenFolksong"
        scores = []
        for name in names:
            opus = m21.converter.parse(str(base / f"{name}.abc"))
            for i, s in enumerate(opus.scores):
                sc = from_music21(s)
                sc.title = sc.title or f"{name}-{i}"
                sc.title = f"{name}:{i}:{sc.title}"
                scores.append(sc)
        return scores
    return load


def _bach() -> list[Score]:
    from music21 import corpus

    scores = []
    for s in corpus.chorales.Iterator(returnType="stream"):
        if len(s.parts) != 4:
            continue
        scores.append(from_music21(s, title=str(s.metadata.title if s.metadata else "")))
    return scores


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    loader: Callable[[], list[Score]]


CORPORA: dict[str, Corpus] = {
    "essen-erk": Corpus("essen-erk", "Essen folk songs, Erk subset (erk5/10/20/30), monophonic, ABC",
                        _essen(["erk5", "erk10", "erk20", "erk30"])),
    "essen-kinder": Corpus("essen-kinder", "Essen folk songs, German children's songs (kinder0)",
                           _essen(["kinder0"])),
    "essen-small": Corpus("essen-small", "Essen folk songs, erk5 only (27 tunes): for quick tests",
                          _essen(["erk5"])),
    "bach-chorales": Corpus("bach-chorales", "Bach chorales with 4 voices (SATB) from music21",
                            _bach),
}


def load_corpus(name: str, refresh: bool = False) -> list[Score]:
    """A built-in corpus by name, or a folder/file path. Cached after the first parse."""
    if name in CORPORA:
        path = cache_dir() / f"corpus-{name}-v{CACHE_VERSION}.pkl"
        if path.exists() and not refresh:
            try:
                with open(path, "rb") as f:
                    return pickle.load(f)
            except Exception:
                _log(f"cache {path} is unreadable; parsing again")
        _log(f"parsing {name} with music21 (first time only; cached in {path})...")
        scores = CORPORA[name].loader()
        atomic_pickle(scores, path)
        return scores
    p = Path(os.path.expanduser(name))
    if p.exists():
        return load_folder(p, refresh=refresh)
    known = ", ".join(CORPORA)
    raise TunesmithError(f"unknown dataset {name!r}: use one of {known}, or a path to a folder of music files")


#: one piece written in several formats (``tunesmith sample --format mid,abc``) is read from the first of these
FORMAT_PREFERENCE = (".mid", ".midi", ".musicxml", ".xml", ".mxl", ".abc", ".krn")


def list_files(folder: Path, exts=None) -> list[Path]:
    """The files under ``folder`` with one of ``exts`` (default: the music formats); of music files that differ
    only in their format (``tune.mid``, ``tune.abc``) the one first in :data:`FORMAT_PREFERENCE`, so a piece
    written in several formats counts once."""
    exts = MIDI_EXT | MUSIC21_EXT if exts is None else set(exts)
    files = sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.suffix.lower() in exts)
    if not exts <= set(FORMAT_PREFERENCE):
        return files
    best: dict[Path, Path] = {}
    for f in files:
        key, have = f.with_suffix(""), best.get(f.with_suffix(""))
        if have is None or FORMAT_PREFERENCE.index(f.suffix.lower()) < FORMAT_PREFERENCE.index(have.suffix.lower()):
            best[key] = f
    if len(best) < len(files):
        _log(f"{len(files) - len(best)} file(s) in {printable(str(folder))} are pieces also written in another format: "
             f"each piece read once ({', '.join(FORMAT_PREFERENCE[:2])} first)")
    return sorted(best.values())


def load_folder(path: Path, refresh: bool = False) -> list[Score]:
    """Every MIDI / kern / ABC / MusicXML file under a folder (or one file). Unreadable files are skipped
    with a warning; a folder with nothing readable is an error."""
    path = Path(path)
    if path.is_file():
        return parse_file(path)
    files = list_files(path)
    if not files:
        raise TunesmithError(f"no music files (.mid .midi .krn .abc .xml .musicxml .mxl) in folder {path}")
    # os.fsencode: a file name that is not UTF-8 (e.g. Latin-1 bytes) hashes like any other
    sig = hashlib.sha1(b"\n".join(os.fsencode(f) + f":{f.stat().st_size}:{f.stat().st_mtime_ns}".encode()
                                   for f in files)).hexdigest()[:16]
    cpath = cache_dir() / f"folder-{sig}-v{CACHE_VERSION}.pkl"
    if cpath.exists() and not refresh:
        with open(cpath, "rb") as f:
            return pickle.load(f)
    scores, bad = [], []
    for f in files:
        try:
            scores.extend(parse_file(f))
        except TunesmithError as e:
            bad.append(str(e))
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable file(s), e.g. {bad[0]}", stacklevel=2)
        _log(f"warning: skipped {len(bad)} unreadable file(s), e.g. {bad[0]}")
    if not scores:
        raise TunesmithError(f"none of the {len(files)} files in {path} could be read (e.g. {bad[0]})")
    atomic_pickle(scores, cpath)
    return scores


def split_by_piece(items: list, val_fraction: float, seed: int = 0) -> tuple[list, list]:
    """Split pieces (not windows) into train/validation, reproducibly."""
    if not items:
        return [], []
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    n_val = int(round(len(items) * val_fraction)) if val_fraction > 0 else 0
    if val_fraction > 0 and len(items) > 1:
        n_val = max(1, min(n_val, len(items) - 1))
    val = [items[i] for i in sorted(order[:n_val])]
    train = [items[i] for i in sorted(order[n_val:])]
    return train, val
