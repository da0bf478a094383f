"""The one table of math functions (`tanh(x)`, `min(a, b)`, `sqrt(x)`): arity, dimension rule,
the torch function that computes it, how a constant folds, and whether constant expressions
may use it. Check, values, lower, the passes and the printer all read this table; it imports
no torch (the torch function is named, and resolved by the backend)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class MathFn:
    """One function. `dim` says how the result's time dimension follows from the arguments':
    'free' (argument must be dimensionless), 'same' (as the argument), 'zero', 'half' (sqrt),
    'equal' (all arguments one dimension, result that one)."""

    name: str
    arity: int | None  # arguments in an equation; None: only in constant expressions
    dim: str
    torch: str | None  # the generated code's name for it (`torch.tanh`)
    fold: Callable[..., float]  # the value on plain numbers
    const: bool = False  # usable in constant expressions (params, delays, conditions)
    variadic: bool = False  # in a constant expression, takes one or more arguments
    doc: str = ""


def _sign(v: float) -> float:
    return float((v > 0) - (v < 0))


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


TABLE: tuple[MathFn, ...] = (
    MathFn("relu", 1, "same", "torch.relu", lambda v: max(v, 0.0), doc="max(x, 0)"),
    MathFn("tanh", 1, "free", "torch.tanh", math.tanh, doc="hyperbolic tangent"),
    MathFn("sigmoid", 1, "free", "torch.sigmoid", _sigmoid, doc="1 / (1 + exp(-x))"),
    MathFn("exp", 1, "free", "torch.exp", math.exp, doc="e to the x"),
    MathFn("log", 1, "free", "torch.log", math.log, doc="natural logarithm"),
    MathFn("abs", 1, "same", "torch.abs", abs, const=True, doc="absolute value"),
    MathFn("sign", 1, "zero", "torch.sign", _sign, doc="-1, 0 or 1"),
    MathFn("sqrt", 1, "half", "torch.sqrt", math.sqrt, const=True, doc="square root"),
    MathFn("min", 2, "equal", "torch.minimum", min, const=True, variadic=True, doc="the smaller value"),
    MathFn("max", 2, "equal", "torch.maximum", max, const=True, variadic=True, doc="the larger value"),
    MathFn("clamp", 3, "equal", "torch.clamp", lambda x, lo, hi: min(max(x, lo), hi), doc="clamp(x, lo, hi)"),
    MathFn("floor", None, "same", None, math.floor, const=True, doc="round down"),
    MathFn("ceil", None, "same", None, math.ceil, const=True, doc="round up"),
    MathFn("round", None, "same", None, round, const=True, doc="round to the nearest whole number"),
)

BY_NAME: dict[str, MathFn] = {f.name: f for f in TABLE}
# name -> arity, for the functions an equation may call
MATH_FUNCTIONS: dict[str, int] = {f.name: f.arity for f in TABLE if f.arity is not None}
# name -> value on numbers, for constant expressions
CONST_FUNCTIONS: dict[str, Callable[..., float]] = {f.name: f.fold for f in TABLE if f.const}


def torch_function(name: str):
    """The torch function a dotted name of the table stands for (`torch.tanh`); for the backend
    only (it imports torch)."""
    import torch

    obj = torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    return obj
