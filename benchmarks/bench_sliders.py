"""Slider move -> new piano roll, on CPU, for the seed config (16 x 96 x 35 rolls, latent 100, 20 sliders,
seed-size layers). Compares the app's path with obvious alternatives and writes benchmarks/results/sliders.json.

* ``app``: sliders -> z (one small matmul) -> decoder (float32, inference mode) -> vectorised run extraction
  -> notes JSON: what ``POST /api/generate`` does for a VAE;
* ``float64``: the same in double precision;
* ``full path``: what a first version would do: ``model.generate`` + write a MIDI file + read it back and
  build the notes from the file, with a Python loop over the roll cells to find the notes;
* ``http``: the app's path measured end to end through the FastAPI app (TestClient, no network).

Usage: ``python benchmarks/bench_sliders.py [--run RUN_DIR] [--repeats 30]`` (without --run, an untrained
model with the seed config's sizes: the timings do not depend on the weights).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tunesmith.data.midi import read_midi, write_midi  # noqa: E402
from tunesmith.data.pianoroll import PianoRollCodec  # noqa: E402
from tunesmith.models import build_model  # noqa: E402
from tunesmith.serve.app import score_to_json  # noqa: E402


def seed_model():
    codec = PianoRollCodec(low=48, pitches=35, bars=16, steps_per_bar=96)
    model = build_model("vae", codec.model_info(), latent_dim=100, hidden=1600, bar_hidden=2000, bar_code=200,
                        n_sliders=20, output="sigmoid").eval()
    with torch.no_grad():  # a realistic output: 8 eighth notes per bar (128 notes), whatever the slider values
        bias = torch.full((96, 35), -8.0)
        for t in range(96):
            bias[t, (t // 12) * 4 % 35] = 8.0
        model.dec_bar[-1].bias.copy_(bias.reshape(-1))
    return model, codec


def timeit(fn, repeats: int) -> dict:
    fn()  # warm up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(ts), 2), "p90_ms": round(float(np.percentile(ts, 90)), 2),
            "min_ms": round(min(ts), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=None, help="a trained VAE run directory (default: seed-size untrained model)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sliders.json"))
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.run:
        from tunesmith.training.checkpoint import load_run

        model, codec, _, _ = load_run(a.run)
    else:
        model, codec = seed_model()
    rng = np.random.default_rng(0)
    sliders = [rng.uniform(-3, 3, model.n_sliders).tolist() for _ in range(64)]
    it = iter(range(10**9))

    def next_sliders():
        return sliders[next(it) % len(sliders)]

    def app_path():
        with torch.inference_mode():
            roll = model.decode(model.slider_z(next_sliders()))[0].numpy()
        return score_to_json(codec.decode(roll, tempo=120.0), 120.0)

    model64 = None

    def float64_path():
        nonlocal model64
        if model64 is None:
            import copy

            model64 = copy.deepcopy(model).double()
        with torch.inference_mode():
            z = model64.slider_z(next_sliders()).double()
            roll = model64.decode(z)[0].numpy()
        return score_to_json(codec.decode(roll, tempo=120.0), 120.0)

    tmp = Path(tempfile.mkdtemp(prefix="bench-sliders-"))

    def full_path():
        with torch.no_grad():
            z = model.slider_z(next_sliders())
            probs = torch.sigmoid(model.decode_logits(z)) if model.output == "sigmoid" else model.decode(z)
        roll = probs[0].numpy()
        notes = []  # a Python loop over the cells, as a first version would
        T, P = roll.shape
        for p in range(P):
            start = None
            for t in range(T + 1):
                on = t < T and roll[t, p] > 0.5
                if on and start is None:
                    start = t
                elif not on and start is not None:
                    notes.append((p + codec.low, start / codec.steps_per_beat, (t - start + 1) / codec.steps_per_beat))
                    start = None
        from tunesmith.data.notes import Score

        path = write_midi(Score.from_notes(notes, tempo=120.0), tmp / "piece.mid")
        sc = read_midi(path)
        return [{"p": int(p), "s": float(s), "d": float(d)} for p, s, d in sc.notes()]

    from starlette.testclient import TestClient

    from tunesmith.serve.app import Entry, _kind, create_app

    kind, opts = _kind(model)
    opts.update({"family": "vae", "labels": [], "tempo": 120.0, "beats": codec.beats, "output": model.output,
                 "threshold": 0.5})
    client = TestClient(create_app(entries={"vae": Entry("vae", "-", model, codec, None, {}, kind, opts)}))

    def http_path():
        r = client.post("/api/generate", json={"model": "vae", "sliders": next_sliders()})
        assert r.status_code == 200, r.text
        return r.json()

    n_notes = len(app_path()["notes"])
    rows = {}
    for name, fn in (("app (float32, vectorised)", app_path), ("float64", float64_path),
                     ("full path (generate + MIDI file + Python loop)", full_path), ("app through HTTP API", http_path)):
        rows[name] = timeit(fn, a.repeats)
    base = rows["app (float32, vectorised)"]["median_ms"]
    for r in rows.values():
        r["x_slower_than_app"] = round(r["median_ms"] / base, 2)
    print(f"slider move -> new piano roll ({'run ' + a.run if a.run else 'seed config, untrained'}; "
          f"16 x 96 x 35 roll, latent 100, {model.n_sliders} sliders; ~{n_notes} notes; "
          f"{torch.get_num_threads()} torch threads; median of {a.repeats})")
    print(f"{'path':<50} {'median ms':>10} {'p90 ms':>8} {'vs app':>7}")
    for k, r in rows.items():
        print(f"{k:<50} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} {r['x_slower_than_app']:>6.2f}x")
    ok = rows["app through HTTP API"]["median_ms"] < 100
    print(f"target: under 100 ms from slider move to new roll: {'met' if ok else 'NOT met'}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "sliders", "run": a.run, "notes": n_notes, "repeats": a.repeats,
                               "threads": torch.get_num_threads(), "torch": torch.__version__,
                               "machine": platform.processor() or platform.machine(), "rows": rows,
                               "target_100ms_met": ok}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
