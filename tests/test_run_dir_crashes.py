"""Signals and crashes lose nothing (issue 11, item 4): the run directory after each kind of accident."""
import errno
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from tunesmith.errors import TunesmithError
from tunesmith.training import checkpoint as ckpt_mod
from tunesmith.training import load_run, train
from tunesmith.training.logger import read_metrics


def _weights(d):
    return load_file(str(d / "model.safetensors"))


def test_disk_full_says_so_and_keeps_the_last_checkpoint(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "r"
    train(tiny_config, run, device="cpu", max_steps=3, progress=False)
    before = _weights(run / "checkpoint")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", full)
    with pytest.raises(TunesmithError, match="disk full.*last checkpoint is kept.*--resume"):
        train(tiny_config, run, device="cpu", max_steps=6, resume=True, progress=False)
    monkeypatch.undo()
    after = _weights(run / "checkpoint")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((run / "checkpoint" / "meta.json").read_text())["step"] == 3


def test_empty_metrics_csv_from_an_early_kill_does_not_break_later_runs(tiny_config, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.csv").write_text("")          # killed before the first flush
    train(tiny_config, run, device="cpu", max_steps=5, progress=False)
    series = read_metrics(run)
    assert series[("train", "loss")][-1][0] == 5
    train(tiny_config, run, device="cpu", max_steps=10, resume=True, progress=False)
    assert read_metrics(run)[("train", "loss")][-1][0] == 10


def test_complete_temporary_checkpoints_are_adopted_when_no_other_exists(tiny_config, tmp_path):
    """A crash after `checkpoint` was moved to `checkpoint.old` and `checkpoint.old` was deleted by an older
    version, or any sequence that leaves only finished temporary folders: the newest complete one wins."""
    run = tmp_path / "r"
    train(tiny_config, run, device="cpu", max_steps=4, progress=False)
    os.replace(run / "checkpoint", run / ".checkpoint.tmp111")
    train(tiny_config, tmp_path / "s", device="cpu", max_steps=6, progress=False)
    shutil.copytree(tmp_path / "s" / "checkpoint", run / ".checkpoint.tmp222")
    (run / ".checkpoint.tmp333").mkdir()          # an incomplete one: ignored
    (run / ".checkpoint.tmp333" / "model.safetensors").write_bytes(b"half")
    model, codec, cfg, meta = load_run(run)
    assert meta["step"] == 6
    train(tiny_config, run, device="cpu", max_steps=8, resume=True, progress=False)
    assert json.loads((run / "checkpoint" / "meta.json").read_text())["step"] == 8
    assert not list(run.glob(".checkpoint.tmp*"))


def test_resume_with_missing_weights_refuses_instead_of_restarting(tiny_config, tmp_path):
    run = tmp_path / "r"
    train(tiny_config, run, device="cpu", max_steps=3, progress=False)
    (run / "checkpoint" / "model.safetensors").unlink()
    trainer_pt = (run / "checkpoint" / "trainer.pt").read_bytes()
    with pytest.raises(TunesmithError, match="incomplete.*model.safetensors"):
        train(tiny_config, run, device="cpu", max_steps=6, resume=True, progress=False)
    assert (run / "checkpoint" / "trainer.pt").read_bytes() == trainer_pt


def test_out_that_is_a_file_or_not_writable(tiny_config, tmp_path):
    f = tmp_path / "afile"
    f.write_text("keep me")
    with pytest.raises(TunesmithError, match="is a file"):
        train(tiny_config, f, device="cpu", max_steps=1, progress=False)
    assert f.read_text() == "keep me"
    # a read-only place (as root, permissions are not enforced: /proc refuses every new folder)
    with pytest.raises(TunesmithError, match="cannot write to --out"):
        train(tiny_config, "/proc/tunesmith-run", device="cpu", max_steps=1, progress=False)
