"""The confusion matrix: true class (rows) against predicted class (columns), each row the
share of that class's images, one panel per variant, with the accuracy against chance."""
from __future__ import annotations

import numpy as np

from ..experiment.result import ExperimentResult
from .experiment import grid, set_title, title_of
from .figure import new_figure


def confusion_matrix(result: ExperimentResult, variant: str) -> np.ndarray:
    """(true classes, readout classes) shares from the rows `predicted_j` at level k."""
    classes = result.classes[variant]
    index = {lv: i for i, lv in enumerate(result.levels)}
    out = np.full((len(result.levels), classes), np.nan)
    for r in result.rows:
        if r.variant == variant and r.measure.startswith("predicted_") and r.level in index:
            out[index[r.level], int(r.measure[len("predicted_"):])] = r.value
    return out


def confusion_figure(result: ExperimentResult, dpi: int = 110):
    """One confusion matrix per variant."""
    rows, cols = grid(len(result.variants), 3)
    size = max(2.8, 0.32 * max(result.classes.values(), default=2) + 1.2)
    fig = new_figure(max(6.5, 0.4 + size * cols), 0.9 + size * rows, dpi)  # room for the title's source line
    for i, variant in enumerate(result.variants):
        ax = fig.add_subplot(rows, cols, i + 1)
        m = confusion_matrix(result, variant)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=1, aspect="auto", gid="confusion")
        if m.size <= 400:
            for (k, j), v in np.ndenumerate(m):
                if v > 0:
                    ax.text(j, k, f"{v:.2f}".lstrip("0"), ha="center", va="center", fontsize=6,
                            color="white" if v > 0.6 else "#333333")
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_yticklabels([str(lv) for lv in result.levels])
        ax.set_xlabel("predicted class", fontsize=8)
        ax.set_ylabel("true class", fontsize=8)
        ax.tick_params(labelsize=6.5)
        acc = result.scalar("accuracy", variant, "readout")
        chance = 100 / max(result.classes[variant], 1)
        ax.set_title(f"{variant + ': ' if len(result.variants) > 1 else ''}accuracy {100 * acc:.0f}% "
                     f"(chance {chance:.0f}%)", fontsize=8)
    set_title(fig, title_of(result, "readout at the last step"), 9)
    fig.subplots_adjust(left=0.6 / fig.get_figwidth(), right=0.97, bottom=0.55 / fig.get_figheight(),
                        top=1 - 0.6 / fig.get_figheight(), wspace=0.35, hspace=0.5)
    return fig
