"""The MAESTRO dataset layout (Hawthorne et al. 2019): a folder with ``maestro-v*.csv`` and/or
``maestro-v*.json`` metadata (columns canonical_composer, canonical_title, split, year, midi_filename,
audio_filename, duration) and the MIDI files it names (``YEAR/....midi``). The official split (train /
validation / test) comes from the metadata's ``split`` column. Nothing is downloaded: point
``maestro_dir`` at a copy you have.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import TunesmithError
from .midi import read_midi
from .notes import Score

SPLITS = ("train", "validation", "test")
COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration")


def read_metadata(root: str | Path) -> list[dict]:
    """The metadata rows of a MAESTRO folder (CSV preferred, else JSON: column- or row-oriented)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise TunesmithError(f"MAESTRO folder {root} does not exist")
    csvs, jsons = sorted(root.glob("maestro-v*.csv")), sorted(root.glob("maestro-v*.json"))
    if csvs:
        with open(csvs[-1], newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    elif jsons:
        data = json.loads(jsons[-1].read_text(encoding="utf-8"))
        if isinstance(data, dict):  # v3: {column: {row_id: value}}
            ids = sorted(next(iter(data.values())).keys(), key=lambda k: int(k))
            rows = [{c: data[c][i] for c in data} for i in ids]
        else:  # v1/v2: a list of records
            rows = list(data)
    else:
        raise TunesmithError(f"{root} has no maestro-v*.csv or maestro-v*.json metadata file")
    missing = [c for c in ("split", "midi_filename") if rows and c not in rows[0]]
    if missing:
        raise TunesmithError(f"MAESTRO metadata in {root} lacks column {missing[0]!r}")
    return rows


def load_maestro(root: str | Path, splits=SPLITS, max_pieces: int | None = None) -> dict[str, list[Score]]:
    """{split: [Score, ...]} for the requested official splits; titles are 'composer - title'."""
    root = Path(root).expanduser()
    out: dict[str, list[Score]] = {s: [] for s in splits}
    for row in read_metadata(root):
        sp = row["split"]
        if sp not in out or (max_pieces and len(out[sp]) >= max_pieces):
            continue
        path = root / row["midi_filename"]
        if not path.exists():
            raise TunesmithError(f"MAESTRO metadata names {row['midi_filename']}, which is not in {root}")
        sc = read_midi(path)
        sc.title = f"{row.get('canonical_composer', '')} - {row.get('canonical_title', '')}".strip(" -")
        out[sp].append(sc)
    return out
