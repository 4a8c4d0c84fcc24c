"""The evaluate command end to end, bad input, random melodies scoring worse, and muspy cross-checks."""
import json
import math

import numpy as np
import pytest

from tunesmith.cli import main
from tunesmith.data.corpora import load_corpus
from tunesmith.data.midi import write_midi
from tunesmith.data.notes import Score
from tunesmith.errors import TunesmithError
from tunesmith.evaluation import features as F
from tunesmith.evaluation import report as R


def random_melodies(n, seed=0, length=40):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        d = rng.choice([0.5, 1.0], length)
        start = np.concatenate([[0], np.cumsum(d)[:-1]])
        out.append(Score(pitch=rng.integers(48, 84, length), start=start, duration=d))
    return out


@pytest.fixture(scope="module")
def small():
    from tunesmith.data.timestep import prepared_songs

    train, val = prepared_songs("essen-small", val_fraction=0.3, verbose=False)
    return train, val


def test_random_melodies_score_worse(small):
    train, val = small
    held = R.evaluate(val, train, max_pairs=5000)
    rnd = R.evaluate(random_melodies(30), train, max_pairs=5000)
    fh, fr = held["features"], rnd["features"]
    assert fr["in_scale_ratio"]["generated_mean"] < fh["in_scale_ratio"]["generated_mean"] - 0.2
    assert fr["pitch_range"]["generated_mean"] > fh["pitch_range"]["generated_mean"] + 10
    assert fr["avg_pitch_interval"]["generated_mean"] > 2 * fh["avg_pitch_interval"]["generated_mean"]
    # features on which random pitches must be visibly worse (not pitch_mean: the random range is centred
    # near the songs' mean; not rhythm features: the random rhythm is plausible)
    for name, margin in (("used_pitches", 0.5), ("used_pitch_classes", 0.3), ("pitch_range", 0.5),
                         ("pitch_std", 0.5), ("avg_pitch_interval", 0.5), ("in_scale_ratio", 0.5),
                         ("scale_consistency", 0.5), ("pitch_entropy", 0.5), ("pitch_class_entropy", 0.4),
                         ("pitches_per_bar", 0.3), ("pitch_class_histogram", 0.15),
                         ("pitch_class_transitions", 0.1), ("grouped_pitch_manhattan", 0.5)):
        assert fr[name]["overlap_ref_intra_vs_inter"] < fh[name]["overlap_ref_intra_vs_inter"] - margin, name
        assert fr[name]["kl_ref_intra_vs_inter"] > fh[name]["kl_ref_intra_vs_inter"], name
    assert rnd["headline"]["mean_overlap_area"] < held["headline"]["mean_overlap_area"] - 0.2
    assert held["headline"]["mean_overlap_area"] > 0.75
    assert (rnd["set_level"]["pitch_class_transition_matrix"]["l1_difference"]
            > 2 * held["set_level"]["pitch_class_transition_matrix"]["l1_difference"])


