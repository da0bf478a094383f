"""Parenthesised ODE coefficients (LANGUAGE.md section 9.10): `(2 * tau) * dr/dt = ...`.
A constant one is folded here so that the checks of a written time constant (positive,
dt / tau within float32) apply to it too."""
from __future__ import annotations

import operator

from ...frontend import ir

_ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
               "neg": operator.neg}


def constant_value(expr: ir.EqExpr) -> float | None:
    """The value of an expression of numbers and + - * / (params are numbers by now), else None."""
    if not all(isinstance(n, ir.Const) or isinstance(n, ir.Apply) and n.fn in _ARITHMETIC and n.module is None
               for n in ir.walk(expr)):
        return None
    try:
        return ir.fold(expr, lambda n, vals: n.value if isinstance(n, ir.Const) else float(_ARITHMETIC[n.fn](*vals)))
    except (ZeroDivisionError, OverflowError):
        return None
