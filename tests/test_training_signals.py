"""Ctrl-C and SIGTERM stop training at a step boundary with a checkpoint; --resume is then bit-exact."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tunesmith.training import train


def _wait_for_progress(run, proc, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        m = run / "metrics.csv"
        if m.exists() and len(m.read_text().splitlines()) > 2:
            return
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read()[-2000:])
        time.sleep(0.05)
    raise AssertionError("training made no progress")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_signal_checkpoints_at_a_step_boundary_and_resume_is_exact(sig, code, tiny_config, tmp_path):
    tiny_config.write_text(tiny_config.read_text().replace("log_every = 5", "log_every = 1"))
    run = tmp_path / "r"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "train", str(tiny_config), "--out", str(run),
                          "--max-steps", "100000", "--device", "cpu", "--quiet"],
                         stderr=subprocess.PIPE, text=True, env=env)
    _wait_for_progress(run, p)
    p.send_signal(sig)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == code, err[-2000:]
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    meta = json.loads((run / "checkpoint" / "meta.json").read_text())
    state = torch.load(run / "checkpoint" / "trainer.pt", weights_only=False)
    stopped = meta["step"]
    assert stopped >= 1 and state["step"] == stopped
    assert state["consumed"] == stopped            # one batch per step: the checkpoint is at a step boundary
    # continue a few steps, then compare with a run that was never interrupted
    train(tiny_config, run, device="cpu", max_steps=stopped + 5, resume=True, progress=False)
    train(tiny_config, tmp_path / "ref", device="cpu", max_steps=stopped + 5, progress=False)
    a = load_file(str(run / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "ref" / "checkpoint" / "model.safetensors"))
    for k in b:
        assert torch.equal(a[k], b[k]), k
