"""The model line, the time block (dt, steps, idle) and the input."""
from __future__ import annotations

import keyword

from ...bounds import MAX_STEPS
from ...diagnostics import Span, did_you_mean, unknown
from .. import ir
from .. import syntax as S
from ..values import Evaluator, err, kind_text
from . import inputs as IO
from .context import Context, float32, keyword_span, lower_hint, need_time
from .params import lookup

TIME_ITEMS = ("dt", "steps", "idle")


def model_name(ctx: Context, decls: list[S.ModelDecl]) -> str:
    """The model's name: the `model` line's, else one made from the file name."""
    for extra in decls[1:]:
        ctx.sink.error("a spec has one 'model' line", keyword_span(extra.span, "model"), code="E028")
    if decls:
        name = decls[0].name
        cls = name.name[:1].upper() + name.name[1:]
        if keyword.iskeyword(cls):
            ctx.sink.error(f"model name '{name.name}' would make the Python class '{cls}', a reserved word",
                           name.span, "choose another model name", code="E027")
        return name.name
    stem = ctx.file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    derived = "".join(p.capitalize() for p in stem.replace("-", "_").split("_")) or "Model"
    return derived + "Model" if keyword.iskeyword(derived) else derived


def whole(ctx: Context, expr: S.Expr, what: str, minimum: int, lookup_fn=None) -> int:
    """A whole number of at least `minimum` (a count, a size); a located error otherwise."""
    val = Evaluator(ctx.src, lookup_fn or lookup(ctx))(expr)
    if not val.is_number or val.dim != 0 or isinstance(val.v, bool) or float(val.v) != int(val.v):
        raise err(f"{what} must be a whole number, but '{ctx.text(expr)}' is {val.describe()}", expr.span,
                  code="E031")
    if val.v < minimum:
        raise err(f"{what} must be at least {minimum}, got {int(val.v)}", expr.span, code="E031")
    return int(val.v)


def time(ctx: Context, blocks: list[S.TimeBlock]) -> tuple[float | None, int, int]:
    """dt (ms), steps and idle of the time block; errors for anything missing or misspelt."""
    if not blocks:
        ctx.sink.error("the spec has no time block", Span(ctx.file, 1, 1, 1, 2),
                       "add 'time { dt = 1 ms  steps = 10 }'", code="E029")
        return None, 1, 0
    for extra in blocks[1:]:
        ctx.sink.error(f"a second time block (the first is at line {blocks[0].span.line})",
                       keyword_span(extra.span, "time"), code="E028")
    items, misspelt = _time_items(ctx, blocks[0])
    dt = None
    if "dt" not in items:
        if "dt" not in misspelt:
            ctx.sink.error("the time block does not set dt", blocks[0].span, "add 'dt = 1 ms'", code="E029")
    else:
        dt = ctx.attempt(lambda: _dt(ctx, items["dt"].value))
    steps = ctx.attempt(lambda: whole(ctx, items["steps"].value, "steps", 1), 1) if "steps" in items else None
    if steps is None:
        if "steps" not in items and "steps" not in misspelt:
            ctx.sink.error("the time block does not set steps", blocks[0].span, "add 'steps = 10'", code="E029")
        steps = 1
    idle = ctx.attempt(lambda: whole(ctx, items["idle"].value, "idle", 0), 0) if "idle" in items else 0
    if steps + idle > MAX_STEPS:
        culprit = items["steps"] if steps >= idle else items["idle"]
        ctx.sink.error(f"a run of {steps + idle} steps is more than the {MAX_STEPS} a model runs (the steps "
                       f"loop in Python, and the logits alone keep every step)", culprit.value.span,
                       lower_hint(ctx.text(culprit.value), ctx.params, "e.g. 100"), code="E034")
        steps, idle = 1, 0
    return dt, steps, idle


def _time_items(ctx: Context, block: S.TimeBlock) -> tuple[dict[str, S.TimeItem], set[str]]:
    """The block's settings by name, and the settings that unknown names probably meant
    (not reported missing too)."""
    items: dict[str, S.TimeItem] = {}
    misspelt: set[str] = set()
    for item in block.items:
        name = item.name.name
        if name not in TIME_ITEMS:
            misspelt.add(did_you_mean(name, TIME_ITEMS) or "")
            ctx.sink.error(unknown("time setting", name, TIME_ITEMS), item.name.span,
                           "a time block sets dt, steps and idle", code="E030")
        elif name in items:
            ctx.sink.error(f"'{name}' is set twice in the time block", item.name.span, code="E023")
        else:
            items[name] = item
    return items, misspelt


def _dt(ctx: Context, expr: S.Expr) -> float:
    val = Evaluator(ctx.src, lookup(ctx))(expr)
    if val.dim != 1:
        raise need_time(ctx, expr, f"dt must be a time, but '{ctx.text(expr)}' is {kind_text(val)}",
                        "write a unit after the number, e.g. 'dt = 1 ms'", "dt")
    if val.v <= 0:
        raise err(f"dt must be positive, got {val.describe()}", expr.span, code="E033")
    return float32(float(val.v), ctx.text(expr), expr.span)


def input_spec(ctx: Context, decls: list[S.InputDecl]) -> list[ir.InputSpec] | None:
    """The inputs in declaration order, each with its name and [channels, height, width] (§9.8)."""
    spans = {n: ctx.area_name_spans[n] for n in ctx.all_area_names if n in ctx.area_name_spans}
    return IO.check_inputs(decls, ctx.sink, lambda d: _input_dims(ctx, d), spans, ctx.file)


def _input_dims(ctx: Context, d: S.InputDecl) -> tuple[int, int, int] | None:
    if len(d.shape) != 3:
        ctx.sink.error(f"the input shape has {len(d.shape)} entries; it needs [channels, height, width]",
                       _shape_span(d.shape, d.span), code="E037")
        return None
    dims = [ctx.attempt(lambda e=e, w=w: whole(ctx, e, f"the input's {w}", 1))
            for e, w in zip(d.shape, ("channels", "height", "width"))]
    return None if None in dims else tuple(dims)


def _shape_span(shape: tuple[S.Expr, ...], fallback: Span) -> Span:
    """From the first to the last entry of a shape."""
    if not shape:
        return fallback
    first, last = shape[0].span, shape[-1].span
    return Span(first.file, first.line, first.col, last.end_line, last.end_col)
