"""The connectivity drawing: matplotlib from `layout` (SVG with `<title>`
tooltips, PNG, PDF, a self-contained interactive HTML page), or Graphviz
`dot` when it is installed; DOT text always.

    pic = GraphPicture(model.graph)            # shows itself in a notebook
    pic.save("model.svg")                      # or draw_graph(model.graph, "model.svg")
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import networkx as nx

from ...util.files import write_atomic_bytes
from . import labels as L
from .layout import Drawing, Route, Text, layout
from .picture import FORMATS, Picture, file_format

__all__ = ["FORMATS", "GraphPicture", "draw_graph", "graph_to_dot"]

_FILL = {"input": "#eeeeee", "area": "#e8f0fe", "group": "#fdf3e1", "readout": "#e6f4ea"}
_LINESTYLE = {"feedforward": "-", "skip": (0, (4, 2)), "feedback": (0, (4, 2)), "lateral": "-", "readout": "-"}


# ------------------------------------------------------------ matplotlib
def _path(route: Route, radius: float = 0.05):
    """A matplotlib Path: the Bézier of a curved route, else the polyline with rounded corners."""
    from matplotlib.path import Path as MPath

    pts = route.points
    if route.curve:
        return MPath(pts, [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4])
    verts, codes = [pts[0]], [MPath.MOVETO]
    for a, b, c in zip(pts, pts[1:], pts[2:]):
        la, lc = _dist(a, b), _dist(b, c)
        r = min(radius, la / 2, lc / 2)
        if r < 1e-6:
            verts.append(b)
            codes.append(MPath.LINETO)
            continue
        p1 = (b[0] + (a[0] - b[0]) * r / la, b[1] + (a[1] - b[1]) * r / la)
        p2 = (b[0] + (c[0] - b[0]) * r / lc, b[1] + (c[1] - b[1]) * r / lc)
        verts += [p1, b, p2]
        codes += [MPath.LINETO, MPath.CURVE3, MPath.CURVE3]
    verts.append(pts[-1])
    codes.append(MPath.LINETO)
    return MPath(verts, codes)


def _dist(a, b) -> float:
    return ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5


def _text(ax, t: Text, gid: str | None, tips: dict) -> None:
    from matplotlib.font_manager import FontProperties

    step = t.size * 1.25 / 72
    first_extra = (t.size + 1.0) * 1.25 / 72 - step if t.bold_first else 0.0
    y = t.y - t.h / 2 + (step + first_extra) / 2
    bbox = dict(boxstyle="square,pad=0.02", fc="white", ec="none") if t.background else None
    if bbox:  # one white patch behind all lines
        from matplotlib.patches import Rectangle
        ax.add_patch(Rectangle((t.x - t.w / 2 - 0.02, t.y - t.h / 2), t.w + 0.04, t.h, fc="white", ec="none",
                               zorder=4))
    for i, line in enumerate(t.lines):
        bold = t.bold_first and i == 0
        size = t.size + 1.0 if bold else t.size
        art = ax.text(t.x, y, line, ha="center", va="center", color=t.color, zorder=5,
                      fontproperties=FontProperties(size=size, weight="bold" if bold else "normal"))
        if gid:
            art.set_gid(f"{gid}t{i}")
            tips[f"{gid}t{i}"] = t.tip
        y += step + (first_extra / 2 if bold else 0.0)


def figure(d: Drawing, dpi: float = 100):
    """A matplotlib Figure (Agg canvas, never pyplot) of the drawing, and the tooltip of each gid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = Figure(figsize=(d.width, d.height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, d.width)
    ax.set_ylim(d.height, 0)
    ax.set_axis_off()
    tips: dict[str, str] = {}
    for i, b in enumerate(d.boxes):
        patch = FancyBboxPatch((b.x0, b.y0), b.x1 - b.x0, b.y1 - b.y0, boxstyle="round,pad=0,rounding_size=0.06",
                               fc=_FILL.get(b.role, _FILL["area"]), ec="#333333", lw=0.8, zorder=3)
        patch.set_gid(f"dvnode{i}")
        tips[f"dvnode{i}"] = b.tip
        ax.add_patch(patch)
        b.text.tip = b.tip
        _text(ax, b.text, f"dvnode{i}", tips)
    for i, r in enumerate(d.routes):
        arrow = FancyArrowPatch(path=_path(r), arrowstyle="->" if r.open_head else "-|>", mutation_scale=6 if r.kind == "lateral" else 8,
                                color=L.COLORS[r.kind], lw=1.2 if r.kind == "readout" else 0.9,
                                linestyle=_LINESTYLE[r.kind], zorder=2 if r.kind != "lateral" else 3.5)
        arrow.set_gid(f"dvedge{i}")
        tips[f"dvedge{i}"] = r.tip
        ax.add_patch(arrow)
        if r.label:
            _text(ax, r.label, f"dvedge{i}", tips)
    for t in d.texts:
        _text(ax, t, None, tips)
    for kind, x, y in d.legend:
        ax.add_patch(FancyArrowPatch((x, y), (x + 0.32, y), arrowstyle="-|>", mutation_scale=7,
                                     color=L.COLORS[kind], lw=0.9, linestyle=_LINESTYLE[kind], shrinkA=0, shrinkB=0))
    return fig, tips


# ------------------------------------------------------------------- DOT
def _q(text: Any) -> str:
    """A DOT quoted string; newlines become centred line breaks."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\n", "\\n") + '"'


_DOT_STYLE = {
    "feedforward": "style=solid, weight=4",
    "skip": "style=dashed, weight=1",
    "feedback": "style=dashed, constraint=false",
    "lateral": "style=solid, constraint=false",
    "readout": "style=solid, penwidth=1.4",
}


def dot_rows(graph: nx.MultiDiGraph) -> list[list]:
    """Nodes per row of the matplotlib layout, so that `dot` wraps long chains the same way."""
    d = layout(graph, max_width=9.0, max_aspect=3.5)  # dot draws wider than matplotlib
    rows: dict[float, list] = {}
    for b in d.boxes:
        rows.setdefault(round(b.cy, 3), []).append(b.name)
    tops = sorted(rows)
    return [rows[t] for t in tops] if d.rows > 1 else []


def graph_to_dot(graph: nx.MultiDiGraph, rankdir: str = "LR", wrap: bool = False) -> str:
    """The model graph as Graphviz DOT text: nodes labelled with name, shape, time
    constant and lateral recurrence (`↻ full · 6 ms`), edges with the compact
    pipeline (`conv 7/2`), the delay when > 0 and `→ port`; full texts as
    `tooltip`s; styled by kind (feedforward solid black, skip dashed blue,
    feedback dashed red without rank constraint, lateral gray, readout green).
    `wrap` stacks the rows of the matplotlib layout top to bottom.
    Deterministic: nodes and edges sorted."""
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be LR, TB, RL or BT, not {rankdir!r}")
    name = graph.graph.get("name") or "model"
    rows = dot_rows(graph) if wrap else []
    out = [f"digraph {_q(name)} {{",
           f"  graph [rankdir={'TB' if rows else rankdir}, newrank=true, splines=true, nodesep=0.4, ranksep=0.7, "
           f'fontname="Helvetica", labelloc=t, label={_q(name)}, size="15,40"];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
           'color="#333333", margin="0.12,0.06"];',
           '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.7];']
    out += _dot_nodes(graph)
    groups = rows
    if not rows:
        ranks: dict[int, list] = {}
        for n in L.sorted_nodes(graph):
            ranks.setdefault(L.rank(graph.nodes[n]), []).append(n)
        groups = [ranks[r] for r in sorted(ranks)]
    out += [f"  {{ rank=same; {' '.join(_q(n) + ';' for n in g)} }}" for g in groups if len(g) > 1]
    out += [f"  {_q(a[0])} -> {_q(b[0])} [style=invis, weight=100];" for a, b in zip(rows, rows[1:])]
    out += _dot_edges(graph, {n: i for i, g in enumerate(rows) for n in g})
    return "\n".join(out + ["}"]) + "\n"


def _dot_nodes(graph: nx.MultiDiGraph) -> list[str]:
    dt = graph.graph.get("dt")
    loops: dict[Any, list[str]] = {}
    for u, v, _, d in L.sorted_edges(graph):
        if u == v:
            loops.setdefault(u, []).append(L.lateral_line(d))
    out = []
    for n in L.sorted_nodes(graph):
        data = graph.nodes[n]
        fill = _FILL.get(L.role(data), _FILL["area"])
        text = "\n".join(L.node_lines(n, data) + L.loop_lines(loops.get(n, [])))
        out.append(f"  {_q(n)} [label={_q(text)}, fillcolor=\"{fill}\", tooltip={_q(L.node_tooltip(n, data, dt))}];")
    return out


def _dot_edges(graph: nx.MultiDiGraph, row_of: dict) -> list[str]:
    """Edges; with rows, only edges inside a row constrain the ranks."""
    out = []
    for u, v, _, d in L.sorted_edges(graph):
        kind = L.kind(d)
        text = "" if u == v else "\n".join(L.edge_lines(d))  # a lateral's text is in its box
        attrs = [f"label={_q(text)}"] if text else []
        color = L.COLORS[kind]
        attrs += [f'color="{color}"' + (f', fontcolor="{color}"' if kind != "feedforward" else ""), _DOT_STYLE[kind],
                  f"tooltip={_q(L.edge_tooltip(u, v, d, graph.graph.get('dt')))}"]
        if row_of and row_of[u] != row_of[v] and kind not in ("feedback", "lateral"):
            attrs.append("constraint=false, weight=0")
        if L.role(graph.nodes[v]) != "readout" and L.port_of(d) != "input":
            attrs.append("arrowhead=empty")
        out.append(f"  {_q(u)} -> {_q(v)} [{', '.join(attrs)}];")
    return out


# ------------------------------------------------------------- the API
class GraphPicture(Picture):
    """The connectivity drawing of a graph: `svg()`, `save(path)`, `size_px()`,
    and `_repr_svg_` so that a notebook shows it."""

    def __init__(self, graph: nx.MultiDiGraph, max_width: float = 13.5, max_aspect: float = 5.5):
        super().__init__()
        self.graph = graph
        self.drawing = layout(graph, max_width, max_aspect)
        self.title = self.drawing.title
        self.width, self.height = self.drawing.width, self.drawing.height

    def figure(self):
        return figure(self.drawing)

    def data(self, fmt: str, dpi: float = 150) -> bytes:
        if fmt == "dot":
            return graph_to_dot(self.graph, wrap=True).encode("utf-8")
        return super().data(fmt, dpi)


def _graphviz(graph: nx.MultiDiGraph, fmt: str, rankdir: str, dpi: float) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("Graphviz's 'dot' is not on PATH; install graphviz or use engine='matplotlib'")
    cmd = [dot, f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
    proc = subprocess.run(cmd, input=graph_to_dot(graph, rankdir, wrap=rankdir == "LR").encode("utf-8"), capture_output=True,
                          timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"dot -T{fmt} failed (exit {proc.returncode}): {err or 'no output'}")
    return proc.stdout


def draw_graph(graph: nx.MultiDiGraph, path: str | os.PathLike, engine: str = "auto", rankdir: str = "LR",
               dpi: int = 150, overwrite: bool = True) -> Path:
    """Write the graph to `path`: `.dot`/`.gv` as DOT text; `.svg`, `.png` or
    `.pdf` laid out by Graphviz's `dot` if it is on PATH (engine "auto" or
    "graphviz"), else by `layout` and matplotlib (engine "auto" or
    "matplotlib"); `.html` is always the interactive matplotlib SVG."""
    fmt = file_format(path)
    if engine not in ("auto", "graphviz", "matplotlib"):
        raise ValueError(f"engine must be 'auto', 'graphviz' or 'matplotlib', not {engine!r}")
    if fmt == "dot":
        dot = graph_to_dot(graph, rankdir, wrap=rankdir == "LR")
        return write_atomic_bytes(path, dot.encode("utf-8"), overwrite)
    use_dot = fmt != "html" and (engine == "graphviz" or engine == "auto" and shutil.which("dot") is not None)
    if use_dot:
        return write_atomic_bytes(path, _graphviz(graph, fmt, rankdir, dpi), overwrite)
    return GraphPicture(graph).save(path, dpi, overwrite)
