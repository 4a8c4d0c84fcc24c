"""Foundation benchmarks for the Essen LSTM (seed 000), each a ratio measured in one run:

1. training steps/s: tunesmith's trainer vs a bare PyTorch loop over the same model and batches (goal >= 0.9);
2. sampling 16 melodies x 512 steps: incremental LSTM state vs re-running the 64-step window (goal >= 20x);
3. corpus load: cached vs first parse with music21;
4. peak memory (max RSS) of training the paper config (goal < 2 GiB).

On a GPU (``--device cuda``) it adds what matters there: tokens/s of the paper model at batch 64 and at a large
batch, fp32 and bf16 autocast; sampling with the one-token step captured as a CUDA graph vs eager; and
(``--paper``) the paper config's 50 epochs end to end. The music21 first-parse part is skipped on CUDA
(``--corpus none``; it measures the CPU, not the GPU).

Usage: python benchmarks/bench_lstm.py [--steps 300] [--corpus essen-erk|none] [--device cpu|cuda] [--paper]
Prints a table and writes benchmarks/results/lstm_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "essen_lstm.toml"


def paper_model(device: str):
    """(config, data bundle, device, the paper LSTM on it) -- what every training benchmark starts from."""
    from tunesmith.config import load_config
    from tunesmith.data.base import build_data
    from tunesmith.models import build_model

    cfg = load_config(CONFIG)
    bundle = build_data(**cfg.data)
    dev = torch.device(device)
    torch.manual_seed(0)
    return cfg, bundle, dev, build_model("melody_lstm", bundle.codec.model_info(), hidden=256, dropout=0.2).to(dev)


def bare_steps_per_s(model, batches: list[dict], dev, steps: int, warmup: int, precision: str = "fp32") -> float:
    """A bare PyTorch loop (plain Adam, the model's loss, batches moved to the device each step, optional
    bf16 autocast): steps per second after ``warmup`` steps."""
    import contextlib

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def run(n):
        for i in range(n):
            b = {k: v.to(dev) for k, v in batches[i % len(batches)].items()}
            with torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext():
                loss = model(b)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    run(warmup)
    t = time.perf_counter()
    run(steps)
    return steps / (time.perf_counter() - t)


def bench_training(steps: int, device: str) -> dict:
    from tunesmith.training import train

    # bare loop: same model, same batch size, same data, plain Adam
    cfg, bundle, dev, model = paper_model(device)
    perm = torch.randperm(len(bundle.train))
    bs = cfg.train.batch_size
    batches = [bundle.train.batch(perm[i * bs:(i + 1) * bs]) for i in range(len(perm) // bs)]
    bare_sps = bare_steps_per_s(model, batches, dev, steps, warmup=10)
    with tempfile.TemporaryDirectory() as d:
        s = train(CONFIG, Path(d) / "run", device=device, max_steps=steps, progress=False)
    # the trainer's training steps alone (its validations and checkpoints inside the loop left out, as the bare loop
    # has none); with them, on a GPU, 300 steps of 5 ms weigh three validations: 0.83x on an H200 (docs/training.md)
    return {"bare_steps_per_s": bare_sps, "trainer_steps_per_s": s["train_steps_per_second"],
            "trainer_steps_per_s_with_validation": s["steps_per_second"],
            "ratio": s["train_steps_per_second"] / bare_sps, "tokens_per_step": bs * cfg.data["seq_len"]}


def bench_throughput(device: str, batch: int, precision: str, steps: int) -> dict:
    """Training tokens/s of the paper model (bare loop) at a batch size and precision."""
    cfg, bundle, dev, model = paper_model(device)
    idx = torch.randint(0, len(bundle.train), (batch,))
    b = {k: v.to(dev) for k, v in bundle.train.batch(idx).items()}   # already on the device: pure compute
    sps = bare_steps_per_s(model, [b], dev, steps, warmup=3, precision=precision)
    return {"batch": batch, "precision": precision, "steps": steps,
            "tokens_per_s": batch * cfg.data["seq_len"] * sps, "steps_per_s": sps}


def bench_paper(device: str) -> dict:
    """The paper config's 50 epochs, end to end through the trainer (validation included)."""
    from tunesmith.training import train

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        s = train(CONFIG, Path(d) / "run", device=device, progress=False)
        wall = time.perf_counter() - t
    return {"steps": s["steps"], "loop_s": s["seconds"], "wall_s": wall, "val_loss": s["val"].get("loss")}


def bench_graph_sampling(device: str, n: int = 16, steps: int = 512) -> dict:
    """CUDA only: the chunked sampler eager vs captured as a CUDA graph, and the token loop."""
    from tunesmith.models import build_model

    torch.manual_seed(0)
    model = build_model("melody_lstm", {"vocab_size": 31, "delimiter_id": 0, "target": "all"}, hidden=256,
                        dropout=0.0).to(device).eval()
    x = torch.randint(1, 31, (n, 64), device=device)
    out = {}
    with torch.no_grad():
        logits, (h, c) = model.logits(x)
        h, c = list(h.unbind(0)), list(c.unbind(0))
        step = model._stepper()
        for name, graph in (("eager_chunked", False), ("cuda_graph", True)):
            for rep in range(2):   # first call: warm-up (and capture)
                torch.cuda.synchronize()
                t = time.perf_counter()
                model._sample_chunked(step, logits[:, -1], h, c, n, steps, 1.0, None, None, graph=graph)
                torch.cuda.synchronize()
                out[f"{name}_s"] = time.perf_counter() - t
    return out


