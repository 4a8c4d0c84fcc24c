"""nsynth-small: the FluidSynth-rendered NSynth-layout set split by instrument (issue 13), and the dataset
names ``nsynth-small:train`` / ``:val`` / ``:test`` wherever datasets are named."""
import json
import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

import numpy as np
import pytest
import soundfile as sf

from tunesmith.data import builders, nsynth_small
from tunesmith.data.base import build_data
from tunesmith.data.nsynth import (load_clips, parse_name, read_sample_labels, reference_paths, requested_labels,
                                   split_clips, write_sample_labels)
from tunesmith.errors import TunesmithError
from tunesmith.evaluation.audio_metrics import track_pitch

TINY = {  # 2 families x 3 instruments, 3 pitches: 54 notes, a couple of seconds to render
    "brass": ("acoustic", 58, {"train": [56], "valid": [60], "test": [57]}),
    "organ": ("electronic", 58, {"train": [16], "valid": [20], "test": [21]}),
}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nsynth_small, "PROGRAMS", TINY)
    monkeypatch.setattr(nsynth_small, "PITCHES_PER_INSTRUMENT", 3)
    return builders.build("nsynth-small", verbose=False)


def test_layout_split_by_instrument_and_sounding_pitch(tiny):
    assert builders.is_built("nsynth-small")
    meta = json.loads((tiny / "examples.json").read_text())
    assert len(meta) == 6 * 3 * 3
    ex = meta["organ_electronic_016-059-090"]
    assert (ex["pitch"], ex["velocity"], ex["instrument_family_str"], ex["split"], ex["sample_rate"]) == \
        (59, 90, "organ", "train", 16000)
    # an instrument lives in exactly one part: held-out figures are about unseen instruments
    parts = {}
    for e in meta.values():
        parts.setdefault(e["instrument_str"], set()).add(e["split"])
    assert all(len(s) == 1 for s in parts.values())
    assert sorted(next(iter(s)) for s in parts.values()) == ["test", "test", "train", "train", "valid", "valid"]
    # the drawbar organ (sub-octave samples) is transposed so the label is the pitch one hears
    x, sr = sf.read(tiny / "audio" / "organ_electronic_016-059-090.wav")
    assert sr == 16000 and len(x) == 64000 and abs(np.abs(x).max() - 0.9) < 1e-3
    assert abs(np.median(track_pitch(x, sr, "yin")) - 59) < 0.5


def test_rendering_is_deterministic(tiny, tmp_path):
    first = {p.name: p.read_bytes() for p in (tiny / "audio").iterdir()}
    h1 = nsynth_small.dataset_hash(tiny)
    again = nsynth_small.build(tmp_path / "again", verbose=False)
    assert nsynth_small.dataset_hash(again) == h1
    assert {p.name: p.read_bytes() for p in (again / "audio").iterdir()} == first


def test_dataset_names_and_encodings_follow_the_split(tiny):
    from tunesmith.evaluation.report import resolve

    assert parse_name("nsynth-small:val") == ("nsynth-small", "val")
    val = reference_paths("nsynth-small", split="val")
    assert {requested_labels(p)[1] for p in val} == {"brass", "organ"}
    assert all("_060-" in p.name or "_020-" in p.name for p in val)
    kind, paths = resolve("nsynth-small:val")
    assert kind == "audio" and paths == val
    assert resolve("nsynth-small:test")[1] == reference_paths("nsynth-small", split="test")
    assert len(resolve("nsynth-small")[1]) == 54
    assert [c.path for c in load_clips("nsynth-small:train")] == reference_paths("nsynth-small", split="train")
    # the encodings train on the training instruments, validate on the valid ones, never load the test ones
    b = build_data("waveform", dataset="nsynth-small", clip_seconds=0.1, val_fraction=0.5)
    assert [c.path for c in b.reference] == val
    assert len(b.train) == 18 and len(b.val) == 18
    assert sorted(set(b.train.tensors["pitch"].tolist())) == [58, 59, 60]
    with pytest.raises(TunesmithError, match="unknown dataset part"):
        resolve("nsynth-mini:test")


def test_split_without_fixed_parts_stays_random(tmp_path):
    from tunesmith.data.nsynth import Clip

    clips = [Clip(Path(f"{i}.wav"), "brass", str(i)) for i in range(10)]
    train, val = split_clips(clips, 0.2, 0)
    assert len(val) == 2 and len(train) == 8


def test_sample_labels_round_trip(tmp_path):
    write_sample_labels(tmp_path, [{"file": "sample_000.wav", "pitch": 60, "family": "brass"},
                                   {"file": "sample_001.wav", "pitch": None, "family": "organ", "seed": 3}])
    labels = read_sample_labels(tmp_path)
    assert labels["sample_001.wav"]["seed"] == 3
    assert requested_labels(tmp_path / "sample_000.wav") == (60, "brass")
    assert requested_labels(tmp_path / "sample_001.wav") == (None, "organ")
    assert requested_labels(tmp_path / "other.wav") == (None, None)
    assert requested_labels(tmp_path / "synth_lead_synthetic_080-061-127.wav") == (61, "synth_lead")
    (tmp_path / "samples.json").write_text("[1, 2]")
    with pytest.raises(TunesmithError, match="samples.json"):
        read_sample_labels(tmp_path)


@pytest.mark.slow
def test_full_build_counts():
    d = builders.build("nsynth-small", verbose=False)
    meta = json.loads((d / "build.json").read_text())
    assert meta["clips"] == nsynth_small.expected_notes() == 4125
    assert meta["splits"] == {"train": 2475, "valid": 825, "test": 825}
