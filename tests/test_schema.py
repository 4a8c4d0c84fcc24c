"""Typed configs (issue 11, item 1): every section checked at load time, before any work starts."""
from pathlib import Path

import pytest

from tunesmith.cli import main
from tunesmith.config import load_config
from tunesmith.errors import TunesmithError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


def _cfg(tiny_config, tmp_path, section, line, name="c.toml"):
    key = line.split("=")[0].strip()
    kept = [ln for ln in tiny_config.read_text().splitlines() if ln.split("=")[0].strip() != key]
    text = "\n".join(kept).replace(f"[{section}]\n", f"[{section}]\n{line}\n") + "\n"
    p = tmp_path / name
    p.write_text(text)
    return p


def test_every_shipped_config_passes_its_schema():
    for c in CONFIGS:
        load_config(c)


@pytest.mark.parametrize("section,line,message", [
    ("train", 'lr = "fast"', '[train] lr must be a positive number, got "fast"'),
    ("train", "lr = -0.1", "[train] lr must be a positive number, got -0.1"),
    ("train", "batch_size = 0", "[train] batch_size must be an integer >= 1"),
    ("train", "batch_size = 2.5", "[train] batch_size must be an integer >= 1"),
    ("train", 'optimizer = "adamm"', "[train] optimizer must be one of adam, adamw, rmsprop, sgd"),
    ("train", 'compile = "yes"', "[train] compile must be true or false"),
    ("train", "betas = [0.9]", "[train] betas must be two numbers in [0, 1)"),
    ("train", 'precision = "fp8"', "[train] precision must be one of fp32, bf16"),
    ("model", 'hidden = "big"', '[model] hidden must be an integer, got "big"'),
    ("model", "dropout = true", "[model] dropout must be a number, got True"),
    ("data", 'seq_len = "long"', '[data] seq_len must be an integer, got "long"'),
    ("sample", "temperatur = 0.9", "unknown config key sample.'temperatur'"),
    ("sample", "temperature = 0", "[sample] temperature must be a positive number, got 0"),
    ("sample", "temperature = nan", "[sample] temperature must be a positive number, got nan"),
    ("sample", "steps = -3", "[sample] steps must be an integer >= 1, got -3"),
    ("sample", "tempo = 1e12", "[sample] tempo must be between 4 and 1000"),
    ("sample", "tempo = 2", "[sample] tempo must be between 4 and 1000"),
])
def test_bad_values_are_refused_at_load_with_one_line(tiny_config, tmp_path, section, line, message):
    p = _cfg(tiny_config, tmp_path, section, line)
    with pytest.raises(TunesmithError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_sample_key_fails_before_training_not_after(tiny_config, tmp_path, capsys):
    p = _cfg(tiny_config, tmp_path, "sample", "primr = \"60 _\"")
    rc = main(["train", str(p), "--out", str(tmp_path / "run"), "--max-steps", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("error:") == 1 and "sample.'primr'" in err and "valid keys" in err
    assert not (tmp_path / "run").exists()        # nothing was started


def test_absurd_sizes_are_refused_with_a_memory_estimate(tiny_config, tmp_path):
    p = tmp_path / "huge.toml"
    p.write_text(tiny_config.read_text().replace("seq_len = 16", "seq_len = 10000000"))
    with pytest.raises(TunesmithError, match=r"needs about [\d,]+ GiB .* this machine has [\d,]+ GiB: lower data.seq_len"):
        load_config(p)


def test_help_model_lists_the_controls_of_the_run(tiny_run, capsys):
    from tunesmith.models.controls import controls
    from tunesmith.training import load_run

    assert main(["sample", str(tiny_run), "--help-model"]) == 0
    out = capsys.readouterr().out
    model, *_ = load_run(tiny_run)
    names = [c.name for c in controls(model)]
    assert {"primer", "temperature", "top_k", "steps", "tempo"} <= set(names)
    for c in controls(model):
        assert c.flag in out
    assert "softmax temperature" in out and "1.0" in out      # the run's [sample] default
