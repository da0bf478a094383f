"""Shapes: the size of each area without one (from its first connection that does not
resize), then every connection's and the readout's shapes through their operators."""
from __future__ import annotations

import heapq
import math
from dataclasses import replace

from ...middle.conngraph import ConnGraph
from ...ops import OPERATORS, OpError, OpSpec
from .. import ir
from ..values import err
from .context import Context

RESIZING = ("adapt", "resize")


def infer_shapes(ctx: Context, areas: dict[str, ir.Area], conns: list[ir.Conn], inp: list[ir.InputSpec],
                 graph: ConnGraph) -> None:
    """Give every area a size and check every connection's shapes against its target."""
    sizes: dict[str, tuple[int, int]] = {i.name: i.shape[1:] for i in inp}
    origin: dict[str, ir.Conn | None] = {}
    for a in areas.values():
        if a.size is not None:
            sizes[a.name], origin[a.name] = a.size, None
    channels = {a.name: a.channels for a in areas.values()}
    channels.update({i.name: i.shape[0] for i in inp})
    _size_areas(areas, conns, sizes, channels, origin)
    for a in areas.values():
        if a.name in sizes:
            a.size = tuple(sizes[a.name])
    _report_unsized(ctx, [a for a in areas.values() if a.size is None], conns, sizes, channels, inp, graph)
    for c in conns:
        ctx.attempt(lambda c=c: _check_conn_shape(c, areas, sizes, channels, origin))


def _size_areas(areas: dict[str, ir.Area], conns: list[ir.Conn], sizes, channels, origin) -> None:
    """Give each area without a size the size of its first connection (inputs first, then by
    index) that does not resize and whose source has one. Passes over the areas in declaration
    order until nothing changes, visiting only areas whose sources gained a size since."""
    into: dict[str, list[ir.Conn]] = {}
    for c in sorted(conns, key=lambda c: (c.port != "input", c.index)):
        if not any(o.kind in RESIZING for o in c.ops):
            into.setdefault(c.target, []).append(c)
    readers: dict[str, list[str]] = {}
    for c in conns:
        readers.setdefault(c.source, []).append(c.target)
    position = {name: i for i, name in enumerate(areas)}
    names = list(areas)
    todo = [i for i, name in enumerate(names) if name not in sizes]
    while todo:
        later: set[int] = set()  # to visit again in the next pass
        heapq.heapify(todo)
        while todo:
            i = heapq.heappop(todo)
            a = areas[names[i]]
            if a.name in sizes or not _size_from(a, into.get(a.name, ()), sizes, channels, origin):
                continue
            for t in readers.get(a.name, ()):
                if t in position and t not in sizes and position[t] > i:
                    heapq.heappush(todo, position[t])  # still ahead in this pass
                elif t in position and t not in sizes:
                    later.add(position[t])
        todo = sorted(later)


def _size_from(a: ir.Area, cands, sizes, channels, origin) -> bool:
    for c in cands:
        if c.source not in sizes:
            continue
        try:
            shape = through(c.ops, (channels[c.source], *sizes[c.source]), (a.channels, None, None))[-1]
        except OpError:
            continue
        sizes[a.name], origin[a.name] = (shape[1:] if len(shape) == 3 else (1, 1)), c
        return True
    return False


def _report_unsized(ctx: Context, unsized: list[ir.Area], conns: list[ir.Conn], sizes, channels, inp,
                    graph: ConnGraph) -> None:
    """One error per area whose size is unknown, leaving out those downstream of an error already made."""
    fed = {c.target for c in conns}
    orphans = [a for a in unsized if a.name not in fed and a.name not in ctx.broken_targets]
    for a in orphans:
        ctx.sink.error(f"cannot infer the size of area {a.name}: no connection leads into it", _name_span(ctx, a),
                       f"connect it, e.g. '{inp[0].name} -> {a.name} : conv(3)', or give its size: "
                       f"'area {a.name} [{a.channels}, H, W]'", code="E060")
    explained = graph.downstream(ctx.broken_targets | {a.name for a in orphans})
    for a in unsized:
        if a.name in explained or _explain_size(ctx, a, conns, sizes, channels):
            continue
        ctx.sink.error(f"cannot infer the size of area {a.name}: every connection into it resizes, "
                       f"or comes from an area of unknown size", _name_span(ctx, a),
                       f"give the size explicitly: 'area {a.name} [{a.channels}, H, W]'", code="E060")


