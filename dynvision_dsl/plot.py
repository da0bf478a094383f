"""Pictures of a compiled model: its graph (Graphviz DOT, or SVG/PNG drawn by
Graphviz when `dot` is installed and by matplotlib otherwise) and the time
courses of a run's responses and logits.

    m = dynvision_dsl.compile(text)
    draw_graph(m.graph, "model.svg")
    plot_responses(m.run(x), "responses.png", dt=m.dt, idle=m.idle)

Everything renders off screen (matplotlib's Agg canvas, never pyplot) and every
file is written atomically: a temporary file in the target's folder, then
`os.replace`.
"""
from __future__ import annotations

import ast
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from .ops import OPERATORS, OpError, resolve_defaults
from .util.files import atomic_open as _atomic  # the one atomic writer
from .values import fmt_number

__all__ = ["graph_to_dot", "draw_graph", "plot_responses", "short_pipeline"]

KINDS = ("feedforward", "skip", "feedback", "lateral", "readout")
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}
_ROLE_ORDER = {"input": 0, "area": 1, "readout": 2}

# one palette for both back ends
_COLORS = {"feedforward": "#000000", "skip": "#1f5fd6", "feedback": "#d62728", "lateral": "#808080",
           "readout": "#2e7d32"}
_DOT_EDGE = {
    "feedforward": 'color="#000000", style=solid, weight=4',
    "skip": 'color="#1f5fd6", fontcolor="#1f5fd6", style=dashed, weight=1',
    "feedback": 'color="#d62728", fontcolor="#d62728", style=dashed, constraint=false',
    "lateral": 'color="#808080", fontcolor="#606060", style=solid, constraint=false',
    "readout": 'color="#2e7d32", fontcolor="#2e7d32", style=solid, penwidth=1.4',
}
_DOT_NODE = {
    "input": 'fillcolor="#eeeeee"',
    "area": 'fillcolor="#e8f0fe"',
    "readout": 'fillcolor="#e6f4ea"',
}
_MPL_FILL = {"input": "#eeeeee", "area": "#e8f0fe", "readout": "#e6f4ea"}
_MPL_LINESTYLE = {"feedforward": "-", "skip": "--", "feedback": "--", "lateral": "-", "readout": "-"}


