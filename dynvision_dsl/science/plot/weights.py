"""Weight distributions per connection kind: one histogram panel per kind (feedforward,
skip, lateral, feedback, readout, and `area` for parameters of no connection)."""
from __future__ import annotations

import numpy as np

from ..experiment.result import ExperimentResult
from .experiment import grid, set_title, source_room, title_of
from .figure import new_figure, palette

ORDER = ("feedforward", "skip", "lateral", "feedback", "readout", "area")


def weights_figure(result: ExperimentResult, variant: str | None = None, dpi: int = 110):
    """The distribution of one variant's parameter values, a panel per connection kind."""
    variant = variant or result.variants[0]
    weights = result.models[variant].weights
    kinds = [k for k in ORDER if k in weights] + [k for k in weights if k not in ORDER]
    rows, cols = grid(max(len(kinds), 1), 3)
    fig = new_figure(0.8 + 2.9 * cols, 0.9 + source_room(result) + 2.3 * rows, dpi)
    colors = palette(len(ORDER))
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(rows, cols, i + 1)
        w = weights[kind]
        counts, _, _ = ax.hist(w, bins=60, color=colors[ORDER.index(kind) if kind in ORDER else 0], alpha=0.85,
                               gid=f"weights:{kind}")
        if counts.any() and counts.max() > 100 * max(counts[counts > 0].min(), 1):  # heavy tails: a log scale shows them
            from matplotlib.ticker import NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axvline(0, color="#999999", lw=0.7)
        ax.set_title(f"{kind} ({len(w):,} values, sd {float(np.std(w)):.3g})", fontsize=8)
        ax.set_xlabel("value", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
    if not kinds:
        fig.text(0.5, 0.5, "the model has no parameters", ha="center", va="center", color="#777777")
    what = "weights by connection kind" + (f", {variant}" if len(result.variants) > 1 else "")
    set_title(fig, title_of(result, what), 9)
    fig.subplots_adjust(left=0.8 / fig.get_figwidth(), right=0.97, bottom=0.5 / fig.get_figheight(),
                        top=1 - (0.55 + source_room(result)) / fig.get_figheight(), wspace=0.35, hspace=0.7)
    return fig
