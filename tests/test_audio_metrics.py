"""Issue 13's audio metrics: pitch accuracy, family accuracy (with its classifier's held-out accuracy),
per-family MFCC Frechet distances against the wrong-family baseline, multi-resolution STFT distance, and
`tunesmith evaluate` printing them."""
import json
import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

import numpy as np
import pytest
import soundfile as sf

from tunesmith.data import builders, nsynth_small
from tunesmith.data.nsynth import reference_paths, write_sample_labels
from tunesmith.evaluation import audio_family as AF
from tunesmith.evaluation.audio_metrics import (mrstft_distance, mulaw_roundtrip, paired_mrstft, pitch_accuracy)

SR = 16000


def tone(midi, seconds=1.0, cents=0.0, harmonics=3):
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi + cents / 100 - 69) / 12)
    return (sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, harmonics + 1)) * 0.3).astype(np.float32)


def test_pitch_accuracy_counts_notes_within_50_cents(tmp_path):
    # asked for 60, 62, 64 and 67; sounding 60, 62 + 30 cents (hit), 64 + 70 cents (miss), silence (miss)
    for name, x in (("a", tone(60)), ("b", tone(62, cents=30)), ("c", tone(64, cents=70)),
                    ("d", np.zeros(SR, np.float32)), ("e", tone(69))):
        sf.write(tmp_path / f"{name}.wav", x, SR)
    write_sample_labels(tmp_path, [{"file": "a.wav", "pitch": 60, "family": None},
                                   {"file": "b.wav", "pitch": 62, "family": None},
                                   {"file": "c.wav", "pitch": 64, "family": None},
                                   {"file": "d.wav", "pitch": 67, "family": None}])  # e.wav: no label, not counted
    r = pitch_accuracy(tmp_path)
    assert r["n_pitch_labelled"] == 4 and r["pitch_accuracy"] == 0.5
    per = {Path(k).name: v for k, v in r["per_file"].items()}
    assert per["b.wav"]["hit"] and abs(per["b.wav"]["cents"] - 30) < 10
    assert not per["c.wav"]["hit"] and abs(per["c.wav"]["cents"] - 70) < 10
    assert per["d.wav"]["found"] is None and not per["d.wav"]["hit"]


def test_mrstft_distance_hand_computed():
    x = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)  # white noise: no empty bins
    assert mrstft_distance(x, x) == 0.0
    # y = x / 2: spectral convergence ||X - X/2|| / ||X|| = 0.5 and |log X - log X/2| = log 2 at every bin
    assert mrstft_distance(x, x / 2) == pytest.approx(0.5 + np.log(2), abs=1e-3)
    assert mrstft_distance(x, x * 0.9) < mrstft_distance(x, x / 2)


def test_mulaw_roundtrip_is_an_8_bit_quantiser():
    x = np.linspace(-1, 1, 400001).astype(np.float32)
    y = mulaw_roundtrip(x, 8)
    assert len(np.unique(y)) == 256 and np.all(np.diff(y) >= 0)
    # mu-law: half a step of 2/256 in the companded domain is ln(256)/255/256 = 8.5e-5 near zero and 256
    # times that (0.0217) at full scale
    err = np.abs(y - x)
    assert err[np.abs(x) < 0.0005].max() < 1e-4 and 0.02 < err.max() < 0.0225


def test_paired_mrstft_pairs_by_name(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "gen").mkdir()
    x = tone(60)
    sf.write(tmp_path / "ref" / "brass_acoustic_056-060-090.wav", x, SR)
    sf.write(tmp_path / "ref" / "other.wav", x, SR)
    sf.write(tmp_path / "gen" / "brass_acoustic_056-060-090.wav", x * 0.5, SR)
    sf.write(tmp_path / "gen" / "unpaired.wav", x, SR)
    r = paired_mrstft(tmp_path / "gen", tmp_path / "ref")
    assert r["n_pairs"] == 1 and r["mrstft"] > 0.5 and r["mrstft_mulaw8"] > 0


