"""zoo:audio-cvae (issue 13): it ships, and the "Done when" request -- brass at MIDI 60, four notes -- gives
four WAVs labelled in samples.json and heard at the requested pitch (pYIN, as `tunesmith evaluate` does)."""
import json
import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

import pytest

from tunesmith import zoo
from tunesmith.cli import main


def test_audio_cvae_ships_small():
    assert "audio-cvae" in zoo.names(), "zoo:audio-cvae is missing: bash scripts/train_zoo.sh audio-cvae"
    size = sum(f.stat().st_size for f in (zoo.ZOO_DIR / "audio-cvae").rglob("*") if f.is_file())
    assert size < 5 * 1024 * 1024


@pytest.mark.skipif("audio-cvae" not in zoo.names(), reason="zoo:audio-cvae not built")
def test_done_when_brass_60_writes_four_wavs_at_the_requested_pitch(tmp_path, capsys):
    from tunesmith.evaluation.audio_metrics import pitch_accuracy

    out = tmp_path / "a"
    assert main(["sample", "zoo:audio-cvae", "--condition", "brass", "--pitch", "60", "--num", "4", "--seed", "0",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == [f"sample_{i:03d}.wav" for i in range(4)]
    rows = json.loads((out / "samples.json").read_text())["samples"]
    assert [(r["pitch"], r["family"]) for r in rows] == [(60, "brass")] * 4
    acc = pitch_accuracy(out)
    assert acc["pitch_accuracy"] == 1.0 and acc["median_abs_cents"] < 10, acc
    capsys.readouterr()
    assert main(["sample", "zoo:audio-cvae", "--condition", "brass", "--pitch", "20", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --pitch 20 is outside the MIDI pitches") and err.count("\n") == 1


@pytest.mark.skipif("audio-cvae" not in zoo.names(), reason="zoo:audio-cvae not built")
def test_audio_cvae_declares_family_and_pitch_controls(capsys):
    assert main(["sample", "zoo:audio-cvae", "--help-model"]) == 0
    text = capsys.readouterr().out
    assert "--condition" in text and "--pitch" in text