def test_cli_end_to_end_on_a_folder(tmp_path, capsys):
    gen = tmp_path / "gen"
    for i, s in enumerate(random_melodies(6, seed=1, length=16)):
        write_midi(s, gen / f"sample_{i:03d}.mid")
    write_midi(Score(), gen / "empty.mid")  # a file with no notes: counted, not fatal
    (gen / "broken.mid").write_bytes(b"not a midi file")
    out = tmp_path / "report"
    assert main(["evaluate", str(gen), "--reference", "essen-small:raw", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "in_scale_ratio" in text and "overlap" in text and str(out / "report.html") in text
    m = json.loads((out / "metrics.json").read_text())
    assert m["generated"]["pieces"] == 6
    assert m["generated"]["skipped"] == {"unreadable": 1, "no notes": 1}
    assert m["reference"]["pieces"] == len(load_corpus("essen-small"))
    assert set(F.SCALAR_FEATURES) <= set(m["features"])
    assert len(m["set_level"]["pitch_class_transition_matrix"]["generated"]) == 12
    for png in ("pitch_class_transitions.png", "note_length_transitions.png", "kde.png", "pitch_histogram.png",
                "note_length_histogram.png"):
        assert (out / png).stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "src='kde.png'" not in html
    md = (out / "report.md").read_text()
    assert "| in_scale_ratio |" in md and "(kde.png)" in md


def test_run_directory_means_its_samples(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    with pytest.raises(TunesmithError, match="no samples/ folder"):
        R.resolve(str(run))
    write_midi(random_melodies(1)[0], run / "samples" / "sample_000.mid")
    kind, files = R.resolve(str(run))
    assert kind == "files" and files[0].name == "sample_000.mid"


@pytest.mark.parametrize("spec,msg", [
    ("no-such-dataset", "neither a folder, a music file nor a known dataset"),
    ("essen-erk:test", "unknown dataset part"),
])
def test_bad_reference_names(spec, msg):
    with pytest.raises(TunesmithError, match=msg):
        R.resolve(spec)


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), "--reference", "essen-small", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no MIDI" in err and "\n" not in err
    drums = tmp_path / "drums.mid"
    write_midi(Score.from_notes([(36, 0, 1), (38, 1, 1)], drum_tracks=(0,)), drums)
    with pytest.raises(TunesmithError, match="drum-only"):
        R.load_set(str(drums))
    silent = tmp_path / "silent.mid"
    write_midi(Score(), silent)
    with pytest.raises(TunesmithError, match="no notes"):
        R.load_set(str(silent))
    assert main(["evaluate", str(silent), "--reference", "essen-small", "--out", str(tmp_path / "r")]) == 1
    assert "no usable piece" in capsys.readouterr().err


def test_huge_file_is_left_out(tmp_path, monkeypatch):
    from tunesmith.evaluation import sets

    monkeypatch.setattr(sets, "MAX_NOTES", 50)  # loading lives in evaluation/sets.py
    d = tmp_path / "set"
    write_midi(random_melodies(1, length=60)[0], d / "huge.mid")
    write_midi(random_melodies(1, length=20)[0], d / "ok.mid")
    scores, info = R.load_set(str(d))
    assert len(scores) == 1 and info["skipped"] == {"too large": 1}
    with pytest.raises(TunesmithError, match="too large"):
        R.load_set(str(d / "huge.mid"))


def test_wav_sets_use_audio_metrics_or_say_it_is_missing(tmp_path, monkeypatch):
    import soundfile as sf

    for name in ("g", "r"):
        (tmp_path / name).mkdir()
        sf.write(tmp_path / name / "a.wav", np.zeros(1600, np.float32), 16000)
    try:
        import tunesmith.evaluation.audio_metrics  # noqa: F401
        have_audio = True
    except ImportError:
        have_audio = False
    if not have_audio:
        with pytest.raises(TunesmithError, match="audio evaluation is not available"):
            R.evaluate_command(str(tmp_path / "g"), str(tmp_path / "r"), tmp_path / "out")
    import sys
    import types

    fake = types.ModuleType("tunesmith.evaluation.audio_metrics")
    fake.evaluate_audio = lambda g, r, out: {"fad": 1.5, "kl_mfcc": 0.25}
    monkeypatch.setitem(sys.modules, "tunesmith.evaluation.audio_metrics", fake)
    m = R.evaluate_command(str(tmp_path / "g"), str(tmp_path / "r"), tmp_path / "out")
    assert m["audio"] == {"fad": 1.5, "kl_mfcc": 0.25}
    assert "fad" in (tmp_path / "out" / "report.html").read_text()
    with pytest.raises(TunesmithError, match="compare like with like"):
        R.evaluate_command(str(tmp_path / "g"), "essen-small", tmp_path / "out2")


# ------------------------------------------------------------------ muspy cross-check
def _muspy():
    try:
        import muspy

        return muspy
    except Exception as e:  # pragma: no cover - depends on the environment
        pytest.skip(f"muspy cannot be imported ({type(e).__name__}: {e}); cross-check skipped")


def test_agrees_with_muspy(tmp_path):
    muspy = _muspy()
    rng = np.random.default_rng(7)
    pieces = []
    for k in range(6):
        # notes start on 8th-note positions and are 0.75 or 1.25 beats long, with gaps: no note ends on a
        # beat line (where muspy counts the next beat as used, see docs/evaluation.md)
        n = 20
        start = np.cumsum(rng.choice([1.0, 1.5, 2.0, 3.0], n)) - 1
        dur = rng.choice([0.75, 1.25], n)
        pitch = rng.integers(55, 80, n)
        gap = np.diff(np.append(start, start[-1] + 2))
        dur = np.where(gap < 1.5, 0.75, dur)  # never overlaps the next note
        notes = [(int(p), float(a), float(d)) for p, a, d in zip(pitch, start, dur)]
        if k % 2:  # add chords (polyphony), different pitches so that no two same-pitch notes overlap
            notes += [(int(p) - 12, float(s), float(d)) for p, s, d in notes[::3]]
        pieces.append(Score.from_notes(notes))
    for k, s in enumerate(pieces):
        path = write_midi(s, tmp_path / f"p{k}.mid")
        m = muspy.read_midi(str(path))
        ours = F.piece_features(s)
        assert ours["pitch_range"] == muspy.pitch_range(m)
        assert ours["used_pitches"] == muspy.n_pitches_used(m)
        assert ours["used_pitch_classes"] == muspy.n_pitch_classes_used(m)
        assert ours["pitch_entropy"] == pytest.approx(muspy.pitch_entropy(m))
        assert ours["pitch_class_entropy"] == pytest.approx(muspy.pitch_class_entropy(m))
        assert ours["scale_consistency"] == pytest.approx(muspy.scale_consistency(m))
        assert ours["polyphony"] == pytest.approx(muspy.polyphony(m), rel=1e-3)
        assert ours["empty_beat_rate"] == pytest.approx(muspy.empty_beat_rate(m))
        assert F.piece_features(s, key=(0, "major"))["in_scale_ratio"] == pytest.approx(
            muspy.pitch_in_scale_rate(m, 0, "major"))