def _name_span(ctx: Context, a: ir.Area):
    """The area's name where it is declared."""
    return ctx.area_name_spans.get(a.name, a.span)


def _explain_size(ctx: Context, a: ir.Area, conns: list[ir.Conn], sizes, channels) -> bool:
    """Report the operator that keeps every connection into `a` from giving it a size; False if none."""
    for c in conns:
        if c.target != a.name or c.source not in sizes or any(o.kind in RESIZING for o in c.ops):
            continue
        shape = (channels[c.source], *sizes[c.source])
        for o in c.ops:
            try:
                shape = tuple(OPERATORS[o.kind].shape(o.a, shape, (a.channels, None, None)))
            except OpError as exc:
                ctx.sink.error(f"{o.kind} in {c.label}: {exc.message}", o.span, exc.hint, code="E058")
                return True
    return False


def through(ops: list[OpSpec], shape, target) -> list:
    """The shapes before and after each operator."""
    shapes = [tuple(shape)]
    for o in ops:
        shapes.append(tuple(OPERATORS[o.kind].shape(o.a, shapes[-1], target)))
    return shapes


def _check_conn_shape(c: ir.Conn, areas, sizes, channels, origin) -> None:
    if c.source not in sizes or c.target not in sizes:
        return
    target = areas[c.target]
    shapes = [(channels[c.source], *sizes[c.source])]
    for i, o in enumerate(c.ops):
        try:
            out = tuple(OPERATORS[o.kind].shape(o.a, shapes[-1], target.shape))
        except OpError as exc:
            raise err(f"{o.kind} in {c.label}: {exc.message}", o.span, exc.hint, code="E058") from None
        c.ops[i] = replace(o, in_shape=shapes[-1], out_shape=out)
        shapes.append(out)
    final = shapes[-1]
    if len(final) != 3:
        if final[0] != target.channels:
            raise err(f"{c.label} delivers a vector of {final[0]}, but {c.target} has {target.channels} "
                      f"channels", c.span, "a vector feeds an area [n] with n = its length, as n maps of 1 x 1",
                      code="E059")
        final = (final[0], 1, 1)
    if final[0] != target.channels:
        raise err(f"{c.label} delivers {final[0]} channels, but {c.target} has {target.channels}", c.span,
                  "end the pipeline with conv, pointwise or adapt to map channels", code="E059")
    if tuple(final[1:]) != tuple(target.size):
        ref = origin.get(c.target)
        ref_text = f"from {ref.label}" if ref is not None else "as declared"
        raise err(f"port '{c.port}' of {c.target} receives {list(final[1:])} from {c.label} but "
                  f"{list(target.size)} {ref_text} (use resize or adapt)", _port_token(c),
                  "end the pipeline with 'resize' or 'adapt', or change a stride", code="E059")


def _port_token(c: ir.Conn):
    """The port's name where the connection writes one (`V1 -> V2.fb`), else the connection."""
    return c.port_span if c.port != "input" and c.port_span is not None else c.span


def readout_shapes(ctx: Context, r: ir.ReadoutSpec | None, areas) -> ir.ReadoutSpec | None:
    """The readout's shapes; it must end in a vector of class scores."""
    if r is None or r.source not in areas or areas[r.source].size is None:
        return r
    shape = areas[r.source].shape
    for i, o in enumerate(r.ops):
        try:
            out = tuple(OPERATORS[o.kind].shape(o.a, shape, None))
        except OpError as exc:
            ctx.sink.error(f"{o.kind} in the readout: {exc.message}", o.span, exc.hint, code="E058")
            return None
        r.ops[i] = replace(o, in_shape=shape, out_shape=out)
        shape = out
    if len(shape) == 3 and shape[1:] != (1, 1):
        ctx.sink.error(f"the readout ends in a {list(shape)} map, not a vector of class scores", r.ops[-1].span,
                       "end it with 'avgpool | linear(n)' or 'flatten | linear(n)'", code="E061")
        return None
    r.classes = math.prod(shape)
    return r
