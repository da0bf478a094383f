"""Fixed operators (LANGUAGE.md section 9.4): `conv(3, fixed)` keeps its weights as
constant buffers, and `init=` sets them (`conv(3, fixed, init=1/9)`). Only an operator
with weights can be fixed, and `init` needs `fixed` (`scale(init=...)`, whose init is
its trainable starting value, is the one exception)."""
from __future__ import annotations

from ...frontend import syntax as S
from ...diagnostics import Diagnostic, DynError
from ...ops import OPERATORS


def fixable(name: str) -> bool:
    return name in OPERATORS and any(a.name == "fixed" for a in OPERATORS[name].args)


def check_before_binding(op: S.Op) -> None:
    """`fixed` or `init` on an operator without weights: said so, not 'unknown argument'."""
    if op.name.name not in OPERATORS or fixable(op.name.name):
        return
    for kw in op.kwargs:
        if kw.name.name in ("fixed", "init"):
            _refuse(op, kw.name)
    for arg in op.args:
        if isinstance(arg, S.Name) and arg.name == "fixed":
            _refuse(op, S.Ident(arg.name, arg.span))


def _refuse(op: S.Op, word: S.Ident) -> None:
    with_weights = ", ".join(n for n in OPERATORS if fixable(n))
    raise DynError([Diagnostic("error", f"{op.name.name} has no weights to make '{word.name}'", word.span,
                               f"fixed and init apply to operators with weights: {with_weights}", "E124")])


def check_after_binding(op: S.Op, args: dict) -> None:
    """`init` without `fixed`, and `fixed` with `weightnorm` (which makes weights trainable)."""
    if not fixable(op.name.name):
        return
    init = next((kw for kw in op.kwargs if kw.name.name == "init"), None)
    if args.get("init") is not None and not args.get("fixed") and op.name.name != "scale":
        span = init.name.span if init is not None else op.span
        raise DynError([Diagnostic("error", f"init= of {op.name.name}() sets a fixed operator's weights, but this "
                                   f"{op.name.name} is not fixed", span,
                                   f"write '{op.name.name}(..., fixed, init=...)', or drop init", "E123")])
    if args.get("fixed") and args.get("weightnorm"):
        flag = next((kw.name for kw in op.kwargs if kw.name.name == "weightnorm"), op.name)
        raise DynError([Diagnostic("error", f"a fixed {op.name.name} cannot have weightnorm (its weights would be "
                                   "trained through it)", flag.span, "drop weightnorm or fixed", "E125")])


def trimmed(name: str, args: dict) -> dict:
    """The arguments without `fixed=false` and an unset `init` (scale keeps its own): a trainable
    operator reads, in graphs and tooltips, as it did before operators could be fixed."""
    if name == "scale" or args.get("fixed") or args.get("init") is not None:
        return args
    return {k: v for k, v in args.items() if k not in ("fixed", "init")}
