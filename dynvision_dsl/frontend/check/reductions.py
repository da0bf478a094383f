"""Reductions over channels and space (LANGUAGE.md section 9.4): `mean(x, channels)`,
`sum(x, channels)`, `max(x, channels)` give one value per position, `mean(x, space)` and
`sum(x, space)` (and `max`) one per channel; each broadcasts back over what it reduced."""
from __future__ import annotations

from typing import Callable

from ...frontend import ir
from ...frontend import syntax as S
from ...diagnostics import Diagnostic, DynError, did_you_mean
from ...ops import REDUCE_OVER, REDUCTIONS

Build = Callable[[S.Expr], tuple[ir.EqExpr, int]]  # an argument to (IR, time dimension)


def is_reduction(e: S.Call) -> bool:
    """Whether a call reduces: `mean`/`sum` always, `max` when its second argument is
    `channels` or `space` (otherwise `max(a, b)` is the elementwise max)."""
    name = e.func.name
    if name not in REDUCTIONS:
        return False
    return name != "max" or len(e.args) == 2 and isinstance(e.args[1], S.Name) and e.args[1].name in REDUCE_OVER


def reduction(e: S.Call, build: Build) -> tuple[ir.EqExpr, int]:
    """The IR of a reduction call (`mean_channels(x)`); the value keeps the dimension of x."""
    name = e.func.name
    if e.alias is not None:
        raise _error("E122", f"{name}() has no parameters to name with 'as'", e.alias.span)
    if e.kwargs or len(e.args) != 2:
        span = e.kwargs[0].name.span if e.kwargs else e.span
        raise _error("E122", f"{name}() takes a value and what to reduce over: '{name}(x, channels)' or "
                     f"'{name}(x, space)'", span)
    over = e.args[1]
    if not isinstance(over, S.Name) or over.name not in REDUCE_OVER:
        guess = did_you_mean(over.name, REDUCE_OVER) if isinstance(over, S.Name) else None
        raise _error("E121", f"{name}() reduces over 'channels' or 'space', not '{_text(over)}'"
                     + (f" (did you mean '{guess}'?)" if guess else ""), over.span,
                     f"'{name}(x, channels)' per position, '{name}(x, space)' per channel")
    value, dim = build(e.args[0])
    return ir.Apply(f"{name}_{over.name}", (value,), e.span), dim


def _text(e: S.Expr) -> str:
    return e.name if isinstance(e, S.Name) else "this argument"


def _error(code: str, message: str, span, hint: str | None = None) -> DynError:
    return DynError([Diagnostic("error", message, span, hint, code)])