def bench_sampling(device: str, n: int = 16, steps: int = 512) -> dict:
    from tunesmith.config import load_config
    from tunesmith.data.base import build_data
    from tunesmith.models import build_model

    cfg = load_config(CONFIG)
    codec = build_data(**cfg.data).codec
    torch.manual_seed(0)
    model = build_model("melody_lstm", codec.model_info(), hidden=256, dropout=0.2).to(device).eval()
    # an untrained model would stop at '/' at random; forbid stopping by masking '/' out of the head bias
    with torch.no_grad():
        model.head.bias[codec.index["/"]] = -1e9
    out = {}
    for name, fn in (("incremental", model.sample_ids), ("window", model.sample_ids_window)):
        fn(codec, 2, primer="60 _", steps=8)
        t = time.perf_counter()
        ids = fn(codec, n, primer="60 _", steps=steps, generator=torch.Generator(device=device).manual_seed(0))
        out[f"{name}_s"] = time.perf_counter() - t
        assert all(len(r) == steps + 2 for r in ids)  # primer (2) + steps
    out["speedup"] = out["window_s"] / out["incremental_s"]
    return out


def bench_corpus(corpus: str) -> dict:
    code = ("import time,sys; from tunesmith.data.corpora import load_corpus; t=time.perf_counter(); "
            f"s=load_corpus('{corpus}'); print(len(s), time.perf_counter()-t)")
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "TUNESMITH_CACHE": d}
        first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    n, t1 = first.stdout.split()
    _, t2 = second.stdout.split()
    return {"corpus": corpus, "pieces": int(n), "first_parse_s": float(t1), "cached_s": float(t2),
            "speedup": float(t1) / float(t2)}


def bench_memory(steps: int, device: str) -> dict:
    code = (f"from tunesmith.training import train; import tempfile, resource; d=tempfile.mkdtemp(); "
            f"train(r'{CONFIG}', d + '/run', device='{device}', max_steps={steps}, progress=False); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kib = int(r.stdout.strip().splitlines()[-1])
    return {"peak_rss_mib": kib / 1024, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--corpus", default=None, help="corpus for the first-parse benchmark; none skips it "
                    "(default: essen-erk on CPU, none on CUDA)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--paper", action="store_true", help="also time the paper config's 50 epochs")
    ap.add_argument("--large-batch", type=int, default=None, help="large batch for tokens/s (default 4096 on "
                    "CUDA, 512 on CPU)")
    a = ap.parse_args()
    cuda = a.device.startswith("cuda")
    corpus = a.corpus or ("none" if cuda else "essen-erk")
    res = {"machine": {"python": platform.python_version(), "torch": torch.__version__, "device": a.device,
                       "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                       "gpu": torch.cuda.get_device_name() if cuda else None}}
    res["training"] = bench_training(a.steps, a.device)
    res["sampling"] = bench_sampling(a.device)
    big = a.large_batch or (4096 if cuda else 512)
    tsteps = 100 if cuda else 10
    res["throughput"] = [bench_throughput(a.device, b, p, tsteps) for b in (64, big) for p in ("fp32", "bf16")]
    if cuda:
        res["graph_sampling"] = bench_graph_sampling(a.device)
    if corpus != "none":
        res["corpus"] = bench_corpus(corpus)
    if not cuda:
        res["memory"] = bench_memory(min(a.steps, 200), a.device)
    if a.paper:
        res["paper"] = bench_paper(a.device)
    t, s = res["training"], res["sampling"]
    rows = [
        ("training steps/s (batch 64 x 64)", f"bare loop {t['bare_steps_per_s']:.1f}", f"trainer {t['trainer_steps_per_s']:.1f}",
         f"{t['ratio']:.2f}x", ">= 0.9"),
        ("sampling 16 x 512 steps", f"window {s['window_s']:.2f} s", f"incremental {s['incremental_s']:.2f} s",
         f"{s['speedup']:.1f}x", ">= 10" if cuda else ">= 20"),
    ]
    for th in res["throughput"]:
        rows.append((f"tokens/s, batch {th['batch']}, {th['precision']}", "", f"{th['tokens_per_s'] / 1e3:,.0f} k/s",
                     "", ""))
    if "graph_sampling" in res:
        g = res["graph_sampling"]
        rows.append(("sampling 16 x 512: CUDA graph", f"eager {g['eager_chunked_s']:.3f} s",
                     f"graph {g['cuda_graph_s']:.3f} s", f"{g['eager_chunked_s'] / g['cuda_graph_s']:.1f}x", ""))
    if "corpus" in res:
        c = res["corpus"]
        rows.append((f"corpus load ({c['corpus']}, {c['pieces']} pieces)", f"first parse {c['first_parse_s']:.1f} s",
                     f"cached {c['cached_s']:.2f} s", f"{c['speedup']:.0f}x", "~1 s cached"))
    if "memory" in res:
        rows.append(("peak memory, paper config", "", f"{res['memory']['peak_rss_mib']:.0f} MiB", "", "< 2048 MiB"))
    if "paper" in res:
        pp = res["paper"]
        rows.append((f"paper config, {pp['steps']} steps (50 epochs)", "", f"{pp['wall_s']:.1f} s wall",
                     f"val {pp['val_loss']:.3f}", "< 15 s (GPU)" if cuda else ""))
    print(f"device: {a.device} ({res['machine']['cpu_count']} CPUs, torch {torch.__version__}"
          f"{', ' + res['machine']['gpu'] if cuda else ''})")
    print(f"| {'benchmark':<40} | {'baseline':<22} | {'tunesmith':<22} | {'ratio':>7} | {'goal':<11} |")
    print(f"|{'-' * 42}|{'-' * 24}|{'-' * 24}|{'-' * 9}|{'-' * 13}|")
    for r in rows:
        print(f"| {r[0]:<40} | {r[1]:<22} | {r[2]:<22} | {r[3]:>7} | {r[4]:<11} |")
    out = ROOT / "benchmarks" / "results" / f"lstm_{'cuda' if cuda else a.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
