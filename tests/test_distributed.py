"""DDP: torchrun with two gloo processes on CPU trains and writes exactly one checkpoint."""
import json
import os
import subprocess
import sys

from safetensors.torch import load_file

from conftest import free_port


def torchrun_two(config, out, port: int, max_steps: int, timeout: int = 300):
    """`torchrun --nproc_per_node 2 -m tunesmith.cli train CONFIG` on CPU (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(port), "-m", "tunesmith.cli", "train", str(config), "--out", str(out),
                           "--max-steps", str(max_steps), "--device", "cpu", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_torchrun_two_processes_gloo(tiny_config, tmp_path):
    out = tmp_path / "ddp"
    r = torchrun_two(tiny_config, out, free_port(), 6)
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


def _node(tiny_config, out, port, max_steps, node_rank):
    """One 'node' of the docs' multi-node recipe: torchrun with c10d rendezvous on a shared --out."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                             "--node_rank", str(node_rank), "--rdzv_backend", "c10d", "--rdzv_endpoint",
                             f"127.0.0.1:{port}", "--rdzv_id", "tunesmith-test", "-m", "tunesmith.cli", "train",
                             str(tiny_config), "--out", str(out), "--max-steps", str(max_steps), "--device", "cpu",
                             "--quiet", "--resume"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_node_recipe_preempted_by_sigterm_then_resumed(tiny_config, tmp_path):
    """docs/training.md's multi-node recipe on one machine: two torchrun agents meet through c10d
    rendezvous; a scheduler's SIGTERM to both makes the job write one checkpoint at a step boundary; the
    same command (it always passes --resume) then finishes the run."""
    import signal
    import time

    tiny_config.write_text(tiny_config.read_text().replace("log_every = 5", "log_every = 1"))
    out = tmp_path / "job"
    port = free_port()  # one rendezvous port for both nodes
    nodes = [_node(tiny_config, out, port, 100000, r) for r in (0, 1)]
    t = time.time()
    def logged_step():  # the last training step in metrics.csv (rows: step,epoch,split,name,value)
        rows = (out / "metrics.csv").read_text().splitlines()[1:] if (out / "metrics.csv").exists() else []
        return max((int(r.split(",")[0]) for r in rows if r.count(",") >= 4), default=0)

    while logged_step() < 3:  # a step count, not a line count: several rows a step, however loaded the machine
        assert time.time() - t < 180 and all(n.poll() is None for n in nodes), [n.communicate()[1][-1500:] for n in nodes]
        time.sleep(0.1)
    for n in nodes:
        n.send_signal(signal.SIGTERM)
    errs = [n.communicate(timeout=120)[1] for n in nodes]
    assert any("checkpoint saved" in e for e in errs), errs[0][-1500:]
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    stopped = meta["step"]
    assert stopped >= 3 and meta["world_size"] == 2
    port = free_port()
    nodes = [_node(tiny_config, out, port, stopped + 4, r) for r in (0, 1)]
    errs = [n.communicate(timeout=180)[1] for n in nodes]
    assert all(n.returncode == 0 for n in nodes), errs[0][-1500:] + errs[1][-1500:]
    assert any(f"resuming {out} from step {stopped}" in e for e in errs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == stopped + 4 and summary["rank_checksums"][0] == summary["rank_checksums"][1]
