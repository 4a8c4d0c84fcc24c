"""Many melody-VAE trainings at once on one GPU, for a fixed wall time, then the card's figures of each
(docs/autoencoders.md, "More free bits, lower beta ... GPU sweep").

    python scripts/melody_vae_gpu_sweep.py BASE_CONFIG TRAIN_S END_S OUT NAME:key=value,key=value ...
    e.g. python scripts/melody_vae_gpu_sweep.py configs/melody_vae_4bar_ar_lrdecay.toml 430 530 $OUT \\
             v00_base: v04_fb256:free_bits=256.0 v07_b002:beta=0.02 v09_fb192_acd02:free_bits=192.0,attr_code_dropout=0.2

Each NAME gets a copy of BASE_CONFIG with the ``key = value`` lines replaced (keys are matched as line starts in
the TOML, so each must occur once) and its own ``tunesmith train ... --device cuda`` process (CPU when CUDA is
absent), all started together with OMP_NUM_THREADS=1. After TRAIN_S seconds the trainers still running get
SIGTERM (they write a checkpoint); then ``tunesmith.zoo.measure.measure`` (onset F1 with beam 8, mean overlap of
200 prior samples, attribute-slider Spearman) runs on every last checkpoint, 15 at a time, until END_S. Writes
OUT/results.jsonl (one line per run: the figures, the run, its step) and OUT/runs.tgz (each run's metrics.csv,
summary.json, sliders.json and log). The runs share the GPU (and 1 CPU core each), so a run's steps per second
depend on how many run beside it; compare runs of one sweep at equal steps.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURE = ("import sys, json; from tunesmith.zoo.measure import measure; "
           "print(json.dumps(measure(sys.argv[1])))")


def variant_config(base: str, name: str, changes: dict) -> str:
    text = re.sub(r'(?m)^name = "[^"]*"', f'name = "{name}"', base, count=1)
    for k, v in changes.items():
        text, n = re.subn(rf"(?m)^{re.escape(k)} = [^\s#]+", f"{k} = {v}", text)
        if n != 1:
            raise SystemExit(f"error: {k!r} occurs {n} times as a line start in the base config (must be once)")
    return text


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    base, train_s, end_s, out = Path(argv[0]).read_text(), float(argv[1]), float(argv[2]), Path(argv[3])
    out.mkdir(parents=True, exist_ok=True)
    work = out.parent / (out.name + "_work")
    work.mkdir(exist_ok=True)
    variants = {}
    for spec in argv[4:]:
        name, _, kv = spec.partition(":")
        variants[name] = dict(p.split("=", 1) for p in kv.split(",") if p)
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.time()
    procs = {}
    for name, ch in variants.items():
        cfg = work / f"{name}.toml"
        cfg.write_text(variant_config(base, name, ch))
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tunesmith.cli", "train", str(cfg), "--out", str(work / name), "--device", device,
             "--quiet"], env=env, stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    while time.time() - t0 < train_s and any(p.poll() is None for p in procs.values()):
        time.sleep(3)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()

    def step(name):
        try:
            return json.loads((work / name / "checkpoint" / "meta.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            return -1

    jobs = [n for n in variants if step(n) > 0]
    running = []
    with open(out / "results.jsonl", "w") as res:
        while (jobs or running) and time.time() - t0 < end_s:
            while jobs and len(running) < 15:
                n = jobs.pop(0)
                running.append((n, subprocess.Popen([sys.executable, "-c", MEASURE, str(work / n)], env=env,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            for item in list(running):
                n, p = item
                if p.poll() is None:
                    continue
                running.remove(item)
                o, e = p.communicate()
                try:
                    r = json.loads(o.strip().splitlines()[-1])
                except (IndexError, ValueError):
                    r = {"error": e[-300:]}
                r.update(run=n, step=step(n), device=device, changes=variants[n])
                print(json.dumps(r), file=res, flush=True)
            time.sleep(0.5)
    with tarfile.open(out / "runs.tgz", "w:gz") as t:
        for n in variants:
            for f in ("metrics.csv", "summary.json", "sliders.json"):
                if (work / n / f).exists():
                    t.add(work / n / f, arcname=f"{n}/{f}")
            t.add(work / f"{n}.log", arcname=f"{n}/train.log")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
