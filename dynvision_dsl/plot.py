"""Pictures of a compiled model: the time courses of a run's responses and
logits here; the connectivity drawing lives in `science/plot/` (re-exported
here: `draw_graph`, `graph_to_dot`, `short_pipeline`).

    m = dynvision_dsl.compile(text)
    draw_graph(m.graph, "model.svg")
    plot_responses(m.run(x), "responses.png", dt=m.dt, idle=m.idle)

Everything renders off screen (matplotlib's Agg canvas, never pyplot) and every
file is written atomically: a temporary file in the target's folder, then
`os.replace`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .science.plot.graph import draw_graph, graph_to_dot
from .science.plot.labels import short_pipeline
from .util.files import atomic_open

__all__ = ["graph_to_dot", "draw_graph", "plot_responses", "short_pipeline"]


def _new_figure(width: float, height: float, dpi: float = 100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


# ------------------------------------------------------- plot_responses
def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu")
        if x.dtype.is_floating_point or x.dtype.is_complex:
            x = x.float()
    return np.asarray(x)


def plot_responses(result, path: str | os.PathLike, dt: float, idle: int = 0, areas=None,
                   title: str | None = None, dpi: int = 120) -> Path:
    """A PNG of a run (`model.run(x)`'s result): top, one line per area of the
    mean |r| over channels and space, averaged over the batch, with silent steps
    as gaps; bottom, the logits of sample 0 (steps where the readout is still
    silent, all logits exactly 0, as gaps). Time is step * dt in ms from the
    first recorded step; `idle` warm-up steps (not recorded) are shaded before 0."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot_responses writes a .png file, not '{path.name}'")
    responses = dict(getattr(result, "responses", {}) or {})
    present = dict(getattr(result, "present", {}) or {})
    names = list(responses) if areas is None else list(areas)
    for n in names:
        if n not in responses:
            raise KeyError(f"no responses recorded for area '{n}' (recorded: {', '.join(responses) or 'none'})")
    heads = result.logits if isinstance(result.logits, dict) else {"": result.logits}  # several readouts: each
    heads = {name: _numpy(v) for name, v in heads.items()}
    logits = next(iter(heads.values()))
    steps = logits.shape[1] if logits.ndim >= 2 else max((responses[n].shape[1] for n in names), default=0)
    dt = float(dt)

    fig = _new_figure(8.5, 6.2, dpi)
    gs = fig.add_gridspec(2, 1, height_ratios=(3, 2), hspace=0.12, left=0.09, right=0.78, top=0.92 if title
                          else 0.96, bottom=0.09)
    ax_r = fig.add_subplot(gs[0])
    ax_l = fig.add_subplot(gs[1], sharex=ax_r)
    cmap = _palette(len(names))

    for i, n in enumerate(names):
        r = _numpy(responses[n])
        r = np.abs(r.astype(np.float64))
        mean = r.reshape(r.shape[0], r.shape[1], -1).mean(axis=2).mean(axis=0) if r.ndim >= 3 else (
            r.reshape(r.shape[0], r.shape[1]).mean(axis=0) if r.ndim == 2 else r)
        t = np.arange(mean.shape[0]) * dt
        if n in present:
            mask = _numpy(present[n]).astype(bool).reshape(-1)
            mean = np.where(mask[: mean.shape[0]], mean, np.nan)
        ax_r.plot(t, mean, color=cmap[i], lw=1.4, marker="o", markersize=2.2, label=str(n))
    ax_r.set_ylabel("mean |r|", fontsize=9)
    if not names:
        ax_r.text(0.5, 0.5, "no areas recorded", transform=ax_r.transAxes, ha="center", va="center",
                  color="#777777")
    elif len(names) <= 24:
        ax_r.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                    ncol=1 if len(names) <= 12 else 2, title="area", title_fontsize=8)

    width = sum(v.shape[-1] for v in heads.values() if v.ndim == 3)
    colors = _palette(width)
    k = 0
    for head, logits in heads.items():
        if logits.ndim != 3 or logits.shape[0] == 0:
            continue
        lg = logits[0].astype(np.float64)
        silent = np.all(lg == 0, axis=1)  # per readout: each has its own silent steps
        lg[silent] = np.nan
        t = np.arange(lg.shape[0]) * dt
        for c in range(lg.shape[1]):
            ax_l.plot(t, lg[:, c], color=colors[k], lw=1.0, marker="o", markersize=1.6,
                      label=(f"{head}:{c}" if head else str(c)) if width <= 20 else None)
            k += 1
    if logits.ndim == 3 and logits.shape[0] > 0:
        lg = logits[0]
        if width <= 20:
            ax_l.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6.5, frameon=False,
                        ncol=1 if width <= 10 else 2, title="class", title_fontsize=7.5)
    ax_l.set_ylabel("logit (sample 0)", fontsize=9)
    ax_l.set_xlabel("time (ms)", fontsize=9)

    lo = -idle * dt if idle else 0.0
    hi = max(steps - 1, 1) * dt
    for ax in (ax_r, ax_l):
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.tick_params(labelsize=8)
        if idle:
            ax.axvspan(lo, 0, color="#f0f0f0", zorder=0)
            ax.axvline(0, color="#999999", lw=0.8, ls=":")
        ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    if idle:
        ax_r.text(lo / 2, 0.98, f"idle ({idle} steps,\nnot recorded)", transform=ax_r.get_xaxis_transform(),
                  ha="center", va="top", fontsize=7, color="#777777")
    for lab in ax_r.get_xticklabels():
        lab.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)  # user text: '$' is not mathtext
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return path


def _palette(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = colormaps["tab20"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]
