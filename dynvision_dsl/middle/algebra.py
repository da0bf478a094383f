"""Algebra on checked equations: `linear_split` writes a right-hand side as a*var + b, for the
exponential solver (checked in the frontend, used by the lowering)."""
from __future__ import annotations

from dataclasses import dataclass

from ..diagnostics import Span
from ..frontend import ir
from ..frontend.values import err


def linear_split(rhs: ir.EqExpr, var: str) -> tuple[ir.EqExpr | None, ir.EqExpr | None]:
    """Write `rhs` as a*var + b with a, b free of var; a DynError if it is not linear."""
    has, parts = ir.fold(rhs, lambda x, args: _split_node(x, args, var))
    if not has:
        return None, rhs
    if isinstance(parts, _Nonlinear):
        raise err(f"the exponential solver needs d{var}/dt to be linear in '{var}'", parts.span,
                  "use 'solver euler' or 'solver rk4' for nonlinear dynamics", code="E048")
    return parts


@dataclass(frozen=True)
class _Nonlinear:
    """The first part of an equation (depth first) that a*var + b cannot describe."""

    span: Span


def _split_node(x: ir.EqExpr, args: list, var: str):
    """linear_split at one node, its operands done: (whether it reads var, x itself or (a, b) or _Nonlinear)."""
    if isinstance(x, ir.Ref) and x.kind == "state" and x.name == var:
        return True, (ir.Const(1.0, x.span), None)
    if not any(has for has, _ in args):
        return False, x
    return True, _split_apply(x, args)


def _split_apply(x: ir.Apply, args: list):
    """(a, b) of a node that reads var, from its operands' splits; _Nonlinear where that fails."""
    reads = [has for has, _ in args]
    if not (x.fn in ("add", "sub", "neg") or x.fn == "mul" and not all(reads) or x.fn == "div" and not reads[1]):
        return _Nonlinear(x.span)
    split = [parts if has else (None, parts) for has, parts in args]  # a var-free operand is all b
    bad = next((p for p in split if isinstance(p, _Nonlinear)), None)
    if bad is not None:
        return bad
    if x.fn in ("add", "sub"):
        (a1, b1), (a2, b2) = split
        return _comb(x.fn, a1, a2, x.span), _comb(x.fn, b1, b2, x.span)
    if x.fn == "neg":
        (a, b), = split
        return _comb("sub", None, a, x.span), _comb("sub", None, b, x.span)
    if x.fn == "mul":
        const, (a, b) = (args[0][1], split[1]) if not reads[0] else (args[1][1], split[0])
        return (ir.Apply("mul", (const, a), x.span) if a else None, ir.Apply("mul", (const, b), x.span) if b else None)
    (a, b), den = split[0], args[1][1]  # div by a var-free denominator
    return (ir.Apply("div", (a, den), x.span) if a else None, ir.Apply("div", (b, den), x.span) if b else None)


def _comb(fn, a, b, span):
    if a is None and b is None:
        return None
    if b is None:
        return a
    if a is None:
        return b if fn == "add" else ir.Apply("neg", (b,), span)
    return ir.Apply(fn, (a, b), span)
