"""The figures of `dynv experiment`: a measure against the level (one panel per area, one
curve per variant) and the response time courses (one curve per level), with presentation
windows shaded, onsets marked, chance lines under accuracy, time in ms throughout, and values
pinned at the end of their window drawn hollow and explained in a caption."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np

from ..experiment.result import ExperimentResult
from ..experiment.table import PROTOCOLS
from ..experiment.tidy import level_text
from .figure import PINNED, chance_line, fit_title, legend, new_figure, palette, save_png, shade_windows

YLABEL = {"summed": "summed mean |r|", "normalised": "summed / max", "peak": "peak mean |r|",
          "peak_step": "time to peak (steps)", "peak_ms": "time to peak (ms)", "ratio": "peak2 / peak1",
          "peak1": "peak 1 mean |r|", "peak2": "peak 2 mean |r|", "accuracy": "accuracy",
          "latency_ms": "latency (ms)", "growth": "late / early mean |r|", "late": "late mean |r|",
          "max": "largest mean |r|", "mean": "mean |r|", "final": "final mean |r|"}


def grid(n: int, cols: int = 4) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def legend_width(labels: Iterable[str]) -> float:
    """Inches to the right of the panels for a legend of these labels (7 pt text)."""
    labels = list(labels)
    if len(labels) < 2:
        return 0.3
    return min(4.0, max(1.3, 0.55 + 0.058 * max(len(str(t)) for t in labels)))


def source_line(result: ExperimentResult) -> str:
    return f"\n{result.source}" if result.source else ""


def source_room(result: ExperimentResult) -> float:
    """Inches for the title's provenance line."""
    return 0.2 if result.source else 0.0


def margins(fig, legend_w: float, title_extra: float = 0.0, caption: float = 0.0) -> None:
    """Fixed margins in inches: room for labels on the left and below, the title, the legend, a caption."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=0.75 / w, right=1 - legend_w / w, top=1 - (0.5 + title_extra) / h,
                        bottom=(0.5 + caption) / h, wspace=0.4, hspace=0.6)


def title_of(result: ExperimentResult, what: str) -> str:
    """The title, naming the only variant when there is one (instead of a one-entry legend)."""
    only = f" [{result.variants[0]}]" if len(result.variants) == 1 and result.variants[0] != "default" else ""
    detail = f" ({result.detail})" if result.detail else ""
    return f"{result.title}: {result.protocol}{detail}, {what}{only}{source_line(result)}"


def set_title(fig, text: str, points: float = 10) -> None:
    """The figure's title as plain text (user text: '$' is not mathtext), the figure widened to fit it."""
    fit_title(fig, text, points)
    fig.suptitle(text, fontsize=points, parse_math=False)


def _xs(result: ExperimentResult, variant: str) -> np.ndarray:
    """The levels on the x axis: in ms where they are durations in steps (one time unit per figure)."""
    levels = np.array(result.levels, dtype=float)
    return levels * result.dt[variant] if PROTOCOLS[result.protocol].steps_axis else levels


def _x_label(result: ExperimentResult) -> str:
    proto = PROTOCOLS[result.protocol]
    return f"{proto.axis} (ms)" if proto.steps_axis else proto.axis


