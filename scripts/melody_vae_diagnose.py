"""Where a melody VAE's reconstruction errors come from (docs/autoencoders.md, "Why the reconstruction goals
are missed"): on the held-out phrases of ``essen-erk:val``, from the posterior means,

* onset F1 / token accuracy of free-running argmax decoding (what ``--reconstruct`` measures with beam 1),
* the same with beam search (``--beam``, default 8),
* teacher-forced: the decoder's argmax at each step given the true previous symbols (no exposure bias),
* the teacher-forced reconstruction loss, the KL and the mean posterior standard deviation.

    OMP_NUM_THREADS=1 python scripts/melody_vae_diagnose.py RUN_OR_ZOO [--beam 8]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith.data.timestep import prepared_songs  # noqa: E402
from tunesmith.sampling.reconstruct import onset_f1_counts  # noqa: E402
from tunesmith.training.checkpoint import load_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--beam", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, codec, cfg, _ = load_run(a.run, "cpu")
    model.eval()
    _, val = prepared_songs(cfg.data.get("dataset", "essen-erk"), verbose=False)
    x = torch.tensor([r for sc in val for r in codec.phrases(sc)])
    pt, xs = codec.pitch_table(), x.numpy()

    def f1(y):
        m, na, nb = onset_f1_counts(xs, np.asarray(y), pt)
        return round(2 * m / max(na + nb, 1), 4)

    with torch.no_grad():
        mu, logvar = model.encode(x)
        free = model.decode_ids(mu).numpy()
        beam = model.decode_beam(mu, a.beam).numpy()
        logits = model.decode_logits(mu, x).float()
        tf = logits.argmax(-1).numpy()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1), reduction="sum") / len(x)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    out = {"run": a.run, "n_phrases": len(x),
           "free_argmax": {"onset_f1": f1(free), "token_accuracy": round(float((free == xs).mean()), 4)},
           f"beam_{a.beam}": {"onset_f1": f1(beam), "token_accuracy": round(float((beam == xs).mean()), 4)},
           "teacher_forced": {"onset_f1": f1(tf), "token_accuracy": round(float((tf == xs).mean()), 4),
                              "reconstruction_nats_per_phrase": round(float(nll), 2)},
           "kl_nats_per_phrase": round(float(kl), 2), "free_bits": getattr(model, "free_bits", None),
           "posterior_sigma_mean": round(float((0.5 * logvar).exp().mean()), 4)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
