"""The time courses of a run's responses and logits (`dynv run`, `RunResult.plot`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .figure import legend, new_figure, palette, save_png


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu")
        if x.dtype.is_floating_point or x.dtype.is_complex:
            x = x.float()
    return np.asarray(x)


def plot_responses(result, path: str | os.PathLike, dt: float, idle: int = 0, areas=None,
                   title: str | None = None, dpi: int = 120) -> Path:
    """A PNG of a run (`model.run(x)`'s result): top, one line per area of the mean |r| over
    channels and space, averaged over the batch, with silent steps as gaps; bottom, the logits of
    sample 0 (steps where the readout is still silent, all logits exactly 0, as gaps). Time is
    step * dt in ms from the first recorded step; `idle` warm-up steps (not recorded) are shaded before 0."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot_responses writes a .png file, not '{path.name}'")
    return save_png(responses_figure(result, dt, idle, areas, title, dpi), path, dpi)


def responses_figure(result, dt: float, idle: int = 0, areas=None, title: str | None = None, dpi: int = 120):
    """The figure `plot_responses` writes."""
    responses = dict(getattr(result, "responses", {}) or {})
    names = list(responses) if areas is None else list(areas)
    for n in names:
        if n not in responses:
            raise KeyError(f"no responses recorded for area '{n}' (recorded: {', '.join(responses) or 'none'})")
    heads = result.logits if isinstance(result.logits, dict) else {"": result.logits}  # several readouts: each
    heads = {name: _numpy(v) for name, v in heads.items()}
    logits = next(iter(heads.values()))
    steps = logits.shape[1] if logits.ndim >= 2 else max((responses[n].shape[1] for n in names), default=0)
    fig = new_figure(8.5, 6.2, dpi)
    gs = fig.add_gridspec(2, 1, height_ratios=(3, 2), hspace=0.12, left=0.09, right=0.78,
                          top=0.92 if title else 0.96, bottom=0.09)
    ax_r = fig.add_subplot(gs[0])
    ax_l = fig.add_subplot(gs[1], sharex=ax_r)
    _area_lines(ax_r, responses, dict(getattr(result, "present", {}) or {}), names, float(dt))
    _logit_lines(ax_l, heads, float(dt))
    _time_axes(ax_r, ax_l, idle, float(dt), steps)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)  # user text: '$' is not mathtext
    return fig


def _area_lines(ax, responses, present, names, dt) -> None:
    cmap = palette(len(names))
    lines = []
    for i, n in enumerate(names):
        r = np.abs(_numpy(responses[n]).astype(np.float64))
        mean = r.reshape(r.shape[0], r.shape[1], -1).mean(axis=2).mean(axis=0) if r.ndim >= 3 else (
            r.reshape(r.shape[0], r.shape[1]).mean(axis=0) if r.ndim == 2 else r)
        if n in present:
            mask = _numpy(present[n]).astype(bool).reshape(-1)
            mean = np.where(mask[: mean.shape[0]], mean, np.nan)
        lines += ax.plot(np.arange(mean.shape[0]) * dt, mean, color=cmap[i], lw=1.4, marker="o", markersize=2.2)
    ax.set_ylabel("mean |r|" if len(names) != 1 else f"{names[0]}: mean |r|", fontsize=9)
    if not names:
        ax.text(0.5, 0.5, "no areas recorded", transform=ax.transAxes, ha="center", va="center", color="#777777")
    elif len(names) <= 24:
        legend(ax, lines, [str(n) for n in names], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
               ncol=1 if len(names) <= 12 else 2, title="area", title_fontsize=8)


def _logit_lines(ax, heads: dict, dt) -> None:
    """Sample 0's logits of every readout (`head:class` in the legend when there are several),
    with steps where a readout is still silent (all its logits exactly 0) as gaps."""
    shown = {head: lg for head, lg in heads.items() if lg.ndim == 3 and lg.shape[0] > 0}
    width = sum(lg.shape[-1] for lg in shown.values())
    colors, lines, labels = palette(width), [], []
    for head, logits in shown.items():
        lg = logits[0].astype(np.float64)
        lg[np.all(lg == 0, axis=1)] = np.nan  # per readout: each has its own silent steps
        t = np.arange(lg.shape[0]) * dt
        for c in range(lg.shape[1]):
            lines.append(ax.plot(t, lg[:, c], color=colors[len(lines)], lw=1.0, marker="o", markersize=1.6)[0])
            labels.append(f"{head}:{c}" if head else str(c))
    if lines and width <= 20:
        legend(ax, lines, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
               fontsize=6.5, ncol=1 if width <= 10 else 2, title="class", title_fontsize=7.5)
    ax.set_ylabel("logit (sample 0)", fontsize=9)
    ax.set_xlabel("time (ms)", fontsize=9)


def _time_axes(ax_r, ax_l, idle: int, dt: float, steps: int) -> None:
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
