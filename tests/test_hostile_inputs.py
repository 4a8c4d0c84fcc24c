"""Every bad input gets one clear line and exit 1 (usage errors 2): issue 11, item 5.

Each case runs the real CLI entry point (``tunesmith.cli.main``) and checks the exit code, exactly one
``error:`` line on stderr, no traceback, and that the message is ours -- not the catch-all for bugs
("set TUNESMITH_DEBUG=1 for the traceback"), which a raw Python exception would reach.
"""
import json
import os
import shutil
import socket

import numpy as np
import pytest
import soundfile as sf

from tunesmith.cli import main
from tunesmith.data.midi import read_midi, write_midi
from tunesmith.data.notes import Score


def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error(result, pattern, code=1):
    rc, out, err = result
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == code, (rc, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and "TUNESMITH_DEBUG" not in err, err  # ours, not the catch-all for bugs
    assert pattern in lines[0], lines[0]
    return lines[0]


def melody(n=8, start=0.0) -> Score:
    pitch = np.array([60, 62, 64, 65, 67, 65, 64, 62][:n], np.int16)
    return Score(pitch, start + np.arange(n, dtype=float), np.ones(n), np.full(n, 90, np.int16), np.zeros(n, np.int16))


@pytest.fixture
def a_midi(tmp_path):
    return write_midi(melody(), tmp_path / "tune.mid")


# ------------------------------------------------------------------------------------------- data folders
def test_file_names_that_are_not_utf8_load_like_any_other(tmp_path, capsys):
    """A Latin-1 file name (bytes b'caf\\xe9') used to abort the folder load with a raw UnicodeEncodeError
    (the folder's cache key encoded the names as UTF-8)."""
    from tunesmith.data.corpora import load_folder

    folder = tmp_path / "latin1"
    folder.mkdir()
    for i in range(3):
        write_midi(melody(start=0.5 * i), os.fsdecode(os.fsencode(folder) + b"/caf\xe9_%d.mid" % i))
    write_midi(melody(), folder / "plain.mid")
    scores = load_folder(folder)
    assert len(scores) == 4
    titles = sorted(s.title for s in scores)
    assert titles == ["caf\ufffd_0", "caf\ufffd_1", "caf\ufffd_2", "plain"]  # printable, JSON-able
    json.dumps(titles, ensure_ascii=False).encode("utf-8")
    rc, out, err = cli(capsys, "evaluate", folder, "--reference", folder, "--out", tmp_path / "rep")
    assert rc == 0, err
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["generated"]["pieces"] == 4


def test_a_piece_written_in_several_formats_is_read_once(tmp_path, capsys):
    """`tunesmith sample --format mid,abc,musicxml` writes each piece three times; evaluating that folder
    counted every piece three times."""
    from tunesmith.data.corpora import load_folder
    from tunesmith.sampling.notation import write_notation

    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(2):
        write_midi(melody(start=0.5 * i), folder / f"sample_{i:03d}.mid")
        write_notation(melody(start=0.5 * i), folder / f"sample_{i:03d}.abc")
        write_notation(melody(start=0.5 * i), folder / f"sample_{i:03d}.musicxml")
    write_notation(melody(), folder / "only_abc.abc")
    scores = load_folder(folder)
    assert sorted(s.title for s in scores) == ["only_abc", "sample_000", "sample_001"]
    assert "4 file(s)" in capsys.readouterr().err      # the .abc and .musicxml twins of the two MIDI files
    rc, out, err = cli(capsys, "evaluate", folder, "--reference", folder, "--out", tmp_path / "rep")
    assert rc == 0, err
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["generated"]["pieces"] == 3


# ------------------------------------------------------------------------------------------- checkpoints
GARBLED_CODECS = ['[]', 'null', '"x"', '{"codec": "timestep"}', '{"codec": ["timestep"]}',
                  '{"codec": "timestep", "vocab": 5, "step": 0.25, "seq_len": 16, "target": "all"}',
                  '{"codec": "timestep", "vocab": ["a", "b"], "step": 0.25, "seq_len": 16, "target": "all"}',
                  '{"codec": "timestep", "vocab": ["/", "_", "r"], "step": "x", "seq_len": 16, "target": "all"}',
                  '{"codec": "timestep", "vocab": [', '\udcff\udcfe']


@pytest.mark.parametrize("text", GARBLED_CODECS)
def test_garbled_codec_json(tiny_run, tmp_path, capsys, text):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoint", run / "checkpoint")
    (run / "checkpoint" / "codec.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    line = one_error(cli(capsys, "sample", run, "--num", "1", "--out", tmp_path / "o"), "codec")
    assert "garbled" in line or "unknown codec" in line
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------- sampling options
@pytest.mark.parametrize("flag,value,pattern", [
    ("--temperature", "nan", "temperature must be > 0 and finite, got nan"),   # NaN used to return the primer
    ("--temperature", "inf", "temperature must be > 0 and finite, got inf"),
    ("--temperature=-inf", None, "temperature must be > 0"),
    ("--top-k", "-3", "--top-k must be a whole number >= 1"),                  # a raw torch error before
    ("--top-k", "0", "--top-k must be a whole number >= 1"),
    ("--steps", "-3", "--steps must be a whole number >= 1"),
    ("--steps", "0", "--steps must be a whole number >= 1"),
    ("--steps", "10000000", "--steps must be at most 100,000"),
    ("--tempo", "-3", "--tempo must be between 4 and 1000"),
    ("--tempo", "0", "--tempo must be between 4 and 1000 quarter notes per minute, got 0"),            # silently 120 before
    ("--tempo", "1e12", "per minute, got 1e+12"),     # a MIDI tempo of 0 us/beat
    ("--tempo", "nan", "--tempo must be between"),
    ("--num", "0", "--num must be a whole number >= 1"),
    ("--num", "-2", "--num must be a whole number >= 1"),
])
def test_sampling_options_out_of_range(tiny_run, tmp_path, capsys, flag, value, pattern):
    args = [flag] if value is None else [flag, value]
    one_error(cli(capsys, "sample", tiny_run, *args, "--out", tmp_path / "o"), pattern)
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_sampling_at_the_tempo_bounds_writes_that_tempo(tiny_run, tmp_path, capsys):
    for tempo in ("4", "1000"):
        rc, out, err = cli(capsys, "sample", tiny_run, "--tempo", tempo, "--num", "1", "--steps", "8",
                           "--out", tmp_path / tempo, "--seed", "0")
        assert rc == 0, err
        assert read_midi(tmp_path / tempo / "sample_000.mid").tempo == pytest.approx(float(tempo), rel=1e-4)


def test_write_midi_refuses_a_tempo_midi_cannot_hold(tmp_path):
    from tunesmith.errors import TunesmithError

    for tempo in (0.0, 1e12, float("nan"), 3.0):
        with pytest.raises(TunesmithError, match="tempo must be between 4 and 1000"):
            write_midi(melody(), tmp_path / "t.mid", tempo=tempo)
    assert not (tmp_path / "t.mid").exists()


def test_pick_refuses_a_nan_temperature():
    import torch

    from tunesmith.errors import TunesmithError
    from tunesmith.models.melody_lstm import MelodyLSTM

    for t in (float("nan"), float("inf"), 0.0):
        with pytest.raises(TunesmithError, match="temperature must be > 0 and finite"):
            MelodyLSTM.pick(torch.zeros(2, 5), t, None)


# ------------------------------------------------------------------------------------------- --out
def test_sample_out_that_is_a_file(tiny_run, tmp_path, capsys):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    one_error(cli(capsys, "sample", tiny_run, "--num", "1", "--out", precious), "is a file, not a folder")
    one_error(cli(capsys, "sample", tiny_run, "--num", "1", "--out", precious / "sub"), "is a file, not a folder")
    assert precious.read_text() == "keep me"


def test_sample_default_out_that_is_a_file(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoint", run / "checkpoint")
    (run / "samples").write_text("keep me")  # RUN/samples, where samples go without --out
    one_error(cli(capsys, "sample", run, "--num", "1"), "the run's samples folder")
    assert (run / "samples").read_text() == "keep me"


def test_evaluate_out_that_is_a_file(a_midi, tmp_path, capsys):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    one_error(cli(capsys, "evaluate", a_midi.parent, "--reference", a_midi.parent, "--out", precious),
              "--out")
    assert precious.read_text() == "keep me"


def test_score_out_that_is_a_file_or_a_json_folder(tiny_run, tmp_path, capsys):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    one_error(cli(capsys, "score", tiny_run, "essen-small:val", "--quiet", "--out", precious), "is a file, not a folder")
    one_error(cli(capsys, "score", tiny_run, "essen-small:val", "--quiet", "--out", precious / "s.json"),
              "is a file, not a folder")
    (tmp_path / "d.json").mkdir()
    one_error(cli(capsys, "score", tiny_run, "essen-small:val", "--quiet", "--out", tmp_path / "d.json"),
              "is a folder: give a .json file name")
    assert precious.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tiny_run, a_midi, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        one_error(cli(capsys, "sample", tiny_run, "--num", "1", "--out", ro / "s"), "cannot write")
        one_error(cli(capsys, "evaluate", a_midi.parent, "--reference", a_midi.parent, "--out", ro / "r"),
                  "cannot write")
        one_error(cli(capsys, "render", a_midi, ro / "x.wav"), "cannot write")
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs (no file can be created there)")
def test_out_where_nothing_can_be_written_even_as_root(tiny_run, a_midi, tmp_path, capsys):
    """sysfs refuses new files even to root: stands in for a read-only disk."""
    one_error(cli(capsys, "sample", tiny_run, "--num", "1", "--out", "/sys/tunesmith-out"), "cannot write to --out")
    one_error(cli(capsys, "evaluate", a_midi.parent, "--reference", a_midi.parent, "--out", "/sys/tunesmith-out"),
              "cannot write to --out")
    one_error(cli(capsys, "render", a_midi, "/sys/tunesmith-out.wav"), "cannot write to output folder /sys")


# ------------------------------------------------------------------------------------------- render
def test_render_to_a_folder_or_an_mp3(a_midi, tmp_path, capsys):
    one_error(cli(capsys, "render", a_midi, tmp_path), "is a folder: give the WAV file")
    one_error(cli(capsys, "render", a_midi, tmp_path / "x.mp3"), "WAV only")
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    one_error(cli(capsys, "render", a_midi, precious / "x.wav"), "is a file, not a folder")
    one_error(cli(capsys, "render", a_midi, tmp_path / "x.wav", "--sample-rate", "0"), "--sample-rate")
    assert precious.read_text() == "keep me" and not list(tmp_path.glob("*.wav")) and not (tmp_path / "x.mp3").exists()


def test_render_of_a_midi_without_notes_is_silence(tmp_path, capsys):
    """FluidSynth renders an empty MIDI as a constant 1-LSB offset, which peak normalisation used to blow up
    to a full-scale DC step at -1 dBFS."""
    empty = Score(np.zeros(0, np.int16), np.zeros(0), np.zeros(0), np.zeros(0, np.int16), np.zeros(0, np.int16))
    empty.end = 8.0
    write_midi(empty, tmp_path / "empty.mid")
    rc, out, err = cli(capsys, "render", tmp_path / "empty.mid", tmp_path / "empty.wav")
    assert rc == 0, err
    x, sr = sf.read(tmp_path / "empty.wav")
    assert len(x) >= sr  # at least a second of it
    assert np.max(np.abs(x)) < 1e-3


def test_write_wav_does_not_amplify_a_near_silent_offset(tmp_path):
    from tunesmith.sampling.render import write_wav

    write_wav(np.full(1000, -3.05e-5, np.float32), 8000, tmp_path / "dc.wav")
    assert np.max(np.abs(sf.read(tmp_path / "dc.wav")[0])) < 1e-4
    write_wav(0.01 * np.sin(np.arange(1000, dtype=np.float32)), 8000, tmp_path / "tone.wav")  # still normalised
    assert np.max(np.abs(sf.read(tmp_path / "tone.wav")[0])) == pytest.approx(10 ** (-1 / 20), abs=1e-3)


# ------------------------------------------------------------------------------------------- datasets, serve
def test_datasets_build_without_a_name_is_a_usage_error(capsys):
    one_error(cli(capsys, "datasets", "build"), "datasets build needs a NAME", code=2)


def test_serve_on_a_port_in_use(tiny_run, capsys):
    """It used to print "open http://..." and then exit 3 from inside uvicorn."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        rc, out, err = cli(capsys, "serve", tiny_run, "--port", port)
        one_error((rc, out, err), f"port {port} on 127.0.0.1 is in use")
        assert "open http" not in err
    finally:
        busy.close()
