"""Geometry of the connectivity drawing, in inches with y pointing down.

Areas stand in columns by rank; the columns wrap into rows (like lines of
text) until the drawing fits a page. A connection between neighbouring
columns of one row is a straight arrow; every other one leaves its box at the
top or bottom into the horizontal channel between rows, runs in a lane of its
own there (skips above a row, feedback below it, wraps between rows; jumps of
more than one row go down the left or up the right margin) and enters its
target from the channel, so no edge crosses a box and no label sits on one.
Self-connections are a small loop on the box and a `↻` line inside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from . import labels as L

INFO_FS, EDGE_FS, TITLE_FS = 7.0, 6.5, 9.0  # box names: INFO_FS + 1, bold
PAD_X, PAD_Y = 0.10, 0.06
MIN_GAP = 0.45      # between neighbouring columns
STACK_GAP = 0.30    # between boxes of one column
LANE_MIN = 0.13     # pitch of a lane without a label
CLEAR = 0.12        # between a row's boxes and the first lane of a channel
ROW_CHANNEL = 0.40  # least height of a channel between two rows
MARGIN_LANE = 0.14  # pitch of the vertical lanes in the side margins
SIDE_LANE = 0.09    # pitch of the vertical lanes beside a column, for boxes inside a stack
EDGE = 0.15         # blank border around everything


@dataclass
class Text:
    """Centred multi-line text; `w`, `h` measured with the Agg renderer."""

    lines: list[str]
    x: float
    y: float
    w: float
    h: float
    size: float
    color: str = "#222222"
    bold_first: bool = False
    tip: str | None = None
    background: bool = False

    def bbox(self) -> tuple[float, float, float, float]:
        return (self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2)


@dataclass
class Box:
    name: Any
    role: str
    x0: float
    y0: float
    x1: float
    y1: float
    text: Text
    tip: str

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass
class Route:
    """A connection drawn as a path: `points` joined by straight segments, or a
    cubic Bézier when `curve` (4 points); `open_head` for a port other than input."""

    points: list[tuple[float, float]]
    kind: str
    tip: str
    label: Text | None = None
    curve: bool = False
    open_head: bool = False
    ends: tuple = ()  # (source, target)


@dataclass
class Drawing:
    title: str
    width: float
    height: float
    boxes: list[Box]
    routes: list[Route]
    kinds: list[str]
    rows: int
    header: float = 0.0
    legend: list[tuple[str, float, float]] = field(default_factory=list)  # (kind or "", x, y) samples
    texts: list[Text] = field(default_factory=list)  # title, legend words

    def all_texts(self) -> list[Text]:
        return [b.text for b in self.boxes] + [r.label for r in self.routes if r.label] + self.texts


class Measure:
    """Text extents in inches, measured with the Agg renderer."""

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.font_manager import FontProperties

        fig = Figure(figsize=(4, 3), dpi=100)
        self.renderer = FigureCanvasAgg(fig).get_renderer()
        self._fp = FontProperties
        self._props: dict = {}
        self._cache: dict = {}

    def width(self, text: str, size: float, bold: bool = False) -> float:
        key = (text, size, bold)
        if key not in self._cache:
            if (size, bold) not in self._props:
                self._props[(size, bold)] = self._fp(size=size, weight="bold" if bold else "normal")
            w, _, _ = self.renderer.get_text_width_height_descent(text or " ", self._props[(size, bold)],
                                                                  ismath=False)
            self._cache[key] = w / 100
        return self._cache[key]

    def text(self, lines: list[str], size: float, bold_first: bool = False, **kw) -> Text:
        """A Text at (0, 0) with its measured size (1.25 line spacing)."""
        sizes = [size + 1.0 if bold_first and i == 0 else size for i in range(len(lines))]
        w = max((self.width(s, z, bold_first and i == 0) for i, (s, z) in enumerate(zip(lines, sizes))), default=0.0)
        return Text(list(lines), 0.0, 0.0, w, sum(sizes) * 1.25 / 72, size, bold_first=bold_first, **kw)


# ----------------------------------------------------------------- inputs
@dataclass
class _Plan:
    """What the layout needs of a graph, independent of the row breaks."""

    graph: nx.MultiDiGraph
    columns: list[list]
    col_of: dict
    box_text: dict
    col_w: list[float]
    box_h: float
    gaps: list[float]
    edges: list[tuple]
    edge_text: dict
    loops: dict

    def stack_h(self, col: int) -> float:
        n = len(self.columns[col])
        return n * self.box_h + (n - 1) * STACK_GAP


def _order_columns(graph, columns: list[list]) -> list[list]:
    """Barycentre sweeps (deterministic) to keep crossings down."""
    col_of = {n: i for i, col in enumerate(columns) for n in col}
    nbrs: dict[Any, set] = {n: set() for n in col_of}
    for u, v, _, _ in L.sorted_edges(graph):
        if col_of[u] != col_of[v]:
            nbrs[u].add(v)
            nbrs[v].add(u)
    where = {n: i for col in columns for i, n in enumerate(col)}
    for _ in range(3):
        for i in list(range(1, len(columns))) + list(range(len(columns) - 2, -1, -1)):
            def bary(n):
                ws = [where[m] for m in sorted(nbrs[n], key=L.natural_key)]
                return sum(ws) / len(ws) if ws else where[n]
            columns[i] = sorted(columns[i], key=lambda n: (bary(n), L.natural_key(n)))
            where.update({n: j for j, n in enumerate(columns[i])})
    return columns


def _plan(graph: nx.MultiDiGraph, meas: Measure) -> _Plan:
    dt = graph.graph.get("dt")
    ranks = sorted({L.rank(graph.nodes[n]) for n in graph.nodes})
    columns: list[list] = [[] for _ in ranks]
    for n in L.sorted_nodes(graph):
        columns[ranks.index(L.rank(graph.nodes[n]))].append(n)
    columns = _order_columns(graph, columns)
    col_of = {n: i for i, col in enumerate(columns) for n in col}
    edges = L.sorted_edges(graph)
    loops: dict[Any, list[str]] = {}
    for u, v, _, d in edges:
        if u == v:
            loops.setdefault(u, []).append(L.lateral_line(d))
    box_text = {}
    for n in graph.nodes:
        lines = L.node_lines(n, graph.nodes[n]) + L.loop_lines(loops.get(n, []))
        box_text[n] = meas.text(lines, INFO_FS, bold_first=True, tip=L.node_tooltip(n, graph.nodes[n], dt))
    edge_text = {}
    for u, v, k, d in edges:
        if u != v:
            color = "#222222" if L.kind(d) == "feedforward" else L.COLORS[L.kind(d)]
            edge_text[(u, v, k)] = meas.text(L.edge_lines(d), EDGE_FS, color=color, background=True,
                                             tip=L.edge_tooltip(u, v, d, dt))
    col_w = [max(box_text[n].w + 2 * PAD_X for n in col) for col in columns]
    straight_h = max((t.h for (u, v, _), t in edge_text.items() if col_of[v] == col_of[u] + 1), default=0.0)
    box_h = max([t.h + 2 * PAD_Y for t in box_text.values()] + [2 * straight_h + 0.2, 0.36])
    gaps = [MIN_GAP] * max(len(columns) - 1, 0)
    for (u, v, _), t in edge_text.items():
        i = col_of[u]
        if col_of[v] == i + 1:
            gaps[i] = max(gaps[i], t.w + 0.3)
        elif col_of[v] == i and i < len(gaps):  # a bow to the right between areas of one rank
            gaps[i] = max(gaps[i], t.w + 0.55)
    return _Plan(graph, columns, col_of, box_text, col_w, box_h, gaps, edges, edge_text, loops)



# ----------------------------------------------------------- row breaks
def partition(widths: list[float], gaps: list[float], rows: int) -> list[tuple[int, int]]:
    """Split columns into `rows` contiguous runs (start, end exclusive) that
    minimise the widest run (a run's width counts the gaps inside it)."""
    n = len(widths)
    rows = max(1, min(rows, n))

    def run(i, j):
        return sum(widths[i:j]) + sum(gaps[i:j - 1])

    best = {(0, 0): (0.0, [])}
    for r in range(1, rows + 1):
        for j in range(r, n - (rows - r) + 1):
            options = [(max(best[(r - 1, i)][0], run(i, j)), best[(r - 1, i)][1] + [(i, j)])
                       for i in range(r - 1, j) if (r - 1, i) in best]
            best[(r, j)] = min(options, key=lambda o: (o[0], [s for s, _ in o[1]]))
    return best[(rows, n)][1]


# -------------------------------------------------------------- placing
@dataclass
class _Hop:
    """The horizontal part of a routed edge inside one channel."""

    edge: tuple
    channel: int
    x_a: float
    x_b: float
    pref: str  # "upper", "middle" or "lower": which side of the channel it hugs
    label: Text | None = None
    lane: int = 0
    y: float = 0.0

    def interval(self) -> tuple[float, float]:
        lo, hi = sorted((self.x_a, self.x_b))
        if self.label is not None:
            mid = (self.x_a + self.x_b) / 2
            lo, hi = min(lo, mid - self.label.w / 2 - 0.06), max(hi, mid + self.label.w / 2 + 0.06)
        return lo - 0.05, hi + 0.05


def _assign_lanes(hops: list[_Hop]) -> list[list[_Hop]]:
    """First fit, shortest first, per preference group; returns lanes in channel order (top to bottom)."""
    ordered: list[list[_Hop]] = []
    for pref in ("upper", "middle", "lower"):
        lanes: list[list[_Hop]] = []
        # skips and feedback nest (shortest nearest the boxes); wraps between rows keep their left-right order
        key = (lambda h: (h.x_a, str(h.edge))) if pref == "middle" else (
            lambda h: (h.interval()[1] - h.interval()[0], h.interval()[0], str(h.edge)))
        group = sorted((h for h in hops if h.pref == pref), key=key)
        for h in group:
            lo, hi = h.interval()
            for lane in lanes:
                if all(hi <= o.interval()[0] or lo >= o.interval()[1] for o in lane):
                    lane.append(h)
                    break
            else:
                lanes.append([h])
        ordered += lanes if pref != "lower" else lanes[::-1]
    return ordered


def _lane_pitch(lane: list[_Hop]) -> float:
    return max([LANE_MIN] + [h.label.h + 0.08 for h in lane if h.label is not None])


def place(p: _Plan, runs: list[tuple[int, int]], meas: Measure, title: str) -> Drawing:
    """The drawing for one choice of row breaks."""
    row_of_col = {c: r for r, (i, j) in enumerate(runs) for c in range(i, j)}
    spec = _route_kinds(p, {n: row_of_col[c] for n, c in p.col_of.items()})
    sides = _side_lanes(p, spec)
    n_left = sum(1 for s in spec.values() if s[4] == "left")
    col_x = _columns_x(p, runs, sides, EDGE + n_left * MARGIN_LANE + (0.1 if n_left else 0.0))
    margin_x = _margins(p, spec, sides, col_x)
    attach = _attachments(p, spec, col_x, margin_x, sides)
    hops = _hops(p, spec, attach, margin_x)
    channels: list[list[_Hop]] = [[] for _ in range(len(runs) + 1)]
    for h in hops:
        channels[h.channel].append(h)
    row_top = _stack_rows(p, runs, [_assign_lanes(hs) for hs in channels])
    boxes = _boxes(p, runs, row_of_col, row_top, col_x)
    by_edge: dict[tuple, list[_Hop]] = {}
    for h in hops:
        by_edge.setdefault(h.edge, []).append(h)
    routes = _routes(_Routing(p, spec, boxes, attach, by_edge, sides))
    return _frame(p, title, boxes, routes, len(runs), meas)


def _margins(p: _Plan, spec: dict, sides, col_x: dict) -> dict:
    """x of the vertical lane in the left (forward) or right (backward) margin of
    each edge that jumps more than one row."""
    x_left = min(col_x[c] - p.col_w[c] / 2 - sides.width(c, "left") for c in col_x)
    right = max(col_x[c] + p.col_w[c] / 2 + sides.width(c, "right") for c in col_x)
    out, n = {}, {"left": 0, "right": 0}
    for e, s in spec.items():
        if s[4] in n:
            i = n[s[4]]
            n[s[4]] += 1
            out[e] = x_left - 0.1 - (i + 0.5) * MARGIN_LANE if s[4] == "left" else right + 0.1 + (i + 0.5) * MARGIN_LANE
    return out


def _stack_rows(p: _Plan, runs: list[tuple[int, int]], lanes: list[list[list[_Hop]]]) -> list[float]:
    """y of every lane (set on its hops) and the top of every row: channel 0, row 0, channel 1, ..."""
    y, row_top = 0.0, []
    for r in range(len(runs) + 1):
        inner = sum(_lane_pitch(lane) for lane in lanes[r])
        h = inner + 2 * CLEAR if inner else CLEAR
        if 0 < r < len(runs):
            h = max(h, ROW_CHANNEL)
        off = y + (h - inner) / 2
        for lane in lanes[r]:
            for hop in lane:
                hop.y = off + _lane_pitch(lane) / 2
            off += _lane_pitch(lane)
        y += h
        if r < len(runs):
            row_top.append(y)
            y += max(p.stack_h(c) for c in range(*runs[r]))
    return row_top


def _boxes(p: _Plan, runs, row_of_col: dict, row_top: list[float], col_x: dict) -> dict:
    """Each node's box, its stack centred in its row."""
    boxes = {}
    for c, col in enumerate(p.columns):
        r = row_of_col[c]
        row_h = max(p.stack_h(k) for k in range(*runs[r]))
        for j, n in enumerate(col):
            cy = row_top[r] + row_h / 2 + (j - (len(col) - 1) / 2) * (p.box_h + STACK_GAP)
            t = p.box_text[n]
            t.x, t.y = col_x[c], cy
            boxes[n] = Box(n, L.role(p.graph.nodes[n]), col_x[c] - p.col_w[c] / 2, cy - p.box_h / 2,
                           col_x[c] + p.col_w[c] / 2, cy + p.box_h / 2, t, t.tip or "")
    return boxes


@dataclass
class _Sides:
    """Channel edges of a box inside a stack (not its top or bottom) leave or enter
    sideways, through a vertical lane beside the column: `port[(edge, end)]` is
    (side, lane index), `count[(column, side)]` the lanes there."""

    port: dict
    count: dict

    def width(self, col: int, side: str) -> float:
        n = self.count.get((col, side), 0)
        return 0.04 + n * SIDE_LANE if n else 0.0

    def lane_x(self, p: _Plan, col_x: dict, col: int, side: str, i: int) -> float:
        edge = col_x[col] + (p.col_w[col] / 2 if side == "right" else -p.col_w[col] / 2)
        return edge + (0.04 + (i + 0.5) * SIDE_LANE) * (1 if side == "right" else -1)


def _side_lanes(p: _Plan, spec: dict) -> _Sides:
    port: dict = {}
    count: dict = {}
    for e, (how, s_out, s_in, _, _) in spec.items():
        if how != "channel":
            continue
        u, v, _ = e
        forward = p.col_of[v] > p.col_of[u]
        for end, n, s, side in ((0, u, s_out, "right" if forward else "left"),
                                (1, v, s_in, "left" if forward else "right")):
            col = p.columns[p.col_of[n]]
            i = col.index(n)
            if s == "top" and i > 0 or s == "bottom" and i < len(col) - 1:
                key = (p.col_of[n], side)
                port[(e, end)] = (side, count.get(key, 0))
                count[key] = count.get(key, 0) + 1
    return _Sides(port, count)


def _columns_x(p: _Plan, runs: list[tuple[int, int]], sides: _Sides, x_left: float) -> dict:
    """Centre x of each column: rows start at `x_left`; side lanes widen the gaps."""
    col_x = {}
    for i, j in runs:
        x = x_left
        for c in range(i, j):
            x += sides.width(c, "left")
            col_x[c] = x + p.col_w[c] / 2
            x += p.col_w[c] + sides.width(c, "right") + (p.gaps[c] if c < j - 1 else 0.0)
    return col_x


def _route_kinds(p: _Plan, row_of: dict) -> dict:
    """Per edge: (how, exit side, entry side, channels, margin) with how in
    straight/bow/loop/channel."""
    out, straight = {}, {}
    for u, v, k, d in p.edges:
        e = (u, v, k)
        cu, cv, ru, rv = p.col_of[u], p.col_of[v], row_of[u], row_of[v]
        if u == v:
            out[e] = ("loop", None, None, [], None)
        elif cu == cv:
            out[e] = ("bow", None, None, [], None)
        elif ru == rv and cv == cu + 1 and straight.get((u, v), 0) < 2:  # a third parallel one takes the channel
            straight[(u, v)] = straight.get((u, v), 0) + 1
            out[e] = ("straight", None, None, [], None)
        elif ru == rv:
            out[e] = ("channel", "top", "top", [ru], None) if cv > cu else ("channel", "bottom", "bottom", [ru + 1], None)
        elif rv == ru + 1:
            out[e] = ("channel", "bottom", "top", [ru + 1], None)
        elif rv > ru:
            out[e] = ("channel", "bottom", "top", [ru + 1, rv], "left")
        elif rv == ru - 1:
            out[e] = ("channel", "top", "bottom", [ru], None)
        else:
            out[e] = ("channel", "top", "bottom", [ru, rv + 1], "right")
    return out


def _attachments(p: _Plan, spec: dict, col_x: dict, margin_x: dict, lanes: _Sides) -> dict:
    """x where each channel edge leaves its source and enters its target, spread
    over the box side, sorted by where the other end lies (or its side lane's x)."""
    sides: dict[tuple, list] = {}
    out = {}
    for e, (how, s_out, s_in, _, margin) in spec.items():
        if how != "channel":
            continue
        u, v, _ = e
        far_v = margin_x.get(e, col_x[p.col_of[v]])
        far_u = margin_x.get(e, col_x[p.col_of[u]])
        for end, n, s, far in ((0, u, s_out, far_v), (1, v, s_in, far_u)):
            if (e, end) in lanes.port:
                out[(e, end)] = lanes.lane_x(p, col_x, p.col_of[n], *lanes.port[(e, end)])
            else:
                sides.setdefault((n, s), []).append((far, end, e))
    for (n, side), items in sides.items():
        c = p.col_of[n]
        lo = col_x[c] - p.col_w[c] / 2 + 0.12 * p.col_w[c]
        hi = col_x[c] + p.col_w[c] / 2 - (0.32 if side == "top" and n in p.loops else 0.12) * p.col_w[c]
        items.sort(key=lambda t: (t[0], t[1], str(t[2])))
        for i, (_, end, e) in enumerate(items):
            out[(e, end)] = lo + (i + 0.5) * (hi - lo) / len(items)
    return out


def _hops(p: _Plan, spec: dict, attach: dict, margin_x: dict) -> list[_Hop]:
    hops = []
    for e, (how, s_out, s_in, chans, margin) in spec.items():
        if how != "channel":
            continue
        xa, xb = attach[(e, 0)], attach[(e, 1)]
        label = p.edge_text[e]
        if margin is None:
            pref = "middle" if s_out != s_in else ("lower" if s_out == "top" else "upper")
            hops.append(_Hop(e, chans[0], xa, xb, pref, label))
        else:
            hops.append(_Hop(e, chans[0], xa, margin_x[e], "middle"))
            hops.append(_Hop(e, chans[1], margin_x[e], xb, "middle", label))
    return hops


def _side_port(box: Box, side: str, upward: bool, k: int) -> tuple[float, float]:
    """Where the k-th sideways edge of a box leaves or enters it: above the middle
    when its lane goes up, below when it goes down."""
    dy = min(0.1 + 0.06 * k, (box.y1 - box.y0) / 2 - 0.03)
    return (box.x1 if side == "right" else box.x0, box.cy - dy if upward else box.cy + dy)


@dataclass
class _Routing:
    """What drawing the edges needs once the boxes stand: the plan, each edge's
    route kind, the boxes, the channel attachments and hops, the side lanes."""

    p: _Plan
    spec: dict
    boxes: dict
    attach: dict
    hops: dict  # edge -> its hops, in order
    sides: _Sides
    used: dict = field(default_factory=dict)  # side ports taken per (box, side, direction)


def _routes(r: _Routing) -> list[Route]:
    dt = r.p.graph.graph.get("dt")
    routes, looped, nth = [], set(), {}
    for u, v, k, d in r.p.edges:
        e = (u, v, k)
        how = r.spec[e][0]
        if how == "loop":
            if u not in looped:  # one loop per box; each connection has its line inside
                looped.add(u)
                tips = "\n\n".join(L.edge_tooltip(a, b, dd, dt) for a, b, _, dd in r.p.edges if a == b == u)
                routes.append(_loop(r.boxes[u], tips))
            continue
        open_head = L.role(r.p.graph.nodes[v]) != "readout" and L.port_of(d) != "input"
        route = Route([], L.kind(d), L.edge_tooltip(u, v, d, dt), r.p.edge_text[e], open_head=open_head, ends=(u, v))
        if how == "straight":
            nth[(u, v)] = nth.get((u, v), -1) + 1
            _straight(r, e, route, nth[(u, v)])
        elif how == "bow":
            _bow(r, e, route)
        else:
            _channel(r, e, route)
        routes.append(route)
    return routes


def _loop(box: Box, tip: str) -> Route:
    """A small loop on the top right corner of a box."""
    xa, xb = box.x1 - 0.26 * (box.x1 - box.x0), box.x1 - 0.08 * (box.x1 - box.x0)
    return Route([(xa, box.y0), (xa, box.y0 - 0.13), (xb, box.y0 - 0.13), (xb, box.y0)], "lateral", tip,
                 curve=True, ends=(box.name, box.name))


def _straight(r: _Routing, e: tuple, route: Route, nth: int) -> None:
    """Between neighbouring columns of a row: right side to left side, the label
    above the line (a second parallel edge below its own line)."""
    u, v, _ = e
    bu, bv = r.boxes[u], r.boxes[v]
    pair = sum(1 for ee, s in r.spec.items() if s[0] == "straight" and ee[:2] == (u, v)) == 2
    off = (0.05 if nth else -0.05) if pair else 0.0
    a, b = (bu.x1, bu.cy + off), (bv.x0, bv.cy + off)
    x = (a[0] + r.sides.width(r.p.col_of[u], "right") + b[0] - r.sides.width(r.p.col_of[v], "left")) / 2
    y = a[1] + (b[1] - a[1]) * (x - a[0]) / (b[0] - a[0])
    label = route.label
    label.x, label.y = (x, y + (0.03 + label.h / 2) * (1 if nth else -1)) if abs(a[1] - b[1]) < 1e-9 else (x, y)
    route.points = [a, b]


def _bow(r: _Routing, e: tuple, route: Route) -> None:
    """Between two boxes of one column: a bow to the right; the label between the
    boxes when they are neighbours, else right of the bow."""
    u, v, _ = e
    bu, bv = r.boxes[u], r.boxes[v]
    a, b = (bu.x1, bu.cy), (bv.x1, bv.cy)
    reach = max(a[0], b[0]) + 0.35
    col = r.p.columns[r.p.col_of[u]]
    label = route.label
    if abs(col.index(u) - col.index(v)) == 1:
        label.x, label.y = bu.cx, (a[1] + b[1]) / 2
    else:
        label.x, label.y = reach - 0.35 * 0.25 + label.w / 2 + 0.06, (a[1] + b[1]) / 2
    route.points, route.curve = [a, (reach, a[1]), (reach, b[1]), b], True


def _channel(r: _Routing, e: tuple, route: Route) -> None:
    """Out of the source's top or bottom (or its side lane), along its lanes, into the target."""
    u, v, _ = e
    _, s_out, s_in, _, _ = r.spec[e]
    bu, bv = r.boxes[u], r.boxes[v]
    hs = r.hops[e]
    pts = [(r.attach[(e, 0)], bu.y0 if s_out == "top" else bu.y1)]
    for h in hs:
        pts += [(h.x_a, h.y), (h.x_b, h.y)]
    pts.append((r.attach[(e, 1)], bv.y0 if s_in == "top" else bv.y1))
    for end, box, s_end in ((0, bu, s_out), (1, bv, s_in)):
        if (e, end) in r.sides.port:
            side = r.sides.port[(e, end)][0]
            k = r.used.get((box.name, side, s_end), 0)
            r.used[(box.name, side, s_end)] = k + 1
            port = _side_port(box, side, s_end == "top", k)
            i = 0 if end == 0 else len(pts) - 1
            pts[i] = (pts[i][0], port[1])
            pts.insert(0 if end == 0 else len(pts), port)
    route.label.x, route.label.y = (hs[-1].x_a + hs[-1].x_b) / 2, hs[-1].y
    route.points = pts


def _extent(boxes: dict, routes: list[Route]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of boxes, paths and labels, with a blank border."""
    rects = [(b.x0, b.y0, b.x1, b.y1) for b in boxes.values()]
    rects += [(x, y, x, y) for r in routes for x, y in r.points]
    rects += [r.label.bbox() for r in routes if r.label]
    return (min(q[0] for q in rects) - EDGE, min(q[1] for q in rects) - EDGE,
            max(q[2] for q in rects) + EDGE, max(q[3] for q in rects) + EDGE)


def _header(title: str, kinds: list[str], content_w: float, meas: Measure):
    """Title, then legend entries (a line sample and a word per edge kind, then the
    note on abbreviations) filled into lines as wide as the page."""
    title_t = meas.text([title], TITLE_FS, bold_first=True)
    title_t.x, title_t.y = EDGE + title_t.w / 2, EDGE + title_t.h / 2
    words = [(k, meas.text(["lateral (↻ in the box)" if k == "lateral" else k], INFO_FS)) for k in kinds]
    words.append(("", meas.text([L.LEGEND_NOTE], EDGE_FS, color="#555555")))
    width = max(content_w, title_t.w + 0.3, max(t.w for _, t in words) + 0.8, 3.0)
    legend, texts, x, line = [], [title_t], EDGE, 0
    for k, t in words:
        sample = 0.4 if k else 0.0
        if x > EDGE and x + sample + t.w > width - EDGE:
            x, line = EDGE, line + 1
        y = EDGE + title_t.h + 0.16 + line * 0.17
        if k:
            legend.append((k, x, y))
        t.x, t.y = x + sample + t.w / 2, y
        texts.append(t)
        x += sample + t.w + 0.25
    return width, EDGE + title_t.h + 0.13 + (line + 1) * 0.17, legend, texts


def _frame(p: _Plan, title: str, boxes: dict, routes: list[Route], rows: int, meas: Measure) -> Drawing:
    """Shift everything into a page with the header on top, centred when the header is wider."""
    lo_x, lo_y, hi_x, hi_y = _extent(boxes, routes)
    kinds = [k for k in L.KINDS if any(r.kind == k for r in routes)]
    width, header, legend, texts = _header(title, kinds, hi_x - lo_x, meas)
    dx, dy = (width - (hi_x - lo_x)) / 2 - lo_x, header - lo_y
    for b in boxes.values():
        b.x0, b.x1, b.y0, b.y1 = b.x0 + dx, b.x1 + dx, b.y0 + dy, b.y1 + dy
        b.text.x, b.text.y = b.text.x + dx, b.text.y + dy
    for r in routes:
        r.points = [(q[0] + dx, q[1] + dy) for q in r.points]
        if r.label:
            r.label.x, r.label.y = r.label.x + dx, r.label.y + dy
    ordered = [boxes[n] for n in L.sorted_nodes(p.graph)]
    return Drawing(title, width, header + hi_y - lo_y, ordered, routes, kinds, rows, header, legend, texts)


def layout(graph: nx.MultiDiGraph, max_width: float = 13.5, max_aspect: float = 5.5,
           meas: Measure | None = None) -> Drawing:
    """The drawing with the fewest rows that is at most `max_width` inches wide
    and at most `max_aspect` times wider than tall (else the best found)."""
    meas = meas or Measure()
    p = _plan(graph, meas)
    title = str(graph.graph.get("name") or "model")
    best = None
    for rows in range(1, len(p.columns) + 1):
        d = place(_plan(graph, meas) if rows > 1 else p, partition(p.col_w, p.gaps, rows), meas, title)
        score = (d.width > max_width, max(d.width / d.height, d.height / d.width))
        if best is None or score < best[0]:
            best = (score, d)
        if d.width <= max_width and d.width / d.height <= max_aspect:
            return d
        if d.height > d.width:
            break
    return best[1]
