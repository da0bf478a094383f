"""The unrolling plot: the network unrolled over its first steps, one row per area, a dot
where the area is present (hollow where it is still silent), and every connection as an
arrow from its source at step t - delay to its target at step t. Same-step connections
(vertical arrows) are the engineering view of time, delayed ones (slanted) the biological
one; the x axis gives steps below and ms above."""
from __future__ import annotations

from ..experiment.result import ExperimentResult
from .experiment import set_title, title_of
from .figure import new_figure, palette

KIND_COLOR = {"feedforward": 0, "skip": 1, "lateral": 2, "feedback": 3}


def unrolling_figure(result: ExperimentResult, variant: str | None = None, max_steps: int = 8, dpi: int = 110):
    """The unrolling of one variant's model (the first by default) over its first `max_steps` steps."""
    variant = variant or result.variants[0]
    info = result.models[variant]
    areas = list(info.present)
    sources = [u for u, v, _, kind in info.edges if kind != "readout" and u not in info.present]
    rows = list(dict.fromkeys(sources)) + areas
    y = {name: i for i, name in enumerate(rows)}
    steps = min(max_steps, max((len(p) for p in info.present.values()), default=1))
    fig = new_figure(1.6 + 0.9 * steps, 1.2 + 0.6 * len(rows), dpi)
    ax = fig.add_subplot(1, 1, 1)
    colors = palette(len(KIND_COLOR))
    _dots(ax, rows, info, steps, y)
    seen = {}
    for u, v, delay, kind in info.edges:
        if kind == "readout":
            continue
        for t in range(delay, steps):
            if _present(info, u, t - delay) and _present(info, v, t):
                seen[kind] = _arrow(ax, t - delay, y[u], t, y[v], colors[KIND_COLOR.get(kind, 0)], u == v)
    _axes(ax, rows, steps, result.dt[variant])
    handles = [seen[k] for k in KIND_COLOR if k in seen]
    if len(handles) > 1:
        ax.legend(handles, [k for k in KIND_COLOR if k in seen], loc="upper left", bbox_to_anchor=(1.01, 1),
                  fontsize=7, frameon=False, title="connection", title_fontsize=7.5)
    set_title(fig, title_of(result, "unrolled in time"), 9)
    fig.subplots_adjust(left=0.8 / fig.get_figwidth(), right=1 - 1.3 / fig.get_figwidth(), bottom=0.18, top=0.78)
    return fig


def _present(info, name: str, t: int) -> bool:
    """Areas as recorded; anything else (the input) is present at every step."""
    return info.present[name][t] if name in info.present else t >= 0


def _dots(ax, rows, info, steps, y) -> None:
    for name in rows:
        for t in range(steps):
            on = _present(info, name, t)
            ax.plot([t], [y[name]], marker="o", markersize=7, ls="none", mec="#333333",
                    mfc="#333333" if on else "white", zorder=3, gid="present" if on else "silent")


def _arrow(ax, t0, y0, t1, y1, color, loop: bool):
    from matplotlib.patches import FancyArrowPatch

    rad = -0.25 / max(t1 - t0, 1) if loop else 0.35 if t0 == t1 and abs(y1 - y0) > 1 else 0.0
    style = f"arc3,rad={rad}"  # a loop arcs just above its row; a same-step skip bows past the rows between
    patch = FancyArrowPatch((t0, y0), (t1, y1), arrowstyle="-|>", mutation_scale=7, color=color, lw=0.9,
                            connectionstyle=style, shrinkA=5, shrinkB=5, alpha=0.8, gid="connection")
    ax.add_patch(patch)
    return patch


def _axes(ax, rows, steps, dt) -> None:
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_xticks(range(steps))
    ax.set_xlim(-0.6, steps - 0.4)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("step (engineering time)", fontsize=8)
    top = ax.secondary_xaxis("top", functions=(lambda s: s * dt, lambda ms: ms / dt))
    top.set_xlabel("ms (biological time)", fontsize=8)
    top.tick_params(labelsize=7)
    ax.tick_params(labelsize=7)
