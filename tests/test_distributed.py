"""DDP: torchrun with two gloo processes on CPU trains and writes exactly one checkpoint."""
import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file


def test_torchrun_two_processes_gloo(tiny_config, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29517", "-m", "tunesmith.cli", "train", str(tiny_config), "--out", str(out),
                        "--max-steps", "6", "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    entries = sorted(p.name for p in out.iterdir())
    assert "checkpoint" in entries and not [e for e in entries if e.startswith(".checkpoint")]
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 6
    assert load_file(str(out / "checkpoint" / "model.safetensors"))
    # only rank 0 logged: each (step, split, metric) appears once
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:4]) for r in rows]
    assert len(keys) == len(set(keys))


def test_ddp_early_stopping_agrees_across_ranks(tiny_config, tmp_path):
    """Only rank 0 validates; its loss is shared, so every rank stops at the same step (no hang in
    all-reduce), the plateau scheduler moves every rank's learning rate alike, and the weights agree."""
    text = tiny_config.read_text().replace("lr = 0.01", "lr = 1e-12\nval_every = 2\nearly_stopping = 1\n"
                                           "plateau_patience = 0\nplateau_factor = 0.5")
    tiny_config.write_text(text)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29519", "-m", "tunesmith.cli", "train", str(tiny_config), "--out", str(out),
                        "--max-steps", "40", "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "early stopping at step 4" in r.stderr
    assert r.stderr.count("early stopping") == 1          # said once, by rank 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4
    sums = summary["rank_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]
    entries = sorted(p.name for p in out.iterdir())
    assert entries.count("checkpoint") == 1 and not [e for e in entries if e.startswith(".checkpoint")]
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["step"] == 4 and meta["world_size"] == 2
