"""A run's reports: the metrics of each epoch (metrics.csv) and the learning curve (PNG)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..plot.figure import new_figure as _new_figure
from ...util.files import atomic_open, write_atomic


@dataclass
class EpochMetrics:
    """One epoch's row of metrics.csv. Training loss and accuracy are means over the
    epoch's batches as they were trained; accuracies are fractions, at the last step
    unless per step (`test_acc_steps[t]`, from the first frame; None while the readout is silent)."""

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    test_acc_steps: list[float | None]
    seconds: float
    activity_loss: float = 0.0  # the mean weighted activity penalty (--activity-loss), apart from train_loss
    images_per_s: float = 0.0  # training images per second (data loading included), all processes together
    steps: int = 0  # optimiser steps (fewer than the batches of an epoch when --max-steps ends it)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _write_csv(path: Path, rows: list[EpochMetrics], steps: int) -> None:
    """metrics.csv: one row per epoch, then the held-out accuracy at every step."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "train_acc", "activity_loss", "test_loss", "test_acc", "seconds",
                     "images_per_s"] +
                    [f"test_acc_step_{t}" for t in range(steps)])
    for r in rows:
        writer.writerow([r.epoch, f"{r.train_loss:.6g}", f"{r.train_acc:.6g}", f"{r.activity_loss:.6g}",
                         f"{r.test_loss:.6g}",
                         f"{r.test_acc:.6g}", f"{r.seconds:.3f}", f"{r.images_per_s:.1f}"] +
                        ["" if a is None else f"{a:.6g}" for a in r.test_acc_steps])
    write_atomic(path, buf.getvalue(), overwrite=True)


def plot_learning_curve(rows: list[EpochMetrics], path: Path, dt: float, best_epoch: int | None,
                        title: str | None = None) -> Path:
    """A PNG: loss and accuracy (last step) vs epoch, training and held-out, and the
    held-out accuracy at every step of the latest and the best epoch."""
    epochs = [r.epoch for r in rows]
    fig = _new_figure(12.5, 3.8, dpi=110)
    axes = fig.subplots(1, 3)
    top = 0.9 - (0.07 * (1 + title.count("\n")) if title else 0)
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.15, top=top, wspace=0.28)
    train_c, test_c = "#1f5fd6", "#d62728"
    ax = axes[0]
    ax.plot(epochs, [r.train_loss for r in rows], "o-", color=train_c, ms=3, label="training")
    ax.plot(epochs, [r.test_loss for r in rows], "o-", color=test_c, ms=3, label="held-out")
    ax.set(xlabel="epoch", ylabel="cross-entropy (present steps)", title="loss")
    ax = axes[1]
    ax.plot(epochs, [100 * r.train_acc for r in rows], "o-", color=train_c, ms=3, label="training")
    ax.plot(epochs, [100 * r.test_acc for r in rows], "o-", color=test_c, ms=3, label="held-out")
    ax.set(xlabel="epoch", ylabel="accuracy at the last step (%)", title="accuracy", ylim=(-2, 102))
    ax = axes[2]
    shown = [(rows[-1], f"epoch {rows[-1].epoch} (latest)", test_c)]
    if best_epoch is not None and best_epoch != rows[-1].epoch:
        shown.append((rows[best_epoch - 1], f"epoch {best_epoch} (best)", "#2e7d32"))
    for row, label, color in shown:
        ts = [t * dt for t, a in enumerate(row.test_acc_steps) if a is not None]
        ax.plot(ts, [100 * a for a in row.test_acc_steps if a is not None], "o-", color=color, ms=3, label=label)
    ax.set(xlabel="time from the first frame (ms)", ylabel="held-out accuracy (%)", title="accuracy over time",
           ylim=(-2, 102))
    for ax in axes:
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.legend(fontsize=8, frameon=False)
        if ax is not axes[2]:
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)  # user text: '$' is not mathtext
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", facecolor="white", metadata={"Software": None})
    return path

