"""The CLI: exit codes and one-line errors for bad input."""
import subprocess
import sys

import pytest

from tunesmith.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *map(str, args)], capture_output=True, text=True)


def one_line_error(r, pattern):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert pattern in lines[0], lines[0]


def test_help_and_usage_errors():
    assert run("--help").returncode == 0
    for cmd in ("datasets", "train", "sample", "render", "evaluate", "serve"):
        assert run(cmd, "--help").returncode == 0, cmd
    assert run("train").returncode == 2
    assert run("frobnicate").returncode == 2


def test_datasets_lists_corpora(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "essen-erk" in out and "bach-chorales" in out


def test_train_and_sample_from_the_cli(tiny_config, tmp_path):
    r = run("train", tiny_config, "--out", tmp_path / "run", "--max-steps", "8", "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("sample", tmp_path / "run", "--primer", "60 _ 62 _", "--num", "2", "--out", tmp_path / "o", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["sample_000.mid", "sample_001.mid"]


def test_bad_inputs_give_one_line(tiny_run, tiny_config, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"this is not midi at all")
    one_line_error(run("render", bad, tmp_path / "x.wav"), "not a readable MIDI file")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    one_line_error(run("render", empty, tmp_path / "x.wav"), "empty")
    one_line_error(run("sample", tmp_path / "missing"), "does not exist")
    one_line_error(run("sample", tiny_run, "--primer", "60 _ 999"), "not in the vocabulary")
    one_line_error(run("sample", tiny_run, "--temperature", "0"), "temperature must be > 0")
    one_line_error(run("sample", tiny_run, "--temperature", "-1"), "temperature must be > 0")
    one_line_error(run("sample", tiny_run, "--denoise"), "does not take --denoise")
    one_line_error(run("train", tmp_path / "nope.toml"), "config file not found")
    cfg = tmp_path / "typo.toml"
    cfg.write_text(tiny_config.read_text().replace("[train]\n", "[train]\nlearning_rate = 1\n"))
    one_line_error(run("train", cfg, "--out", tmp_path / "t"), "unknown config key train.'learning_rate'")
    folder = tmp_path / "emptyfolder"
    folder.mkdir()
    cfg2 = tmp_path / "folder.toml"
    cfg2.write_text(tiny_config.read_text().replace('dataset = "essen-small"', f'dataset = "{folder}"'))
    one_line_error(run("train", cfg2, "--out", tmp_path / "f"), "no music files")
    garbled = tmp_path / "garbled"
    import shutil

    shutil.copytree(tiny_run, garbled)
    (garbled / "checkpoint" / "codec.json").write_text("\x00\x01")
    one_line_error(run("sample", garbled), "garbled")