# ------------------------------------------------------------------ labels
def _natural_key(name: Any) -> tuple:
    parts = re.split(r"(\d+)", str(name))
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), str(name)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and brackets."""
    out, depth, cur, i = [], 0, [], 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if depth == 0 and text.startswith(sep, i):
            out.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return fmt_number(v)
    return str(v)


def _short_op(text: str) -> str:
    """One operator as the DSL would spell it: required arguments positional,
    optional ones only where they differ from their (resolved) default."""
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", text, re.S)
    if not m:
        return text.strip()
    name, inner = m.group(1), m.group(2)
    if not inner or not inner.strip():
        return name
    given: dict[str, Any] = {}
    positional: list[str] = []
    for part in _split_top(inner, ","):
        key, eq, value = part.partition("=")
        if eq and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", key):
            given[key.strip()] = _literal(value.strip())
        else:
            positional.append(part)
    opdef = OPERATORS.get(name)
    if opdef is None:
        return f"{name}({inner.strip()})"
    shown = list(positional)
    for arg in opdef.args:
        if arg.name not in given:
            continue
        value = given[arg.name]
        if arg.required:
            shown.append(_show(value))
            continue
        others = {k: v for k, v in given.items() if k != arg.name}
        try:
            default = resolve_defaults(opdef, others).get(arg.name, arg.default)
        except (OpError, TypeError, KeyError):
            default = arg.default
        if value != default or type(value) is not type(default) and not (
                isinstance(value, (int, float)) and isinstance(default, (int, float))):
            shown.append(f"{arg.name}={_show(value)}")
    known = {a.name for a in opdef.args}
    shown += [f"{k}={_show(v)}" for k, v in sorted(given.items()) if k not in known]
    return f"{name}({', '.join(shown)})" if shown else name


def short_pipeline(pipeline: str, width: int = 30, max_lines: int = 3) -> list[str]:
    """A connection's pipeline (`graph` edge attr `pipeline`) shortened for a
    label: defaults dropped (`conv(bias=True, ..., k=3, padding=1)` reads
    `conv(3)`), operators joined by ` | ` into lines of about `width`
    characters, at most `max_lines` lines (the rest elided with `…`)."""
    ops = [_short_op(p) for p in _split_top(pipeline or "", "|")]
    lines: list[str] = []
    for op in ops:
        if lines and len(lines[-1]) + 3 + len(op) <= width:
            lines[-1] += " | " + op
        else:
            lines.append(op)
    lines = [ln if len(ln) <= width + 12 else ln[: width + 11] + "…" for ln in lines]
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [f"… (+{len(lines) - max_lines + 1})"]
    return lines


def _delay_text(d: dict) -> str | None:
    delay = d.get("delay_ms") or 0.0
    return f"{fmt_number(float(delay))} ms" if delay > 0 else None


def _edge_lines(d: dict, width: int = 30) -> list[str]:
    lines = short_pipeline(str(d.get("pipeline") or ""), width)
    delay = _delay_text(d)
    if delay:
        lines.append(delay)
    port = d.get("port") or "input"
    if port != "input":
        lines.append(f"→ {port}")
    return lines


def _shape_text(shape) -> str | None:
    if shape is None:
        return None
    return "[" + ", ".join(str(int(s)) if isinstance(s, (int, np.integer)) else str(s) for s in shape) + "]"


def _node_lines(name: str, data: dict) -> list[str]:
    lines = [str(name)]
    shape = _shape_text(data.get("shape"))
    if shape:
        lines.append(shape)
    if data.get("tau"):
        lines.append(f"τ = {data['tau']}")
    return lines


def _role(data: dict) -> str:
    role = data.get("role", "area")
    return role if role in _ROLE_ORDER else "area"


def _kind(d: dict) -> str:
    kind = d.get("kind") or "feedforward"
    return kind if kind in _KIND_ORDER else "feedforward"


def _rank(data: dict) -> int:
    try:
        return int(data.get("rank", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _sorted_nodes(graph: nx.MultiDiGraph) -> list:
    return sorted(graph.nodes, key=lambda n: (_rank(graph.nodes[n]), _ROLE_ORDER[_role(graph.nodes[n])],
                                              _natural_key(n)))


def _sorted_edges(graph: nx.MultiDiGraph) -> list[tuple]:
    def key(e):
        u, v, k, d = e
        return (_rank(graph.nodes[u]), _rank(graph.nodes[v]), _KIND_ORDER[_kind(d)], _natural_key(u),
                _natural_key(v), str(d.get("index", k)), str(k))
    edges = graph.edges(keys=True, data=True) if graph.is_multigraph() else (
        (u, v, 0, d) for u, v, d in graph.edges(data=True))
    return sorted(edges, key=key)


# -------------------------------------------------------------------- DOT
def _q(text: Any) -> str:
    """A DOT quoted string; newlines become centred line breaks."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\n", "\\n") + '"'


