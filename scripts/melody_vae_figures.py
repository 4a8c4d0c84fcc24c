"""Figures for docs/autoencoders.md from a trained melody VAE: reconstructions of held-out phrases and
slider sweeps (attribute and latent sliders) as piano rolls, plus the measured Spearman correlations.

    python scripts/melody_vae_figures.py RUN_OR_ZOO [--out docs/autoencoders]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith.files import pyplot, save_figure  # noqa: E402
from tunesmith.models.melody_vae import ATTRIBUTE_LABELS, ATTRIBUTES, spearman  # noqa: E402
from tunesmith.sampling.reconstruct import plot_reconstructions, reconstruct  # noqa: E402
from tunesmith.training import load_run  # noqa: E402

VALUES = np.array([-3.0, -1.5, 0.0, 1.5, 3.0])


def roll_row(ax, codec, phrases, title):
    L = codec.seq_len
    pitches = []
    for k, ids in enumerate(phrases):
        sc = codec.decode(ids)
        for p, s, d in zip(sc.pitch, sc.start, sc.duration):
            ax.add_patch(pyplot().Rectangle((k * L + s * 4, p - 0.4), d * 4, 0.8, color="#d2691e"))
            pitches.append(p)
        ax.axvline(k * L, color="#333", lw=1)
    lo, hi = (min(pitches), max(pitches)) if pitches else (55, 75)
    ax.set_xlim(0, L * len(phrases)); ax.set_ylim(lo - 2, hi + 2)
    ax.set_xticks([k * L + L / 2 for k in range(len(phrases))])
    ax.set_xticklabels([f"{v:+g}" for v in VALUES][:len(phrases)])
    ax.set_title(title, fontsize=9, loc="left")


def sweeps(model, codec, out: Path) -> dict:
    plt = pyplot()
    rows = list(ATTRIBUTES) + ["latent slider 1", "latent slider 2"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 1.45 * len(rows) + 0.5), dpi=100)
    rho = {}
    fine = np.linspace(-3, 3, 13)
    for ax, name in zip(axes, rows):
        if name in ATTRIBUTES:
            j = ATTRIBUTES.index(name)
            z = model.move_attribute(model.slider_z(None), j, VALUES)
            zf = model.move_attribute(model.slider_z(None), j, fine)
            a = model.attributes(codec, model.decode(zf).numpy())[:, j]
            rho[name] = round(spearman(fine, a), 3)
            title = f"{ATTRIBUTE_LABELS[name]}: slider -3, -1.5, 0, +1.5, +3 (Spearman over 13 steps: {rho[name]:.2f})"
        else:
            i = int(name[-1]) - 1
            vals = np.zeros((len(VALUES), model.n_sliders))
            vals[:, i] = VALUES
            z = torch.cat([model.slider_z(v) for v in vals])
            title = f"{name} (the latent dimension with the {'largest' if i == 0 else 'second largest'} spread): -3 .. +3"
        roll_row(ax, codec, model.decode(z).numpy(), title)
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return rho


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--out", default="docs/autoencoders")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model, codec, cfg, _ = load_run(a.run)
    torch.set_num_threads(1)
    from tunesmith.data.timestep import prepared_songs

    _, val = prepared_songs(cfg.data.get("dataset", "essen-erk"), verbose=False)
    x, y, _, _ = reconstruct(model, codec, val[:6], beam=int(cfg.sample.get("beam", 1) or 1))
    tag = f"melody_vae_{codec.bars}bar"
    plot_reconstructions(codec, x[:6], y[:6], out / f"{tag}_reconstructions.png",
                         title="held-out phrases (grey) and their reconstructions (orange outline)")
    rho = sweeps(model, codec, out / f"{tag}_sweeps.png")
    print(json.dumps({"figures": [str(out / f"{tag}_reconstructions.png"), str(out / f"{tag}_sweeps.png")],
                      "spearman": rho}, indent=1))


if __name__ == "__main__":
    main()
