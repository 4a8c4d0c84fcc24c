"""metrics.csv (one row per step, split and metric: easy to append on resume) plus TensorBoard events."""
from __future__ import annotations

import csv
import math
from pathlib import Path


class MetricsLogger:
    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.csv"
        self.tb = None
        if not enabled:
            return
        # a run killed before its first row left an empty file: it still needs the header
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.f = open(self.path, "a", newline="")
        self.w = csv.writer(self.f)
        if new:
            self.w.writerow(["step", "epoch", "split", "metric", "value"])
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except Exception:  # tensorboard not installed: CSV only
                self.tb = None

    def log(self, step: int, epoch: int, split: str, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        for k, v in metrics.items():
            self.w.writerow([step, epoch, split, k, f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v])
            if self.tb is not None:
                self.tb.add_scalar(f"{split}/{k}", v, step)
        self.f.flush()

    def close(self) -> None:
        if self.enabled:
            self.f.close()
            if self.tb is not None:
                self.tb.close()


def read_metrics(run_dir: Path) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """{(split, metric): [(step, value), ...]} from metrics.csv, later rows for a step win (resume)."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    with open(Path(run_dir) / "metrics.csv") as f:
        for row in csv.DictReader(f):
            try:
                out.setdefault((row["split"], row["metric"]), {})[int(row["step"])] = float(row["value"])
            except (ValueError, TypeError, KeyError):   # a torn last line or a file without its header
                continue
    return {k: sorted(v.items()) for k, v in out.items()}


def plot_losses(run_dir: Path) -> Path | None:
    """losses.png: every train/val metric over steps."""
    from ..files import pyplot, save_figure

    plt = pyplot()
    series = read_metrics(run_dir)
    if not series:
        return None
    names = sorted({m for _, m in series})
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        for split in sorted({sp for sp, m in series if m == name}):
            xs, ys = zip(*series[(split, name)])
            if split == "baseline":  # one number for the whole run: a reference line
                ax.axhline(ys[-1], ls="--", color="0.4", lw=1, label="n-gram baseline (val)")
            else:
                ax.plot(xs, ys, label=split, marker="o" if split == "val" else None, ms=3)
        ax.set_ylabel(name)
        ax.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    return save_figure(fig, Path(run_dir) / "losses.png", dpi=90)
