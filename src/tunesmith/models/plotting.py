"""Piano-roll pictures of generated pieces (used by the GANs' ``on_checkpoint`` and by the docs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import pyplot, save_figure

TRACK_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def save_roll_grid(scores, path: str | Path, cols: int = 4, titles: list[str] | None = None,
                   title: str = "") -> Path:
    """A grid of piano rolls, one panel per :class:`~tunesmith.data.Score` (pitch over beats, one colour
    per track). Written atomically as PNG."""
    from matplotlib.collections import PolyCollection

    plt = pyplot()

    scores = list(scores)
    n = max(1, len(scores))
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(scores):
            ax.axis("off")
            continue
        sc = scores[i]
        if len(sc):
            polys, colours = [], []
            for p, s, d, t in zip(sc.pitch, sc.start, sc.duration, sc.track):
                polys.append([(s, p - 0.45), (s + d, p - 0.45), (s + d, p + 0.45), (s, p + 0.45)])
                colours.append(TRACK_COLOURS[int(t) % len(TRACK_COLOURS)])
            ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="none"))
            lo, hi = int(sc.pitch.min()), int(sc.pitch.max())
            ax.set_ylim(lo - 2, hi + 2)
            ax.set_xlim(0, max(sc.length, 1e-3))
            bar = sc.beats_per_bar
            for b in np.arange(0, sc.length + 1e-9, bar):
                ax.axvline(b, color="#cccccc", lw=0.5, zorder=0)
        else:
            ax.text(0.5, 0.5, "(empty)", ha="center", va="center", transform=ax.transAxes)
        ax.tick_params(labelsize=6)
        if titles and i < len(titles):
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_gan_curves(run_dir: str | Path, path: str | Path | None = None, title: str = "") -> Path:
    """A compact 2x2 picture of a GAN run from its metrics.csv: critic and generator adversarial losses,
    the Wasserstein estimate (or discriminator accuracy for BCE), gradient norms, and the mode-collapse
    indicator (distinct fraction, mean pairwise distance)."""
    import csv

    plt = pyplot()

    run_dir = Path(run_dir)
    series: dict[str, dict[int, float]] = {}
    with open(run_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row["split"] == "train":
                try:
                    series.setdefault(row["metric"], {})[int(row["step"])] = float(row["value"])
                except ValueError:
                    pass

    def plot(ax, names, ylabel, log=False):
        for n in names:
            if n in series:
                xs, ys = zip(*sorted(series[n].items()))
                ax.plot(xs, ys, label=n)
        ax.set_ylabel(ylabel, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)

    fig, axes = plt.subplots(2, 2, figsize=(9, 5.5))
    plot(axes[0, 0], ["d_adv", "g_adv"], "adversarial loss")
    plot(axes[0, 1], ["d_wasserstein", "d_gp"] if "d_wasserstein" in series else ["d_acc"],
         "Wasserstein estimate / GP" if "d_wasserstein" in series else "D accuracy")
    plot(axes[1, 0], ["d_grad_norm", "g_grad_norm"], "gradient norm", log=True)
    plot(axes[1, 1], ["g_distinct", "g_pairwise"], "diversity (generator batch)")
    for ax in axes[1]:
        ax.set_xlabel("step", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(path) if path else run_dir / "gan_curves.png")
