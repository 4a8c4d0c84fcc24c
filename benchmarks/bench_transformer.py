"""Sampling speed of the relative-attention Transformer (configs/essen_transformer.toml): a key/value cache
(one query per layer and new symbol) against re-running the whole context (up to ``max_len`` symbols) for
every new symbol, as a model without a cache must. Goal: >= 10x. Both are measured in the same run.

Usage: python benchmarks/bench_transformer.py [--run RUN_OR_ZOO] [--num 16] [--steps 512] [--device cpu|cuda]
Without --run the config's model is built untrained (its end-of-song symbol masked so every row runs the
full length). Prints a table and writes benchmarks/results/transformer_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "essen_transformer.toml"


def build(run: str | None, device: str):
    if run:
        from tunesmith.training import load_run

        model, codec, _, _ = load_run(run, device)
        return model, codec
    from tunesmith.config import load_config
    from tunesmith.data.timestep import TimeStepCodec
    from tunesmith.models import build_model

    cfg = load_config(CONFIG)
    vocab = ["/", "_", "r"] + [str(p) for p in range(55, 91)]  # the Erk range, so no corpus parse is needed
    codec = TimeStepCodec(vocab, cfg.data["step"], cfg.data["seq_len"])
    torch.manual_seed(0)
    model = build_model("melody_transformer", codec.model_info(),
                        **{k: v for k, v in cfg.model.items() if k != "name"}).to(device).eval()
    return model, codec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a trained run or zoo:NAME (default: the config, untrained)")
    ap.add_argument("--num", type=int, default=16)
    ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    model, codec = build(a.run, a.device)
    with torch.no_grad():
        model.head.bias[codec.index["/"]] = -1e9  # never stop early: both ways generate the full length
    res = {}
    for name, fn in (("kv_cache", model.sample_ids), ("rerun_context", model.sample_ids_window)):
        fn(codec, a.num, steps=8, generator=torch.Generator(a.device).manual_seed(0))  # warm-up
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        ids = fn(codec, a.num, temperature=1.0, steps=a.steps, generator=torch.Generator(a.device).manual_seed(0))
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        res[name] = {"seconds": time.perf_counter() - t, "symbols": sum(len(r) for r in ids)}
    # greedy decoding inside one context window is the same either way (the cache is exact there)
    n_exact = min(a.steps, model.max_len - model.prime_delimiters)
    g1 = model.sample_ids(codec, 4, top_k=1, steps=n_exact)
    g2 = model.sample_ids_window(codec, 4, top_k=1, steps=n_exact)
    speedup = res["rerun_context"]["seconds"] / res["kv_cache"]["seconds"]
    report = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "device": a.device,
                    "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if a.device.startswith("cuda") else None},
        "model": {"run": a.run or f"{CONFIG.name} (untrained)", "max_len": model.max_len,
                  "parameters": sum(p.numel() for p in model.parameters())},
        "melodies": a.num, "steps": a.steps, **res, "speedup": speedup,
        "greedy_identical_within_context": g1 == g2,
    }
    print(f"| sampling {a.num} melodies x {a.steps} steps ({a.device}, {torch.get_num_threads()} threads) | seconds |")
    print("|---|---|")
    print(f"| re-run the context (up to {model.max_len} symbols) per symbol | {res['rerun_context']['seconds']:.2f} |")
    print(f"| key/value cache | {res['kv_cache']['seconds']:.2f} |")
    print(f"| speed-up | {speedup:.1f}x (goal >= 10x) |")
    print(f"greedy decoding identical within one context: {g1 == g2}")
    out = Path(a.out) if a.out else ROOT / "benchmarks" / "results" / f"transformer_{a.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
