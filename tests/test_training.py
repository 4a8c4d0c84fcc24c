"""The trainer: falling loss, exact resume, atomic checkpoints, clear errors."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from tunesmith.config import load_config
from tunesmith.errors import TunesmithError
from tunesmith.training import checkpoint as ckpt_mod
from tunesmith.training import load_run, train
from tunesmith.training.logger import read_metrics


def test_loss_falls_on_a_small_corpus(tiny_config, tmp_path):
    summary = train(tiny_config, tmp_path / "r", device="cpu", max_steps=60, progress=False)
    series = read_metrics(tmp_path / "r")[("train", "loss")]
    first, last = series[0][1], series[-1][1]
    assert last < 0.75 * first, series
    assert summary["val"]["loss"] < math.log(20)  # far better than uniform over the vocabulary
    assert 0 < summary["val"]["acc"] <= 1
    assert "val_loss" in summary["baseline"]
    run = tmp_path / "r"
    for f in ("checkpoint/model.safetensors", "checkpoint/config.json", "checkpoint/codec.json",
              "checkpoint/trainer.pt", "metrics.csv", "losses.png", "summary.json"):
        assert (run / f).exists(), f
    assert list((run / "tensorboard").iterdir())


def test_train_rate_leaves_out_validation_and_checkpoints(tiny_config, tmp_path, monkeypatch):
    """summary['train_steps_per_second'] (what benchmarks/bench_lstm.py compares with a bare loop) does not count
    the time the loop spends validating and checkpointing; steps_per_second does."""
    import time

    from tunesmith.training.trainer import Trainer

    slow = Trainer.validate

    def validate(self):                   # each validation takes 0.3 s more
        time.sleep(0.3)
        return slow(self)

    monkeypatch.setattr(Trainer, "validate", validate)
    cfg = load_config(tiny_config)
    cfg.train.checkpoint_every = cfg.train.val_every = 5
    s = train(cfg, tmp_path / "r", device="cpu", max_steps=20, progress=False)
    whole = 20 / s["steps_per_second"]
    alone = 20 / s["train_steps_per_second"]
    assert whole - alone >= 4 * 0.3   # the validations at steps 5, 10, 15 and 20 are left out


def _weights(run):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def test_resume_continues_exactly(tiny_config, tmp_path):
    text = tiny_config.read_text().replace("dropout = 0.0", "dropout = 0.3")
    tiny_config.write_text(text)
    train(tiny_config, tmp_path / "a", device="cpu", max_steps=40, progress=False)
    train(tiny_config, tmp_path / "b", device="cpu", max_steps=20, progress=False)
    train(tiny_config, tmp_path / "b", device="cpu", max_steps=40, resume=True, progress=False)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    meta = json.loads((tmp_path / "b" / "checkpoint" / "meta.json").read_text())
    assert meta["step"] == 40


def test_existing_checkpoint_needs_resume(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "r", device="cpu", max_steps=3, progress=False)
    with pytest.raises(TunesmithError, match="--resume"):
        train(tiny_config, tmp_path / "r", device="cpu", max_steps=3, progress=False)


def test_crash_while_writing_a_checkpoint_keeps_the_last_one(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "r"
    train(tiny_config, run, device="cpu", max_steps=5, progress=False)
    before = _weights(run)

    def broken_save(obj, path, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(TunesmithError, match="could not write a checkpoint.*last checkpoint is kept"):
        train(tiny_config, run, device="cpu", max_steps=10, resume=True, progress=False)
    assert not list(run.glob(".checkpoint.tmp*"))
    monkeypatch.undo()
    after = _weights(run)
    for k in before:
        assert torch.equal(before[k], after[k])
    model, codec, cfg, meta = load_run(run)  # still loadable
    assert meta["step"] == 5


def test_nan_loss_stops_with_a_clear_message(tiny_config, tmp_path, monkeypatch):
    from tunesmith.models.melody_lstm import MelodyLSTM

    real = MelodyLSTM.forward

    def poisoned(self, batch, mode="loss", step=0):
        out = real(self, batch, mode, step)
        if step >= 5:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(MelodyLSTM, "forward", poisoned)
    tiny_config.write_text(tiny_config.read_text().replace("checkpoint_every = 1000", "checkpoint_every = 2"))
    with pytest.raises(TunesmithError, match="loss became nan at step 6.*last good checkpoint"):
        train(tiny_config, tmp_path / "r", device="cpu", max_steps=50, progress=False)
    _, _, _, meta = load_run(tmp_path / "r")
    assert meta["step"] == 4


def test_unknown_config_keys(tiny_config, tmp_path):
    for section, key in (("model", "hiden"), ("train", "epoch"), ("data", "seqlen")):
        text = tiny_config.read_text().replace(f"[{section}]\n", f"[{section}]\n{key} = 3\n")
        p = tmp_path / f"{section}.toml"
        p.write_text(text)
        with pytest.raises(TunesmithError, match=f"unknown config key {section}.'{key}'"):
            train(p, tmp_path / section, device="cpu", max_steps=1, progress=False)


def test_seed_way_trains_on_the_last_token(tiny_config, tmp_path):
    tiny_config.write_text(tiny_config.read_text().replace("seq_len = 16", 'seq_len = 16\ntarget = "last"'))
    cfg = load_config(tiny_config)
    assert cfg.data["target"] == "last"
    s = train(tiny_config, tmp_path / "r", device="cpu", max_steps=5, progress=False)
    assert s["data"]["target"] == "last"
    model, codec, _, _ = load_run(tmp_path / "r")
    assert model.target == "last"


def test_missing_and_garbled_checkpoints(tmp_path, tiny_run):
    with pytest.raises(TunesmithError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TunesmithError, match="no checkpoint"):
        load_run(tmp_path / "empty")
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_run, bad)
    (bad / "checkpoint" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(TunesmithError, match="unreadable"):
        load_run(bad)
    (bad / "checkpoint" / "config.json").write_text("{not json")
    with pytest.raises(TunesmithError, match="garbled"):
        load_run(bad)
