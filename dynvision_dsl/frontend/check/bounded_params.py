"""Bounded, per-channel trainable params (LANGUAGE.md 9.9): `param tau = 5 ms trainable(min = dt,
max = 100 ms, per = channel)`. Every option is optional; the bounds must have the value's
dimension, min < max, and the initial value must lie strictly inside them (the reparametrisation
that keeps the bounds reaches a bound only in the limit)."""
from __future__ import annotations

from typing import Callable

from ...frontend import ir
from ...frontend import syntax as S
from ...diagnostics import DynError, Sink, did_you_mean
from ..values import Val, dim_text, fmt_quantity

OPTIONS = ("min", "max", "per")
PER = ("channel", "area")  # one value per channel, or one for the whole area (the default)


def trainable_bounds(decl: S.ParamDecl, init: Val, evaluate: Callable[[S.Expr], Val],
                     sink: Sink) -> ir.TrainableBounds | None:
    """The options of `decl`'s `trainable(...)` checked against its initial value `init`; None
    after reporting an error at the option that is wrong."""
    given: dict[str, S.Kwarg] = {}
    ok = True
    for option in decl.options:
        ok &= _known(option, given, sink)
    if not ok:
        return None
    per = _per(given.get("per"), sink)
    lo = _bound(given.get("min"), init, evaluate, sink)
    hi = _bound(given.get("max"), init, evaluate, sink)
    if per is False or lo is False or hi is False:
        return None
    if not _inside(decl.name.name, init, lo, hi, given, sink):
        return None
    return ir.TrainableBounds(lo, hi, per == "channel")


def _known(option, given: dict[str, S.Kwarg], sink: Sink) -> bool:
    if not isinstance(option, S.Kwarg):
        sink.error("trainable options are named: write 'trainable(min = ..., max = ..., per = channel)'",
                   option.span, "every option is optional", code="E154")
        return False
    name = option.name.name
    if name not in OPTIONS:
        guess = did_you_mean(name, OPTIONS)
        sink.error(f"unknown trainable option '{name}'" + (f" (did you mean '{guess}'?)" if guess else ""),
                   option.name.span, "the options are min, max and per", code="E154")
        return False
    if name in given:
        sink.error(f"trainable option '{name}' is given twice", option.name.span, code="E154")
        return False
    given[name] = option
    return True


def _per(option: S.Kwarg | None, sink: Sink) -> str | None | bool:
    if option is None:
        return None
    value = option.value
    if isinstance(value, S.Name) and value.name in PER:
        return value.name
    given = f", not '{value.name}'" if isinstance(value, S.Name) else ""
    sink.error("'per' takes 'channel' (one value per channel) or 'area' (one value, the default)" + given, value.span,
               "write 'per = channel'", code="E155")
    return False


def _bound(option: S.Kwarg | None, init: Val, evaluate, sink: Sink) -> float | None | bool:
    """A bound's value in the initial value's unit (ms for times); False after an error."""
    if option is None:
        return None
    try:
        val = evaluate(option.value)
    except DynError as exc:
        sink.items.extend(exc.diagnostics)
        return False
    if not val.is_number or isinstance(val.v, bool) or val.dim != init.dim:
        sink.error(f"{option.name.name} = {val.describe()} is {dim_text(val.dim) if val.is_number else 'not a number'}, "
                   f"but the param's initial value {init.describe()} is {dim_text(init.dim)}", option.value.span,
                   f"write the bound in the same unit, e.g. {fmt_quantity(float(init.v), init.dim)}", code="E156")
        return False
    return float(val.v)


def _inside(name: str, init: Val, lo, hi, given: dict[str, S.Kwarg], sink: Sink) -> bool:
    """min < max, and min < initial value < max; errors at the bound that is violated."""
    show = lambda x: fmt_quantity(x, init.dim)  # noqa: E731
    value = float(init.v)
    if lo is not None and hi is not None and lo >= hi:
        sink.error(f"max = {show(hi)} is not above min = {show(lo)}", given["max"].value.span,
                   "give max a larger value than min", code="E157")
        return False
    for bound, key, bad, word in ((lo, "min", lo is not None and value <= lo, "above"),
                                  (hi, "max", hi is not None and value >= hi, "below")):
        if bad:
            sink.error(f"the initial value of '{name}', {show(value)}, is not {word} {key} = {show(bound)}",
                       given[key].value.span, f"move the bound or the initial value: the value stays strictly "
                       f"{word} {key}", code="E158")
            return False
    return True


def with_dt(lookup: Callable, dt: float | None) -> Callable:
    """`lookup`, where a name that is no param but `dt` reads the time step (`min = dt`)."""
    def find(name: str, span) -> Val:
        try:
            return lookup(name, span)
        except DynError:
            if name == "dt" and dt is not None:
                return Val(dt, 1)
            raise
    return find
