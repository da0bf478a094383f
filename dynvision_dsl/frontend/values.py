"""Compile-time values: numbers with a time dimension, strings and booleans,
and the evaluator of constant expressions (params, conditions, delays)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from . import syntax as S
from ..diagnostics import DynError, Diagnostic, Span, source_lines
from ..functions import BY_NAME as _FUNCTION_TABLE, CONST_FUNCTIONS  # the one function table

UNIT_SCALE = {"ms": 1.0, "s": 1000.0}  # times are held in ms
NON_FINITE_NAMES = ("inf", "infinity", "nan")  # not numbers in a spec: every value is finite


@dataclass(frozen=True)
class Val:
    """A constant: `v` with the time exponent `dim` (numbers) or dim None (str, bool)."""

    v: float | str | bool
    dim: int | None = 0

    @property
    def is_number(self) -> bool:
        return self.dim is not None

    def describe(self) -> str:
        if isinstance(self.v, bool):
            return "true" if self.v else "false"
        if isinstance(self.v, str):
            return f'"{self.v}"'
        return fmt_quantity(self.v, self.dim)


def fmt_number(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e15 else repr(x)


def fmt_quantity(v: float, dim: int | None) -> str:
    if not dim:
        return fmt_number(v)
    if dim == 1:
        return f"{fmt_number(v)} ms"
    return f"{fmt_number(v)} {unit_text(dim)}"


def dim_text(dim: int | None) -> str:
    """'time, ms' for dim 1: how a dimension reads in a message."""
    if dim is None:
        return "text"
    if dim == 0:
        return "dimensionless"
    return {1: "time, ms", -1: "1/time, 1/ms"}.get(dim, f"time^{dim}, {unit_text(dim)}")


def unit_text(dim: int) -> str:
    return {1: "ms", -1: "1/ms"}.get(dim, f"ms^{dim}")


def kind_text(val: Val) -> str:
    if isinstance(val.v, bool):
        return "a boolean"
    if isinstance(val.v, str):
        return "a string"
    return "a time" if val.dim == 1 else ("a dimensionless number" if val.dim == 0 else f"a {dim_text(val.dim)} value")


def source_text(source: str, span: Span) -> str:
    """The text a span covers (first line only)."""
    lines = source_lines(source)
    if not (0 < span.line <= len(lines)):
        return "?"
    line = lines[span.line - 1]
    end = span.end_col if span.end_line == span.line else len(line) + 1
    return line[span.col - 1:end - 1].strip()


def non_finite_message(text: str, literal: bool) -> str:
    """Why a value that is inf or nan is refused, naming the text that made it."""
    if literal:
        return f"the number '{text}' is too large (the largest is about 1.8e308)"
    return f"'{text}' overflows: the result is beyond the largest number (about 1.8e308)"


def err(message: str, span: Span, hint: str | None = None, code: str = "") -> DynError:
    """A DynError holding one error (`code` from diagnostics/catalogue.py)."""
    return DynError([Diagnostic("error", message, span, hint, code)])




class Evaluator:
    """Evaluates constant expressions; `lookup(name, span)` supplies names."""

    def __init__(self, source: str, lookup: Callable[[str, Span], Val]):
        self.source = source
        self.lookup = lookup

    def text(self, e: S.Expr) -> str:
        return source_text(self.source, e.span)

    def __call__(self, e: S.Expr) -> Val:
        """The value of `e`; a DynError at `e` when it is, or overflows to, inf or nan."""
        try:
            val = self._value(e)
        except OverflowError:
            raise err(non_finite_message(self.text(e), False), e.span, "use smaller values", code="E011") from None
        if val.is_number and not isinstance(val.v, bool) and not math.isfinite(val.v):
            raise err(non_finite_message(self.text(e), isinstance(e, S.Num)), e.span, "use smaller values", code="E011")
        return val

    def _value(self, e: S.Expr) -> Val:
        if isinstance(e, S.Num):
            if e.unit:
                return Val(e.value * UNIT_SCALE[e.unit], 1)
            return Val(e.value, 0)
        if isinstance(e, S.Str):
            return Val(e.value, None)
        if isinstance(e, S.Bool):
            return Val(e.value, None)
        if isinstance(e, S.Name):
            return self.lookup(e.name, e.span)
        if isinstance(e, S.Unary):
            return self._unary(e)
        if isinstance(e, S.BinOp):
            return self._binop(e)
        if isinstance(e, S.Call):
            return self._call(e)
        raise TypeError(e)

    def _unary(self, e: S.Unary) -> Val:
        x = self(e.operand)
        if e.op == "not":
            if not isinstance(x.v, bool):
                raise err(f"'not' needs a boolean, got {x.describe()}", e.operand.span, code="E012")
            return Val(not x.v, None)
        self._need_number(x, e.operand, e.op)
        return Val(-x.v if e.op == "-" else x.v, x.dim)

    def _need_number(self, x: Val, e: S.Expr, op: str) -> None:
        if not x.is_number:
            raise err(f"'{op}' needs a number, but '{self.text(e)}' is {kind_text(x)}", e.span, code="E012")

    def _binop(self, e: S.BinOp) -> Val:
        spine = [e]  # a + b + c + ...: left operands in a loop, so a long sum needs no recursion
        while isinstance(spine[-1].left, S.BinOp):
            spine.append(spine[-1].left)
        value = self(spine[-1].left)
        for node in reversed(spine):
            value = self._combine(node, value, self(node.right))
        return value

    def _combine(self, e: S.BinOp, a: Val, b: Val) -> Val:
        op = e.op
        if op in ("and", "or"):
            for x, sub in ((a, e.left), (b, e.right)):
                if not isinstance(x.v, bool):
                    raise err(f"'{op}' needs booleans, but '{self.text(sub)}' is {kind_text(x)}", sub.span, code="E012")
            return Val(a.v and b.v if op == "and" else a.v or b.v, None)
        if op in ("==", "!="):
            if (a.dim is None) != (b.dim is None) or (a.is_number and a.dim != b.dim) or type(a.v) is bool and type(b.v) is not bool:
                raise err(f"cannot compare {kind_text(a)} with {kind_text(b)} ('{self.text(e)}')", e.span, code="E012")
            same = math.isclose(a.v, b.v, rel_tol=1e-9, abs_tol=1e-12) if a.is_number else a.v == b.v
            return Val(same if op == "==" else not same, None)
        self._need_number(a, e.left, op)
        self._need_number(b, e.right, op)
        if op in ("<", ">", "<=", ">="):
            self._same_dim(a, b, e, "compare")
            r = {"<": a.v < b.v, ">": a.v > b.v, "<=": a.v <= b.v, ">=": a.v >= b.v}[op]
            return Val(r, None)
        if op in ("+", "-"):
            self._same_dim(a, b, e, "add" if op == "+" else "subtract")
            return Val(a.v + b.v if op == "+" else a.v - b.v, a.dim)
        if op == "*":
            return Val(a.v * b.v, a.dim + b.dim)
        if op == "/":
            if b.v == 0:
                raise err(f"division by zero in '{self.text(e)}'", e.right.span, code="E013")
            return Val(a.v / b.v, a.dim - b.dim)
        if op == "^":
            if b.dim != 0:
                raise err(f"an exponent must be dimensionless, but '{self.text(e.right)}' is {dim_text(b.dim)}", e.right.span, code="E016")
            if a.dim and float(b.v) != int(b.v):
                raise err(f"cannot raise '{self.text(e.left)}' ({dim_text(a.dim)}) to a fractional power", e.span, code="E016")
            if a.v < 0 and float(b.v) != int(b.v):
                raise err(f"'{self.text(e)}' has no real value (a negative number to a fractional power)", e.span, code="E014")
            if a.v == 0 and b.v < 0:
                raise err(f"division by zero in '{self.text(e)}' (zero to a negative power)", e.span, code="E013")
            return Val(a.v ** b.v, int(a.dim * b.v))
        raise TypeError(op)

    def _same_dim(self, a: Val, b: Val, e: S.BinOp, verb: str) -> None:
        if a.dim == b.dim:
            return
        culprit, other = (e.right, a) if b.dim != 0 else (e.left, b)
        cval = b if culprit is e.right else a
        target = "a dimensionless value" if other.dim == 0 else f"'{self.text(e.left if culprit is e.right else e.right)}' ({dim_text(other.dim)})"
        prep = "to" if verb == "add" else ("from" if verb == "subtract" else "with")
        raise err(f"cannot {verb} '{self.text(culprit)}' ({dim_text(cval.dim)}) {prep} {target}", culprit.span,
                  "give both sides the same unit" if cval.dim else None, code="E015")

    def _call(self, e: S.Call) -> Val:
        name = e.func.name
        if name == "noise":
            from .check.noise import in_constant
            raise in_constant(e)
        if name not in CONST_FUNCTIONS:
            from ..diagnostics import unknown
            raise err(unknown("function", name, list(CONST_FUNCTIONS)) + " in a constant expression", e.func.span, code="E018")
        if e.kwargs:
            raise err(f"{name}() takes no keyword arguments", e.kwargs[0].name.span, code="E019")
        args = [self(a) for a in e.args]
        for a, sub in zip(args, e.args):
            self._need_number(a, sub, name)
        want = None if _FUNCTION_TABLE[name].variadic else 1
        if want is not None and len(args) != want or not args:
            raise err(f"{name}() takes {want or 'at least one'} argument{'s' if want != 1 else ''}, got {len(args)}", e.span, code="E019")
        dims = {a.dim for a in args}
        if len(dims) > 1:
            raise err(f"{name}() needs arguments of one dimension, got {', '.join(dim_text(d) for d in sorted(dims))}", e.span, code="E017")
        dim = args[0].dim
        if name == "sqrt":
            if dim % 2:
                raise err(f"sqrt of {dim_text(dim)} has no whole dimension", e.span, code="E016")
            if args[0].v < 0:
                raise err("sqrt of a negative number", e.span, code="E014")
            dim //= 2
        return Val(CONST_FUNCTIONS[name](*[a.v for a in args]), dim)