def measure_figure(result: ExperimentResult, measure: str, dpi: int = 110):
    """One subplot per area: the measure against the level, one curve per variant."""
    table = result.values(measure)
    areas = [a for a in result.all_areas() + ["readout"] if any(a in table.get(v, {}) for v in result.variants)]
    rows, cols = grid(max(len(areas), 1))
    pinned = any(p[3] == measure for p in result.pinned)
    legend_w = legend_width(result.variants)
    fig = new_figure(0.75 + 3.1 * cols + legend_w, 0.65 + source_room(result) + 2.6 * rows + 0.25 * pinned, dpi)
    colors = palette(len(result.variants))
    handles: dict[str, object] = {}
    for i, area in enumerate(areas):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, variant in enumerate(result.variants):
            ys = table.get(variant, {}).get(area)
            if ys is not None:
                handles.setdefault(variant, _curve(ax, result, variant, area, measure, ys, colors[j]))
        _level_axis(ax, result, area, measure)
    if not areas:
        fig.text(0.5, 0.5, f"no values of {measure}", ha="center", va="center", color="#777777")
    set_title(fig, title_of(result, measure))
    margins(fig, legend_w, source_room(result), 0.25 * pinned)
    if pinned:
        fig.text(0.01, 0.01, f"hollow: {PINNED}", fontsize=7, color="#555555", gid="pinned")
    names = [v for v in result.variants if v in handles]
    legend(fig, [handles[v] for v in names], names, loc="upper right", fontsize=7, title="variant",
           title_fontsize=7.5, bbox_to_anchor=(1 - 0.05 / fig.get_figwidth(), 1 - 0.55 / fig.get_figheight()))
    return fig


def _curve(ax, result, variant, area, measure, ys, color):
    """One variant's curve; points pinned at a window's end drawn hollow."""
    xs = _xs(result, variant)
    (line,) = ax.plot(xs, ys, color=color, marker="o", markersize=3, lw=1.3)
    hollow = [k for k, lv in enumerate(result.levels) if (variant, area, lv, measure) in result.pinned]
    if hollow:
        ax.plot(xs[hollow], np.asarray(ys)[hollow], ls="none", marker="o", markersize=6, mfc="white",
                mec=color, mew=1.2, zorder=3, gid="pinned")
    return line


def _level_axis(ax, result, area, measure) -> None:
    levels = np.array(result.levels, dtype=float)
    if len(levels) and min(levels) > 0 and max(levels) / min(levels) >= 10:
        ticks = _xs(result, result.variants[0])
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
    if measure == "accuracy":
        chance_line(ax, max(result.classes.values(), default=0))
        ax.set_ylim(-0.03, 1.03)
    ax.set_title(area, fontsize=9)
    ax.set_xlabel(_x_label(result), fontsize=8)
    ax.set_ylabel(YLABEL.get(measure, measure), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, color="#e5e5e5", lw=0.6)


def _courses(result: ExperimentResult, variants) -> dict:
    courses: dict[tuple[str, str, object], list[tuple[int, float]]] = {}
    for r in result.rows:
        if r.measure == "response" and r.variant in variants:
            courses.setdefault((r.variant, r.area, r.level), []).append((r.step, r.value))
    return courses


def timecourse_figure(result: ExperimentResult, dpi: int = 110, max_panels: int = 16):
    """Response against time (ms), one curve per level, the presentation windows shaded: a grid
    variant x area when it has at most `max_panels` panels, otherwise the first variant only."""
    from matplotlib import colormaps

    areas = result.all_areas()
    variants = result.variants if len(result.variants) * max(len(areas), 1) <= max_panels else result.variants[:1]
    courses = _courses(result, variants)
    levels = [lv for lv in result.levels if any(k[2] == lv for k in courses)] or [None]
    rows, cols = len(variants), max(len(areas), 1)
    axis = _x_label(result)
    legend_w = legend_width([axis] * len(levels))
    fig = new_figure(0.75 + 2.8 * cols + legend_w, 0.65 + source_room(result) + 2.2 * rows, dpi)
    colors = [colormaps["viridis"](0.9 * i / max(len(levels) - 1, 1)) for i in range(len(levels))]
    handles: dict[int, object] = {}
    for i, variant in enumerate(variants):
        for j, area in enumerate(areas):
            ax = fig.add_subplot(rows, cols, i * cols + j + 1)
            for k, level in enumerate(levels):
                pts = sorted(courses.get((variant, area, level), []))
                if pts:
                    t = np.array([p[0] for p in pts]) * result.dt[variant]
                    handles.setdefault(k, ax.plot(t, [p[1] for p in pts], color=colors[k], lw=1.1)[0])
            shade_windows(ax, [w for lv in levels for w in result.windows.get(lv, [])], result.dt[variant])
            _course_axes(ax, i, j, rows, area, variant, len(variants))
    shown = "" if len(variants) == len(result.variants) else f" (variant {variants[0]})"
    one = f" at {_level_label(result, levels[0])}" if len(levels) == 1 and levels[0] is not None else ""
    set_title(fig, title_of(result, f"response time courses{one}{shown}"))
    margins(fig, legend_w, source_room(result))
    legend(fig, [handles[k] for k in sorted(handles)], [_level_label(result, levels[k]) for k in sorted(handles)],
           loc="upper right", fontsize=7, title=axis, title_fontsize=7.5,
           bbox_to_anchor=(1 - 0.05 / fig.get_figwidth(), 1 - 0.55 / fig.get_figheight()))
    return fig