TINY = {
    "brass": ("acoustic", 60, {"train": [56, 57], "valid": [61], "test": [59]}),
    "organ": ("electronic", 60, {"train": [16, 20], "valid": [17], "test": [21]}),
}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nsynth_small, "PROGRAMS", TINY)
    monkeypatch.setattr(nsynth_small, "PITCHES_PER_INSTRUMENT", 2)
    monkeypatch.setattr(nsynth_small, "VELOCITIES", (127,))
    monkeypatch.setattr(AF, "_MEMO", {})
    return builders.build("nsynth-small", verbose=False)


def test_family_classifier_and_frechet_baseline(tiny):
    model = AF.reference_model("nsynth-small", verbose=False)
    clf = model["classifier"]
    assert clf.labels == ["brass", "organ"] and 0 <= clf.val_accuracy <= 1
    assert np.asarray(clf.confusion).sum() == 4  # the valid notes: 2 instruments x 2 pitches
    val = reference_paths("nsynth-small", split="val")
    # the real held-out notes, named like NSynth notes, are classified exactly as in the held-out figure
    fa = AF.family_accuracy(val, "nsynth-small")
    assert fa["n_family_labelled"] == 4 and fa["family_accuracy"] == pytest.approx(clf.val_accuracy)
    rec = fa["classifier_val_recall"]  # per family, from the confusion matrix: its mean is the accuracy here
    assert set(rec) == {"brass", "organ"} and np.mean(list(rec.values())) == pytest.approx(clf.val_accuracy)
    # cached: a second process-level load reads the same classifier back
    AF._MEMO.clear()
    again = AF.reference_model("nsynth-small", verbose=False)["classifier"]
    assert again.val_accuracy == clf.val_accuracy and (Path(model["cache"])).is_file()
    base = AF.family_frechet_baseline("nsynth-small", "val")
    assert set(base["per_family"]) == {"brass", "organ"}
    assert all(v["wrong"] > 0 and v["right"] > 0 for v in base["per_family"].values())
    # the real brass notes asked to be brass: their distance to themselves is 0 < the wrong-family baseline
    brass = [p for p in val if p.name.startswith("brass")]
    ff = AF.family_frechet(brass, "nsynth-small", "val")
    assert ff["per_family"]["brass"]["generated"] == pytest.approx(0.0, abs=1e-3)
    assert ff["beats_wrong"] == 1.0
    # matched sizes: the baseline of 1-note sets is computed from 1-note draws
    one = AF.family_frechet_baseline("nsynth-small", "val", n=1)
    assert one["n"] == 1 and one["per_family"]["brass"]["wrong"] != base["per_family"]["brass"]["wrong"]


def test_evaluate_prints_pitch_and_family_accuracy(tiny, tmp_path, capsys):
    from tunesmith.evaluation.report import evaluate_command

    gen = tmp_path / "a"
    gen.mkdir()
    val = [p for p in reference_paths("nsynth-small", split="val") if "-127" in p.name]
    rows = []
    for i, p in enumerate(val[:2]):
        (gen / f"sample_{i:03d}.wav").write_bytes(p.read_bytes())
        rows.append({"file": f"sample_{i:03d}.wav", "pitch": int(p.stem.split("-")[1]), "family": p.name.split("_")[0]})
    write_sample_labels(gen, rows)
    m = evaluate_command(str(gen), "nsynth-small:val", tmp_path / "out")
    text = capsys.readouterr().out
    assert "pitch accuracy" in text and "family accuracy" in text and "held-out accuracy" in text
    assert m["conditional"]["pitch"]["pitch_accuracy"] == 1.0  # real notes at their own pitch
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["conditional"]["family"]["n_family_labelled"] == 2
    assert "Is it the requested note" in (tmp_path / "out" / "report.html").read_text()