def graph_to_dot(graph: nx.MultiDiGraph, rankdir: str = "LR") -> str:
    """The model graph as Graphviz DOT text: nodes labelled with name, shape and
    time constant, areas of equal `rank` on one rank; edges labelled with the
    shortened pipeline, the delay when > 0 and `→ port` for a port other than
    `input`, styled by kind (feedforward solid black, skip dashed blue,
    feedback dashed red without rank constraint, lateral gray, readout green).
    Deterministic: nodes and edges sorted, nothing time-dependent."""
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be LR, TB, RL or BT, not {rankdir!r}")
    name = graph.graph.get("name") or "model"
    out = [f"digraph {_q(name)} {{",
           f"  graph [rankdir={rankdir}, newrank=true, splines=true, nodesep=0.4, ranksep=0.7, "
           f'fontname="Helvetica", labelloc=t, label={_q(name)}];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
           'color="#333333", margin="0.12,0.06"];',
           '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.7];']
    nodes = _sorted_nodes(graph)
    for n in nodes:
        data = graph.nodes[n]
        out.append(f"  {_q(n)} [label={_q(chr(10).join(_node_lines(n, data)))}, {_DOT_NODE[_role(data)]}];")
    ranks: dict[int, list] = {}
    for n in nodes:
        ranks.setdefault(_rank(graph.nodes[n]), []).append(n)
    for r in sorted(ranks):
        if len(ranks[r]) > 1:
            out.append(f"  {{ rank=same; {' '.join(_q(n) + ';' for n in ranks[r])} }}")
    for u, v, _, d in _sorted_edges(graph):
        kind = _kind(d)
        label = "\n".join(_edge_lines(d))
        attrs = [f"label={_q(label)}"] if label else []
        attrs.append(_DOT_EDGE[kind])
        if _role(graph.nodes[v]) == "area" and (d.get("port") or "input") != "input":
            attrs.append("arrowhead=empty")
        out.append(f"  {_q(u)} -> {_q(v)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _new_figure(width: float, height: float, dpi: float = 100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


# ----------------------------------------------------------- draw_graph
_FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf"}


def draw_graph(graph: nx.MultiDiGraph, path: str | os.PathLike, engine: str = "auto", rankdir: str = "LR",
               dpi: int = 150) -> Path:
    """Write the graph to `path`: `.dot`/`.gv` as DOT text (`graph_to_dot`);
    `.svg`, `.png` or `.pdf` rendered by Graphviz's `dot` if it is on PATH
    (engine "auto" or "graphviz"), else drawn with matplotlib (engine "auto" or
    "matplotlib"). Returns the path."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot draw to '{path.name}': use a .dot, .svg, .png or .pdf file")
    if engine not in ("auto", "graphviz", "matplotlib"):
        raise ValueError(f"engine must be 'auto', 'graphviz' or 'matplotlib', not {engine!r}")
    if fmt == "dot":
        with _atomic(path) as fh:
            fh.write(graph_to_dot(graph, rankdir).encode("utf-8"))
        return path
    dot = shutil.which("dot") if engine in ("auto", "graphviz") else None
    if engine == "graphviz" and dot is None:
        raise RuntimeError("Graphviz's 'dot' is not on PATH; install graphviz or use engine='matplotlib'")
    if dot is not None:
        cmd = [dot, f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
        proc = subprocess.run(cmd, input=graph_to_dot(graph, rankdir).encode("utf-8"), capture_output=True,
                              timeout=120)
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RuntimeError(f"dot -T{fmt} failed (exit {proc.returncode}): {err or 'no output'}")
        with _atomic(path) as fh:
            fh.write(proc.stdout)
        return path
    import matplotlib

    # stable ids (equal graphs, equal files); names and spec lines are text, never mathtext ('$')
    with matplotlib.rc_context({"svg.hashsalt": "dynvision-dsl", "text.parse_math": False}):
        fig = _draw_matplotlib(graph)
        dpi = min(dpi, 30000 / max(fig.get_figwidth(), fig.get_figheight()))
        with _atomic(path) as fh:
            fig.savefig(fh, format=fmt, dpi=dpi, facecolor="white", metadata=_metadata(fmt))
    return path


def _metadata(fmt: str) -> dict:
    """No dates or software versions, so equal graphs give equal files."""
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    if fmt == "pdf":
        return {"CreationDate": None, "Creator": None, "Producer": None}
    if fmt == "png":
        return {"Software": None}
    return {}


# geometry of the matplotlib drawing, in inches (one data unit = one inch)
_NAME_FS, _INFO_FS, _EDGE_FS, _TITLE_FS = 8.0, 7.0, 6.0, 9.0
_PAD_X, _PAD_Y = 0.10, 0.07
_LOOP_H = 0.16  # height of a lateral self-loop above its box


class _Measure:
    """Text extents in inches, measured with the Agg renderer."""

    def __init__(self, fig):
        from matplotlib.font_manager import FontProperties

        self.renderer = fig.canvas.get_renderer()
        self.dpi = fig.dpi
        self._props = {}
        self._fp = FontProperties

    def width(self, text: str, size: float, bold: bool = False) -> float:
        key = (size, bold)
        if key not in self._props:
            self._props[key] = self._fp(size=size, weight="bold" if bold else "normal")
        w, _, _ = self.renderer.get_text_width_height_descent(text or " ", self._props[key], ismath=False)
        return w / self.dpi

    def block(self, lines: list[str], size: float) -> tuple[float, float]:
        return (max((self.width(ln, size) for ln in lines), default=0.0), len(lines) * size * 1.25 / 72)


def _order_columns(graph, columns: list[list]) -> list[list]:
    """Barycentre sweeps (deterministic) to keep crossings down."""
    col_of = {n: i for i, col in enumerate(columns) for n in col}
    nbrs: dict[Any, set] = {n: set() for n in col_of}
    for u, v, _, d in _sorted_edges(graph):
        if u != v and col_of[u] != col_of[v]:
            nbrs[u].add(v)
            nbrs[v].add(u)

    def pos(col):
        return {n: i - (len(col) - 1) / 2 for i, n in enumerate(col)}

    where: dict[Any, float] = {}
    for col in columns:
        where.update(pos(col))
    for _ in range(3):
        for sweep in (range(1, len(columns)), range(len(columns) - 2, -1, -1)):
            for i in sweep:
                side = (lambda j: j < i) if sweep.step == 1 else (lambda j: j > i)

                def bary(n):
                    ws = [where[m] for m in nbrs[n] if side(col_of[m])]
                    return sum(ws) / len(ws) if ws else where[n]
                columns[i] = sorted(columns[i], key=lambda n: (bary(n), _natural_key(n)))
                where.update(pos(columns[i]))
    return columns


def _draw_matplotlib(graph: nx.MultiDiGraph):
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = _new_figure(6, 4)
    meas = _Measure(fig)

    # --- columns by rank, boxes sized to their labels
    ranks = sorted({_rank(graph.nodes[n]) for n in graph.nodes})
    col_index = {r: i for i, r in enumerate(ranks)}
    columns: list[list] = [[] for _ in ranks]
    for n in _sorted_nodes(graph):
        columns[col_index[_rank(graph.nodes[n])]].append(n)
    columns = _order_columns(graph, columns)
    col_of = {n: i for i, col in enumerate(columns) for n in col}

    lines = {n: _node_lines(n, graph.nodes[n]) for n in graph.nodes}
    size = {}
    for n, ls in lines.items():
        w = max([meas.width(ls[0], _NAME_FS, bold=True)] + [meas.width(s, _INFO_FS) for s in ls[1:]])
        h = (_NAME_FS + _INFO_FS * (len(ls) - 1)) * 1.3 / 72
        size[n] = (w + 2 * _PAD_X, h + 2 * _PAD_Y)
    box_h = max((h for _, h in size.values()), default=0.4)
    col_w = [max([size[n][0] for n in col] + [0.6]) for col in columns]

    edges = _sorted_edges(graph)
    labels = {(u, v, k): _edge_lines(d, width=26) for u, v, k, d in edges}
    port_edge = {(u, v, k): (d.get("port") or "input") != "input" for u, v, k, d in edges}
    lat_text: dict[Any, list[str]] = {}
    for u, v, k, d in edges:
        if u == v:
            lat_text.setdefault(u, []).append(" · ".join(labels[(u, v, k)]))
    lat_h = max((_LOOP_H + meas.block(t, _EDGE_FS)[1] + 0.04 for t in lat_text.values()), default=0.0)

    # --- column gaps wide enough for the labels of edges between neighbours
    gaps = [0.55] * max(len(columns) - 1, 0)
    for u, v, k, d in edges:
        i, j = sorted((col_of[u], col_of[v]))
        if j - i == 1 and abs(col_of[u] - col_of[v]) == 1 and _kind(d) != "feedback":
            gaps[i] = max(gaps[i], meas.block(labels[(u, v, k)], _EDGE_FS)[0] + 0.3)
    for n, t in lat_text.items():  # a lateral label may be wider than its box
        over = meas.block(t, _EDGE_FS)[0] - col_w[col_of[n]]
        for i in (col_of[n] - 1, col_of[n]):
            if 0 <= i < len(gaps):
                gaps[i] = max(gaps[i], over / 2 + 0.15)
    for i in range(len(gaps)):  # two wide lateral labels on neighbours
        a, b = columns[i], columns[i + 1]
        wa = max((meas.block(lat_text[n], _EDGE_FS)[0] for n in a if n in lat_text), default=0)
        wb = max((meas.block(lat_text[n], _EDGE_FS)[0] for n in b if n in lat_text), default=0)
        if wa and wb:
            gaps[i] = max(gaps[i], (wa - col_w[i]) / 2 + (wb - col_w[i + 1]) / 2 + 0.15)

    xs, x = [], 0.0
    for i, w in enumerate(col_w):
        if i:
            x += col_w[i - 1] / 2 + gaps[i - 1] + w / 2
        xs.append(x)
    pitch = box_h + 0.35 + lat_h
    pos = {}
    for i, col in enumerate(columns):
        for j, n in enumerate(col):
            pos[n] = (xs[i], ((len(col) - 1) / 2 - j) * pitch)

    # --- geometry of every edge first, to know the extent of the drawing
    lateral_above = {n for n in lat_text}
    rects = {n: (pos[n][0] - col_w[col_of[n]] / 2, pos[n][0] + col_w[col_of[n]] / 2, pos[n][1] - box_h / 2,
                 pos[n][1] + box_h / 2 + (lat_h if n in lateral_above else 0.0)) for n in pos}

    def anchors(u, v, side: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Where an arc leaves u and enters v: the top (side +1) or bottom (-1)
        of the boxes, a quarter of a box towards each other."""
        (x1, y1), (x2, y2) = pos[u], pos[v]
        sgn = 1 if x2 > x1 else -1
        return ((x1 + sgn * col_w[col_of[u]] / 4, y1 + side * box_h / 2),
                (x2 - sgn * col_w[col_of[v]] / 4, y2 + side * box_h / 2))

    def bow(u, v, side: int) -> float:
        """How far (vertically, at the middle) an arc from u to v must bow to
        `side` (+1 up, -1 down) to pass the boxes of the columns in between."""
        (x1, y1), (x2, y2) = anchors(u, v, side)
        lo_c, hi_c = sorted((col_of[u], col_of[v]))
        need = 0.2
        for n in pos:
            if n in (u, v) or not lo_c < col_of[n] < hi_c:
                continue
            xa, xb, ya, yb = rects[n]
            for xe in (xa, xb):
                t = min(max((xe - x1) / (x2 - x1), 0.02), 0.98)
                yl = y1 + t * (y2 - y1)
                gap = (yb + 0.1 - yl) if side > 0 else (yl - (ya - 0.1))
                if gap > 0:
                    need = max(need, gap / (4 * t * (1 - t)))
        return need

    spans_of: dict[str, list[tuple[int, int]]] = {"skip": [], "feedback": []}
    for u, v, k, d in edges:
        if _kind(d) in spans_of and u != v:
            spans_of[_kind(d)].append(tuple(sorted((col_of[u], col_of[v]))))
    seen: dict[tuple, int] = {}
    plan = []  # (u, v, k, kind, rad, (label x, label y, above), arc ends or None)
    for u, v, k, d in edges:
        kind = _kind(d)
        if u == v:
            plan.append((u, v, k, kind, None, None, None))
            continue
        (x1, y1), (x2, y2) = pos[u], pos[v]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1.0
        nth = seen.get((u, v), 0)
        seen[(u, v)] = nth + 1
        span = abs(col_of[v] - col_of[u])
        if span == 0:  # between areas of one rank: a gentle bow sideways
            rad = -0.35 - 0.12 * nth
        elif kind in ("skip", "feedback") or span > 1:
            # skips bow over, feedback under the boxes in between (or the other
            # way where that is much shorter), higher for longer spans
            side = 1 if kind != "feedback" else -1
            want, other = bow(u, v, side), bow(u, v, -side)
            lo_c, hi_c = sorted((col_of[u], col_of[v]))
            crowded = any(max(lo_c, a) < min(hi_c, b) for a, b in spans_of[
                "skip" if kind == "feedback" else "feedback"])  # the other side is taken
            if other < 0.6 * want and not crowded:
                side, want = -side, other
            vert = want + 0.07 * max(span - 2, 0) + 0.12 * nth  # vertical offset at the middle
            (x1, y1), (x2, y2) = anchors(u, v, side)
            dx, dy = x2 - x1, y2 - y1
            rad = -side * (1 if dx > 0 else -1) * min(2 * vert / abs(dx), 1.5)
            plan.append((u, v, k, kind, rad, ((x1 + x2) / 2 + 0.5 * rad * dy, (y1 + y2) / 2 - 0.5 * rad * dx, False),
                         ((x1, y1), (x2, y2))))
            continue
        else:
            rad = -0.18 * nth if nth else 0.0
        if rad:
            plan.append((u, v, k, kind, rad, ((x1 + x2) / 2 + 0.5 * rad * dy, (y1 + y2) / 2 - 0.5 * rad * dx, False),
                         None))
            continue
        # a straight arrow: label the middle of its visible part, above it when horizontal
        sgn = 1 if dx > 0 else -1
        xa, xb = x1 + sgn * col_w[col_of[u]] / 2, x2 - sgn * col_w[col_of[v]] / 2
        xm = (xa + xb) / 2
        ym = y1 + (xm - x1) / dx * dy
        plan.append((u, v, k, kind, 0.0, (xm, ym, abs(dy) < 1e-9), None))

    def label_box_of(u, v, k, xy):
        w, h = meas.block(labels[(u, v, k)], _EDGE_FS)
        x, y, above = xy
        return (x - w / 2, x + w / 2, y, y + h + 0.04) if above else (x - w / 2, x + w / 2, y - h / 2, y + h / 2)

    extents = [label_box_of(u, v, k, xy) for u, v, k, _, _, xy, _ in plan if xy and labels[(u, v, k)]]
    extents += list(rects.values())
    for n, t in lat_text.items():
        w = meas.block(t, _EDGE_FS)[0]
        extents.append((pos[n][0] - w / 2, pos[n][0] + w / 2, pos[n][1], pos[n][1] + box_h / 2 + lat_h))
    for u, v, k, _, rad, xy, _ in plan:  # arcs without a label still need room
        if rad:
            extents.append((xy[0], xy[0], xy[1] - 0.05, xy[1] + 0.05))
    lo_x = min(e[0] for e in extents) - 0.25
    hi_x = max(e[1] for e in extents) + 0.25
    lo_y = min(e[2] for e in extents) - 0.2
    hi_y = max(e[3] for e in extents) + 0.2
    kinds = [k for k in KINDS if any(_kind(d) == k for *_, d in edges)]
    header = 0.5
    width = max(hi_x - lo_x, 1.1 * len(kinds) + 1.5, 4.0)
    height = (hi_y - lo_y) + header
    if width > hi_x - lo_x:  # centre a narrow drawing
        extra = width - (hi_x - lo_x)
        lo_x, hi_x = lo_x - extra / 2, hi_x + extra / 2
    fig.set_size_inches(width, height)
    ax = fig.add_axes((0, 0, 1, (hi_y - lo_y) / height))
    ax.set_xlim(lo_x, hi_x)
    ax.set_ylim(lo_y, hi_y)
    ax.set_axis_off()

    # --- boxes
    boxes = {}
    for n in _sorted_nodes(graph):
        (x, y), w = pos[n], col_w[col_of[n]]
        box = FancyBboxPatch((x - w / 2, y - box_h / 2), w, box_h, boxstyle="round,pad=0,rounding_size=0.07",
                             fc=_MPL_FILL[_role(graph.nodes[n])], ec="#333333", lw=0.8, zorder=3)
        ax.add_patch(box)
        boxes[n] = box
        ls = lines[n]
        total = (_NAME_FS + _INFO_FS * (len(ls) - 1)) * 1.3 / 72
        cy = y + total / 2 - _NAME_FS * 1.3 / 72 / 2
        ax.text(x, cy, ls[0], ha="center", va="center", fontsize=_NAME_FS, fontweight="bold", zorder=4)
        cy -= (_NAME_FS + _INFO_FS) * 1.3 / 72 / 2
        for s in ls[1:]:
            ax.text(x, cy, s, ha="center", va="center", fontsize=_INFO_FS, color="#333333", zorder=4)
            cy -= _INFO_FS * 1.3 / 72

    # --- edges
    label_box = dict(boxstyle="round,pad=0.12", fc="white", ec="none")
    tight_box = dict(boxstyle="square,pad=0.05", fc="white", ec="none")
    loops_done = set()
    for u, v, k, kind, rad, xy, ends in plan:
        color = _COLORS[kind]
        if u == v:
            if u in loops_done:
                continue
            loops_done.add(u)
            x, y = pos[u]
            half = min(0.16, size[u][0] / 4)
            top = y + box_h / 2
            ax.add_patch(FancyArrowPatch((x - half, top), (x + half, top), connectionstyle="arc3,rad=-1.0",
                                         arrowstyle="-|>", mutation_scale=7, color=color, lw=0.9, zorder=2,
                                         shrinkA=0, shrinkB=0))
            ax.text(x, top + _LOOP_H + 0.02, "\n".join(lat_text[u]), ha="center", va="bottom",
                    fontsize=_EDGE_FS, color="#555555", zorder=5, linespacing=1.1, bbox=tight_box)
            continue
        style = "arc3" if not rad else f"arc3,rad={rad:.3f}"
        ends_kw = dict(posA=ends[0], posB=ends[1]) if ends else dict(posA=pos[u], posB=pos[v], patchA=boxes[u],
                                                                      patchB=boxes[v])
        ax.add_patch(FancyArrowPatch(**ends_kw, connectionstyle=style,
                                     arrowstyle="->" if port_edge[(u, v, k)] else "-|>", mutation_scale=9,
                                     color=color,
                                     linestyle=_MPL_LINESTYLE[kind], lw=1.3 if kind == "readout" else 1.0,
                                     shrinkA=1.5, shrinkB=1.5, zorder=2))
        text = labels[(u, v, k)]
        if text:
            above = xy[2]  # a straight horizontal arrow
            ax.text(xy[0], xy[1] + (0.035 if above else 0.0), "\n".join(text), ha="center",
                    va="bottom" if above else "center", fontsize=_EDGE_FS,
                    color=color if kind != "feedforward" else "#222222", bbox=tight_box if above else label_box,
                    zorder=5, linespacing=1.1)

    # --- title and legend in the header strip
    top = 1 - 0.1 / height
    fig.text(0.1 / width, top, str(graph.graph.get("name") or "model"), ha="left", va="top",
             fontsize=_TITLE_FS, fontweight="bold")
    handles = []
    for kind in kinds:
        if kind == "lateral":
            h = Line2D([], [], color=_COLORS[kind], lw=1.0, marker="o", mfc="none", markersize=5,
                       label="lateral (self-loop)")
        else:
            h = Line2D([], [], color=_COLORS[kind], lw=1.3, linestyle=_MPL_LINESTYLE[kind], label=kind)
        handles.append(h)
    if handles:
        fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1 - 0.05 / width, top + 0.04 / height),
                   ncol=len(handles), fontsize=_INFO_FS, frameon=False, handlelength=2.2, columnspacing=1.0,
                   borderaxespad=0.0)
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
    logits = _numpy(result.logits)
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

    if logits.ndim == 3 and logits.shape[0] > 0:
        lg = logits[0].astype(np.float64)
        silent = np.all(lg == 0, axis=1)
        lg[silent] = np.nan
        t = np.arange(lg.shape[0]) * dt
        colors = _palette(lg.shape[1])
        for c in range(lg.shape[1]):
            ax_l.plot(t, lg[:, c], color=colors[c], lw=1.0, marker="o", markersize=1.6,
                      label=str(c) if lg.shape[1] <= 20 else None)
        if lg.shape[1] <= 20:
            ax_l.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6.5, frameon=False,
                        ncol=1 if lg.shape[1] <= 10 else 2, title="class", title_fontsize=7.5)
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
    with _atomic(path) as fh:
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
