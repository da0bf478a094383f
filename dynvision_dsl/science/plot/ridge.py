"""The ridge plot of DynVision users: one row per area, its response time course filled and
stacked from V1 at the bottom to the last area at the top, each scaled to its own peak, with
the presentation window shaded."""
from __future__ import annotations

import numpy as np

from ..experiment.result import ExperimentResult
from .experiment import set_title, title_of
from .figure import new_figure, palette, shade_windows


def ridge_figure(result: ExperimentResult, variant: str | None = None, level=None, dpi: int = 110):
    """The areas' response time courses of one variant at one level (the first of each by default)."""
    variant = variant or result.variants[0]
    level = result.levels[0] if level is None and result.levels else level
    areas = list(result.areas[variant])
    dt = result.dt[variant]
    fig = new_figure(7.0, 1.0 + 0.75 * max(len(areas), 1), dpi)
    ax = fig.add_subplot(1, 1, 1)
    colors = palette(len(areas))
    for i, area in enumerate(areas):
        course = np.nan_to_num(result.timecourse(variant, area, level))
        top = course.max()
        y = course / top * 0.9 if top > 0 else course
        t = np.arange(len(course)) * dt
        ax.fill_between(t, i, i + y, color=colors[i], alpha=0.55, lw=0, gid=f"ridge:{area}")
        ax.plot(t, i + y, color=colors[i], lw=1.0)
        ax.text(t[-1], i + 0.05, f"peak {top:.3g}", fontsize=6.5, ha="right", va="bottom", color="#555555")
    shade_windows(ax, result.windows.get(level, []), dt)
    ax.set_yticks(np.arange(len(areas)) + 0.3)
    ax.set_yticklabels(areas, fontsize=8)
    ax.set_xlabel("time (ms)", fontsize=8)
    ax.set_ylim(-0.1, max(len(areas), 1))
    ax.tick_params(labelsize=7)
    ax.grid(True, axis="x", color="#e5e5e5", lw=0.6)
    what = "time courses, each scaled to its peak" + (f" ({variant})" if len(result.variants) > 1 else "")
    set_title(fig, title_of(result, what), 9)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.86 if result.source else 0.9)
    return fig
