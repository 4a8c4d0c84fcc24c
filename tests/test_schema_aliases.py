"""One name per concept (issue 11): old config key names still load -- silently from saved runs, with a
one-line warning from a config TOML -- and no model or encoding takes an old name any more."""
import inspect
import json
import subprocess
import sys
import warnings

import pytest
import torch

from tunesmith.cli import main
from tunesmith.config import Config, load_config
from tunesmith.errors import TunesmithError
from tunesmith.schema import KEY_ALIASES, apply_aliases

OLD = {old for table in KEY_ALIASES.values() for old in table}


def _signatures():
    from tunesmith.data import _load_encodings
    from tunesmith.data.base import BUILDERS
    from tunesmith.models import MODELS, _load_models

    _load_encodings()
    _load_models()
    return ({n: set(inspect.signature(f).parameters) for n, f in BUILDERS.items()},
            {n: set(inspect.signature(c.__init__).parameters) for n, c in MODELS.items()})


def test_no_encoding_or_model_takes_an_old_name_and_every_new_name_is_taken():
    builders, models = _signatures()
    for name, params in {**builders, **models}.items():
        assert not params & OLD, f"{name} still takes {params & OLD}"
    for new in KEY_ALIASES["data"].values():
        assert any(new in p for p in builders.values()), new
    for new in KEY_ALIASES["model"].values():
        assert any(new in p for p in models.values()), new


def test_codecs_give_vocab_size_not_n_vocab():
    from tunesmith.data.gan_data import GanNotesCodec

    src = inspect.getsource(GanNotesCodec.model_info)
    assert "vocab_size" in src and "n_vocab" not in src


def test_aliases_rename_in_place_and_refuse_both_names():
    d = {"data": {"max_songs": 3}, "model": {"name": "x", "noise_dim": 7, "kl_warmup": 5}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_aliases(d, "c.json", warn=False)
    assert d == {"data": {"max_pieces": 3}, "model": {"name": "x", "latent_dim": 7, "kl_warmup_steps": 5}}
    with pytest.raises(TunesmithError, match=r"\[model\] has both latent and latent_dim"):
        apply_aliases({"model": {"latent": 1, "latent_dim": 2}}, "c.toml")


def test_zoo_model_saved_with_old_names_loads_silently(tmp_path):
    """A melody VAE whose config.json says latent / kl_anneal_steps (as zoo:melody-vae-4bar's did, written before
    the rename) loads without a warning, under the new names."""
    import shutil

    from tunesmith.training.checkpoint import checkpoint_dir, load_run

    run = tmp_path / "old"
    shutil.copytree(checkpoint_dir("zoo:melody-vae-4bar"), run / "checkpoint")
    raw = json.loads((run / "checkpoint" / "config.json").read_text())
    raw["model"]["latent"] = raw["model"].pop("latent_dim")
    raw["model"]["kl_anneal_steps"] = raw["model"].pop("kl_warmup_steps")
    (run / "checkpoint" / "config.json").write_text(json.dumps(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, codec, cfg, _ = load_run(run)
    assert cfg.model["latent_dim"] == 64 and cfg.model["kl_warmup_steps"] == 2000
    assert "latent" not in cfg.model and "kl_anneal_steps" not in cfg.model
    assert model.z_dim == 64 and model.kl_warmup_steps == 2000
    assert json.loads((run / "checkpoint" / "config.json").read_text())["model"]["latent"] == 64   # file untouched


def test_run_dir_with_old_names_loads_and_samples(tmp_path):
    """A GAN run saved before the rename (config.json with noise_dim / max_songs) loads with the same weights."""
    from tunesmith.data.tuples import TupleCodec
    from tunesmith.models import build_model
    from tunesmith.sampling.generate import sample_run
    from tunesmith.training.checkpoint import load_run, write_checkpoint

    torch.manual_seed(0)
    codec = TupleCodec([60.0, 0.5, 0.5], [5.0, 0.3, 0.3], seq_len=16)
    model = build_model("lstm_gan", codec.model_info(), latent_dim=4, hidden=8)
    cfg = Config.from_dict({"data": {"encoding": "tuples", "seq_len": 16, "max_pieces": 5},
                            "model": {"name": "lstm_gan", "latent_dim": 4, "hidden": 8}})
    d = write_checkpoint(tmp_path / "run", model, cfg, codec, {}, {"step": 1})
    saved = json.loads((d / "config.json").read_text())
    saved["model"]["noise_dim"] = saved["model"].pop("latent_dim")
    saved["data"]["max_songs"] = saved["data"].pop("max_pieces")
    (d / "config.json").write_text(json.dumps(saved))

    loaded, _, cfg2, _ = load_run(tmp_path / "run")
    assert loaded.latent_dim == 4 and cfg2.data["max_pieces"] == 5
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    written = sample_run(tmp_path / "run", tmp_path / "out", num=2, seed=0)
    assert len(written) >= 2


def test_config_toml_with_an_old_name_loads_with_one_warning(tiny_config, tmp_path):
    text = tiny_config.read_text().replace('dataset = "essen-small"', 'dataset = "essen-small"\nmax_songs = 4')
    p = tmp_path / "old.toml"
    p.write_text(text)
    with pytest.warns(FutureWarning, match=r"\[data\] max_songs is now max_pieces; rename it") as rec:
        cfg = load_config(p)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert cfg.data["max_pieces"] == 4 and "max_songs" not in cfg.data


def test_cli_prints_the_old_name_warning_as_one_line(tiny_config, tmp_path):
    """The warning is one ``warning:`` line; a bad value under the old name is reported under the new name."""
    text = tiny_config.read_text().replace('dataset = "essen-small"', 'dataset = "essen-small"\nmax_songs = "four"')
    p = tmp_path / "old.toml"
    p.write_text(text)
    r = subprocess.run([sys.executable, "-m", "tunesmith.cli", "train", str(p), "--out", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"warning: {p}: [data] max_songs is now max_pieces; rename it (the old name still works)",
        f'error: {p}: [data] max_pieces must be an integer, got "four"']
    assert not (tmp_path / "r").exists()


def test_config_toml_with_both_names_is_one_error_line(tiny_config, tmp_path, capsys):
    text = tiny_config.read_text().replace("hidden = 32", "hidden = 32\nn_vocab = 5\nvocab_size = 5")
    p = tmp_path / "both.toml"
    p.write_text(text)
    assert main(["train", str(p), "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {p}: [model] has both n_vocab and vocab_size (the same setting; n_vocab is the old "
                   "name): keep only vocab_size"]
    assert not (tmp_path / "r").exists()
