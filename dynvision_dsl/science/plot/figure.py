"""What every figure of a run or an experiment shares: an off-screen figure, colours, the
atomic PNG write, shaded presentation windows, chance lines, and legends only where they
tell two or more things apart."""
from __future__ import annotations

import os
from pathlib import Path

from ...util.files import atomic_open

WINDOW = "#fde9c9"  # presentation windows (shaded)
ONSET = "#d08a2a"  # onset lines
CHANCE = "#888888"
PINNED = "the value is at the last step measured (still rising or falling there): the true one lies beyond"


def new_figure(width: float, height: float, dpi: float = 100):
    """A matplotlib Figure on the Agg canvas (never pyplot: no display, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def fit_title(fig, text: str, points: float = 10) -> None:
    """Widen the figure (never narrow it) so that each line of its title fits."""
    need = 0.6 + 0.0075 * points * max((len(line) for line in text.splitlines()), default=0)
    if fig.get_figwidth() < need:
        fig.set_figwidth(need)


def palette(n: int) -> list:
    """n distinguishable colours: tab10, tab20, then viridis."""
    from matplotlib import colormaps

    if n <= 20:
        cmap = colormaps["tab10" if n <= 10 else "tab20"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def save_png(fig, path: str | os.PathLike, dpi: int) -> Path:
    """Write the figure as a PNG atomically (a temporary file, then os.replace)."""
    path = Path(path)
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return path


def shade_windows(ax, windows, dt: float) -> None:
    """Shade each [first, end) step window in which the image is shown and mark its onset (in ms)."""
    for lo, hi in sorted(set(windows)):
        ax.axvspan(lo * dt, hi * dt, color=WINDOW, alpha=0.55, lw=0, zorder=0, gid="window")
    for onset in sorted({lo for lo, _ in windows}):
        ax.axvline(onset * dt, color=ONSET, lw=0.8, ls="--", zorder=1, gid="onset")


def chance_line(ax, classes: int) -> None:
    """A dashed line at chance accuracy, 1 / classes, labelled on the axes."""
    if classes > 0:
        ax.axhline(1.0 / classes, color=CHANCE, lw=0.9, ls=":", zorder=1, gid="chance")
        ax.text(0.99, 1.0 / classes, f"chance {100 / classes:.0f}%", transform=ax.get_yaxis_transform(),
                ha="right", va="bottom", fontsize=6.5, color=CHANCE)


def legend(fig_or_ax, handles: list, labels: list[str], **kw):
    """A legend, but only for two or more entries (one entry says nothing a title cannot)."""
    if len(handles) < 2:
        return None
    return fig_or_ax.legend(handles, labels, frameon=False, **kw)
