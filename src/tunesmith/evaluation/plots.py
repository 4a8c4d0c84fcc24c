"""PNG plots for the evaluation report (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..files import pyplot, save_figure

GEN_COLOR, REF_COLOR, INTER_COLOR = "#d95f02", "#1b9e77", "#7570b3"
PITCH_CLASS_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def _plt():
    return pyplot()


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=90, bbox_inches="tight")


def transition_heatmaps(gen: np.ndarray, ref: np.ndarray, labels: list[str], title: str, path: Path,
                        axis_name: str) -> Path:
    """Generated and reference transition matrices side by side, on the same colour scale, plus their
    difference. Rows: the earlier note; columns: the next note; each matrix sums to 1."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.8))
    fig.subplots_adjust(wspace=0.5)
    vmax = max(float(gen.max()), float(ref.max()), 1e-9)
    diff = gen - ref
    dmax = max(float(np.abs(diff).max()), 1e-9)
    for ax, m, name, kw in ((axes[0], gen, "generated", dict(cmap="viridis", vmin=0, vmax=vmax)),
                            (axes[1], ref, "reference", dict(cmap="viridis", vmin=0, vmax=vmax)),
                            (axes[2], diff, "generated - reference", dict(cmap="RdBu_r", vmin=-dmax, vmax=dmax))):
        im = ax.imshow(m, origin="upper", **kw)
        ax.set_title(name)
        ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 8 else 0, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel(f"next {axis_name}")
        ax.set_ylabel(f"previous {axis_name}")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    return _save(fig, path)


def kde_grid(comparisons: dict, descriptions: dict[str, str], path: Path) -> Path:
    """One panel per feature: the densities of intra-set distances of each set and of the inter-set
    distances, with the overlap area (reference intra vs inter) in the title."""
    plt = _plt()
    names = list(comparisons)
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        c = comparisons[name]
        ax.plot(c.grid, c.pdf["intra_ref"], color=REF_COLOR, label="intra reference")
        ax.plot(c.grid, c.pdf["intra_gen"], color=GEN_COLOR, label="intra generated")
        ax.plot(c.grid, c.pdf["inter"], color=INTER_COLOR, ls="--", label="inter (gen vs ref)")
        oa = c.stats["overlap_ref_intra_vs_inter"]
        kl = c.stats["kl_ref_intra_vs_inter"]
        ax.set_title(f"{name}\noverlap {oa:.2f}   KL {kl:.2f}", fontsize=9)
        ax.set_xlabel("distance", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def histogram_pair(gen: np.ndarray, ref: np.ndarray, labels: list[str] | None, title: str, xlabel: str,
                   path: Path, x: np.ndarray | None = None) -> Path:
    """Two normalised histograms, generated and reference, as side-by-side bars."""
    plt = _plt()
    gen = gen / gen.sum() if gen.sum() > 0 else gen
    ref = ref / ref.sum() if ref.sum() > 0 else ref
    x = np.arange(len(gen)) if x is None else x
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(gen)), 3.4))
    w = 0.4 * (x[1] - x[0] if len(x) > 1 else 1)
    ax.bar(x - w / 2, gen, w, color=GEN_COLOR, label="generated")
    ax.bar(x + w / 2, ref, w, color=REF_COLOR, label="reference")
    if labels is not None:
        ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of notes")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def feature_boxes(gen: dict[str, np.ndarray], ref: dict[str, np.ndarray], names: list[str], path: Path) -> Path:
    """Per-piece values of each scalar feature, generated vs reference, as box plots."""
    plt = _plt()
    cols = 5
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        g, r = gen[name], ref[name]
        data = [g[np.isfinite(g)], r[np.isfinite(r)]]
        if all(len(d) for d in data):
            bp = ax.boxplot(data, tick_labels=["gen", "ref"], showfliers=False, patch_artist=True, widths=0.6)
            for patch, col in zip(bp["boxes"], (GEN_COLOR, REF_COLOR)):
                patch.set_facecolor(col)
                patch.set_alpha(0.6)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
