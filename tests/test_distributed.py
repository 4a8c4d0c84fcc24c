"""DDP: torchrun with two gloo processes on CPU trains and writes exactly one checkpoint."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import free_port


def torchrun_two(config, out, port: int, max_steps: int, timeout: int = 300):
    """`torchrun --nproc_per_node 2 -m tunesmith.cli train CONFIG` on CPU (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(port), "-m", "tunesmith.cli", "train", str(config), "--out", str(out),
                           "--max-steps", str(max_steps), "--device", "cpu", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def why(r) -> str:
    """A failed torchrun's cause: the lines that name an error (a rank's abort is far above the tail), then the tail."""
    lines = [l for l in r.stderr.splitlines() if any(w in l for w in ("rror", "terminate", "what()", "Abort"))]
    return "\n".join(lines[:20]) + "\n...\n" + r.stderr[-1500:]


def test_torchrun_two_processes_gloo(tiny_config, tmp_path):
    out = tmp_path / "ddp"
    r = torchrun_two(tiny_config, out, free_port(), 6)
    assert r.returncode == 0, why(r)
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
    r = torchrun_two(tiny_config, out, free_port(), 40, timeout=240)
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


def _node(tiny_config, out, port, max_steps, node_rank, log):
    """One 'node' of the docs' multi-node recipe: torchrun with c10d rendezvous on a shared --out. Its output
    goes to the file ``log``, not a pipe: a pipe nobody drains (the other agent's, while the test waits on
    this one) fills after 64 KB and blocks that agent mid-restart."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node",
                                 "1", "--max-restarts", "3", "--node_rank", str(node_rank), "--rdzv_backend", "c10d",
                                 "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "tunesmith-test", "-m",
                                 "tunesmith.cli", "train", str(tiny_config), "--out", str(out), "--max-steps",
                                 str(max_steps), "--device", "cpu", "--quiet", "--resume"],
                                stdout=subprocess.DEVNULL, stderr=f, text=True, env=env, start_new_session=True)


def _two_nodes(tiny_config, out, max_steps, logs):
    port = free_port()  # one rendezvous port for both nodes
    return [_node(tiny_config, out, port, max_steps, r, logs / f"node{r}.log") for r in (0, 1)]


def _wait(nodes, logs, timeout):
    """Wait for both agents (killing them after ``timeout`` s); their logs."""
    import time

    end = time.time() + timeout
    for n in nodes:
        try:
            n.wait(timeout=max(1.0, end - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for n in nodes:  # the agent and its workers are one process group: none outlives the test
        try:
            os.killpg(n.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        n.wait()
    return [(logs / f"node{r}.log").read_text() for r in (0, 1)]


def _logged_step(out) -> int:
    """The last training step in metrics.csv (rows: step,epoch,split,name,value)."""
    rows = (out / "metrics.csv").read_text().splitlines()[1:] if (out / "metrics.csv").exists() else []
    return max((int(r.split(",")[0]) for r in rows if r.count(",") >= 4), default=0)


def _wait_for_step(nodes, out, logs, step):
    import time

    t = time.time()
    while _logged_step(out) < step:  # a step count, not a line count: several rows a step, however loaded
        if time.time() - t > 180 or any(n.poll() is not None for n in nodes):
            pytest.fail(f"the job did not reach step {step}:\n" + _why(_wait(nodes, logs, 30)))
        time.sleep(0.1)


def _why(errs: list[str]) -> str:
    """What a failed torchrun agent said: the lines that name the failure (a worker's own error, gloo's abort
    message), then each agent's tail."""
    keys = ("terminate called", "what()", "Error", "error:", "Abort", "exitcode")
    lines = [ln for e in errs for ln in e.splitlines() if any(k in ln for k in keys)]
    return "\n".join(lines[-40:]) + "\n---\n" + "\n---\n".join(e[-1200:] for e in errs)


def test_two_node_recipe_preempted_by_sigterm_then_resumed(tiny_config, tmp_path):
    """docs/training.md's multi-node recipe on one machine: two torchrun agents meet through c10d
    rendezvous; a scheduler's SIGTERM to both makes the job write one checkpoint at a step boundary; the
    same command (it always passes --resume) then finishes the run."""
    tiny_config.write_text(tiny_config.read_text().replace("log_every = 5", "log_every = 1"))
    out = tmp_path / "job"
    nodes = _two_nodes(tiny_config, out, 100000, tmp_path)
    _wait_for_step(nodes, out, tmp_path, 3)
    for n in nodes:
        n.send_signal(signal.SIGTERM)
    errs = _wait(nodes, tmp_path, 120)
    assert any("checkpoint saved" in e for e in errs), _why(errs)
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    stopped = meta["step"]
    assert stopped >= 3 and meta["world_size"] == 2
    nodes = _two_nodes(tiny_config, out, stopped + 4, tmp_path)
    errs = _wait(nodes, tmp_path, 180)
    assert all(n.returncode == 0 for n in nodes), _why(errs)
    assert any(f"resuming {out} from step {stopped}" in e for e in errs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == stopped + 4 and summary["rank_checksums"][0] == summary["rank_checksums"][1]


@pytest.mark.slow
def test_two_node_recipe_restarts_a_worker_that_aborts(tiny_config, tmp_path):
    """A worker that dies mid-run (SIGABRT, as gloo aborts on a lost connection) does not end the job: with
    the recipe's --max-restarts, torchrun restarts both nodes' workers, they resume from the last checkpoint
    and the run finishes with ranks that agree. Without --max-restarts the job fails (seen in CI).
    In the slow tier: on a loaded 2-core machine (load 3-5) it failed 2 runs of 4 -- the agent hosting the
    rendezvous store went down too (RendezvousConnectionError on the other), which no restart survives; we
    have not found why that agent exited. Quiet, it passed 2 of 2."""
    text = tiny_config.read_text().replace("log_every = 5", "log_every = 1")
    tiny_config.write_text(text.replace("checkpoint_every = 1000", "checkpoint_every = 10"))
    out = tmp_path / "job"
    nodes = _two_nodes(tiny_config, out, 400, tmp_path)
    _wait_for_step(nodes, out, tmp_path, 15)
    agents = {n.pid for n in nodes}
    workers = [int(p) for p in subprocess.run(["pgrep", "-f", f"tunesmith.cli train {tiny_config}"],
                                              capture_output=True, text=True).stdout.split()
               if int(p) not in agents and "torch.distributed.run" not in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGABRT)
    errs = _wait(nodes, tmp_path, 240)
    assert all(n.returncode == 0 for n in nodes), _why(errs)
    assert any("exitcode: -6" in e for e in errs) and any("resuming" in e for e in errs), _why(errs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 400 and summary["rank_checksums"][0] == summary["rank_checksums"][1]