def compare_figure(result: ExperimentResult, level=None, dpi: int = 110):
    """One panel per area, the variants' time courses at one level (the first) on the same axes:
    `ffonly` beside `full`, or any sweep, side by side."""
    level = result.levels[0] if level is None and result.levels else level
    areas = result.all_areas()
    courses = _courses(result, result.variants)
    rows, cols = grid(max(len(areas), 1))
    legend_w = legend_width(result.variants)
    fig = new_figure(0.75 + 2.8 * cols + legend_w, 0.65 + source_room(result) + 2.3 * rows, dpi)
    colors = palette(len(result.variants))
    handles: dict[str, object] = {}
    for j, area in enumerate(areas):
        ax = fig.add_subplot(rows, cols, j + 1)
        for k, variant in enumerate(result.variants):
            pts = sorted(courses.get((variant, area, level), []))
            if pts:
                t = np.array([p[0] for p in pts]) * result.dt[variant]
                handles.setdefault(variant, ax.plot(t, [p[1] for p in pts], color=colors[k], lw=1.2)[0])
        shade_windows(ax, result.windows.get(level, []), result.dt[result.variants[0]])
        _course_axes(ax, 0, j % cols, 1, area, "", 1)
        ax.set_xlabel("time (ms)", fontsize=8)
    at = f" at {_level_label(result, level)}" if level is not None else ""
    set_title(fig, title_of(result, f"response time courses{at}"))
    margins(fig, legend_w, source_room(result))
    names = [v for v in result.variants if v in handles]
    legend(fig, [handles[v] for v in names], names, loc="upper right", fontsize=7, title="variant",
           title_fontsize=7.5, bbox_to_anchor=(1 - 0.05 / fig.get_figwidth(), 1 - 0.55 / fig.get_figheight()))
    return fig


def _level_label(result: ExperimentResult, level) -> str:
    if PROTOCOLS[result.protocol].steps_axis and level is not None:
        return f"{level * result.dt[result.variants[0]]:g} ms"
    return level_text(level)


def _course_axes(ax, i, j, rows, area, variant, n_variants) -> None:
    if i == 0:
        ax.set_title(area, fontsize=9)
    if j == 0:
        ax.set_ylabel(f"{variant}\nmean |r|" if n_variants > 1 else "mean |r|", fontsize=8)
    if i == rows - 1:
        ax.set_xlabel("time (ms)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, color="#e5e5e5", lw=0.6)


def plot_measure(result: ExperimentResult, measure: str, path: str | Path, dpi: int = 110) -> Path:
    """Write `measure_figure` as a PNG."""
    return save_png(measure_figure(result, measure, dpi), path, dpi)


def plot_timecourse(result: ExperimentResult, path: str | Path, dpi: int = 110, max_panels: int = 16) -> Path:
    """Write `timecourse_figure` as a PNG."""
    return save_png(timecourse_figure(result, dpi, max_panels), path, dpi)
