"""The time view: when each area and each connection first becomes present
(the schedule's silence analysis). Biological time runs left to right in ms
(a delayed connection is a slanted arrow as long as its delay); engineering
time is the order within one step (a zero-delay connection is a vertical
arrow: its target is computed after its source in the same step)."""
from __future__ import annotations

import networkx as nx

from ...frontend.values import fmt_number
from . import labels as L
from .picture import Picture

_FILL = {"input": "#9e9e9e", "area": "#5b8def", "group": "#e0a040", "readout": "#2e9d4a"}
_STYLE = {"feedforward": "-", "skip": (0, (4, 2)), "feedback": (0, (4, 2)), "lateral": "-", "readout": "-"}


class TimelineError(ValueError):
    """A graph without the schedule's presence attributes (not made by `build`)."""


class TimelinePicture(Picture):
    """Rows of areas against time: a bar from each area's first present step to
    the end of the run, an arrow per connection from where its source's output
    leaves (step - delay) to where it first arrives. `_repr_svg_` for notebooks."""

    def __init__(self, graph: nx.MultiDiGraph):
        super().__init__()
        missing = [n for n in graph.nodes if "present_from" not in graph.nodes[n]]
        if missing:
            raise TimelineError(f"the graph has no presence schedule for {', '.join(map(str, missing[:3]))}; "
                                "draw the graph of a compiled spec (dynvision_dsl.compile or pipeline.build)")
        self.graph = graph
        self.title = f"{graph.graph.get('name') or 'model'}: first presence"
        self.nodes = L.sorted_nodes(graph)
        self.dt = float(graph.graph.get("dt") or 1.0)
        self.idle = int(graph.graph.get("idle") or 0)
        self.steps = int(graph.graph.get("steps") or 1)
        self.width = 9.0
        self.height = 1.7 + 0.32 * len(self.nodes)

    def _row_label(self, n) -> str:
        start = self.graph.nodes[n]["present_from"]
        return f"{n}  (never)" if start is None else f"{n}  ({fmt_number(start * self.dt)} ms)"

    def _at(self, n, step: int) -> float:
        """Where `n` computes within step `step`: areas in rank order spread over the
        middle of the step (engineering time inside one step of biological time)."""
        return (step - 0.35 + 0.7 * self.nodes.index(n) / max(len(self.nodes) - 1, 1)) * self.dt

    def _span(self) -> tuple[float, float]:
        """The time axis in ms: the warm-up, then the run, cut after the last event when that is early."""
        starts = [self.graph.nodes[n]["present_from"] for n in self.nodes]
        events = [s for s in starts if s is not None]
        events += [d["present_from"] for *_, d in self.graph.edges(keys=True, data=True)
                   if d.get("present_from") is not None]
        lo = min([-self.idle] + events) * self.dt
        end = (self.steps - 1) * self.dt
        last = max(events, default=0) * self.dt
        cut = max(last + 5 * self.dt, last * 1.3)
        return lo - 0.5 * self.dt, min(end, cut) + 0.5 * self.dt

    def figure(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=(self.width, self.height), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.14, 0.9 / self.height, 0.83, 1 - 1.75 / self.height))
        lo, hi = self._span()
        row = {n: i for i, n in enumerate(self.nodes)}
        tips: dict[str, str] = {}
        self._bars(ax, row, hi, tips)
        self._arrows(ax, row, tips)
        ax.set_xlim(lo, hi)
        ax.set_ylim(len(self.nodes) - 0.4, -0.6)
        ax.set_yticks(range(len(self.nodes)), [self._row_label(n) for n in self.nodes], fontsize=7.5)
        ax.set_xlabel("biological time (ms after the first frame)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        top = ax.secondary_xaxis("top", functions=(lambda t: t / self.dt, lambda s: s * self.dt))
        top.set_xlabel("step", fontsize=8)
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        top.tick_params(labelsize=7)
        if self.idle:
            ax.axvspan(lo, -0.5 * self.dt, color="#f2f2f2", zorder=0)
            ax.text(lo + 0.01 * (hi - lo), len(self.nodes) - 0.5, f"idle ({self.idle} blank steps)", fontsize=6.5,
                    color="#777777", va="bottom")
        end = (self.steps - 1) * self.dt
        if end + 0.5 * self.dt > hi + 1e-9:
            ax.text(hi, len(self.nodes) - 0.5, f"run continues to {fmt_number(end)} ms →", fontsize=6.5,
                    color="#777777", ha="right", va="bottom")
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
        ax.grid(True, axis="x", color="#eeeeee", lw=0.6, zorder=0)
        fig.text(0.01, 1 - 0.12 / self.height, self.title, fontsize=10, fontweight="bold", va="top")
        self._legend(fig)
        fig.text(0.01, 0.12 / self.height, "slanted arrow: a delayed connection (biological time); vertical "
                 "arrow: zero delay, computed later in the same step (engineering time); bar: present from then on",
                 fontsize=6.5, color="#555555", va="bottom")
        return fig, tips

    def _legend(self, fig) -> None:
        from matplotlib.lines import Line2D

        kinds = [k for k in L.KINDS if any(L.kind(d) == k for *_, d in self.graph.edges(keys=True, data=True))]
        handles = [Line2D([], [], color=L.COLORS[k], lw=1.0, linestyle=_STYLE[k], label=k) for k in kinds]
        if handles:
            fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.99, 1 - 0.08 / self.height),
                       ncol=len(handles), fontsize=7, frameon=False, handlelength=2.0, columnspacing=1.0)

    def _bars(self, ax, row: dict, hi: float, tips: dict) -> None:
        for i, n in enumerate(self.nodes):
            data = self.graph.nodes[n]
            start = data["present_from"]
            ax.axhline(i, color="#dddddd", lw=0.6, zorder=1)
            if start is None:
                ax.text(hi, i, "silent for the whole run", fontsize=6.5, color="#a00000", ha="right", va="center")
                continue
            bar = ax.barh(i, hi - self._at(n, start), left=self._at(n, start), height=0.36, color=_FILL.get(L.role(data), "#5b8def"),
                          alpha=0.35, zorder=2, lw=0)[0]
            bar.set_gid(f"dvbar{i}")
            tips[f"dvbar{i}"] = L.node_tooltip(n, data, self.dt)
            ax.plot([self._at(n, start)], [i], marker="|", markersize=9, color="#333333", zorder=4)

    def _arrows(self, ax, row: dict, tips: dict) -> None:
        from matplotlib.patches import FancyArrowPatch

        for j, (u, v, _, d) in enumerate(L.sorted_edges(self.graph)):
            end = d.get("present_from")
            if end is None:
                continue
            kind = L.kind(d)
            delay = int(d.get("delay_steps") or 0)
            t0, t1 = self._at(u, end - delay), self._at(v, end)
            a, b = (t0, row[u]), (t1, row[v])
            if delay and u != v:
                ax.text((t0 + t1) / 2, (row[u] + row[v]) / 2, L.delay_text(d), fontsize=6, color=L.COLORS[kind],
                        ha="center", va="center", zorder=5,
                        bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.85))
            bow = delay == 0 and abs(row[v] - row[u]) > 1  # a same-step skip bows out of the cascade
            style = "arc3,rad=-0.35" if u == v else ("arc3,rad=-0.5" if bow else "arc3,rad=0.0")
            if u == v:
                a, b = (t0, row[u] - 0.05), (t1, row[v] - 0.05)
            arrow = FancyArrowPatch(a, b, connectionstyle=style, arrowstyle="-|>", mutation_scale=7,
                                    color=L.COLORS[kind], lw=0.9, linestyle=_STYLE[kind], shrinkA=2, shrinkB=2,
                                    zorder=3)
            arrow.set_gid(f"dvconn{j}")
            tips[f"dvconn{j}"] = L.edge_tooltip(u, v, d, self.dt)
            ax.add_patch(arrow)
