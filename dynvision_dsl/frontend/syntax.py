"""The abstract syntax tree of a `.dyn` file: small dataclasses, a span on every node."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from typing import Union

from ..diagnostics import Diagnostic, Span


@dataclass(frozen=True)
class Ident:
    """A name as written. An interpolated name (`L{i+1}`) keeps its pieces in `parts`
    (text and expressions) until the generator stage makes it plain (`L3`, parts empty)."""

    name: str
    span: Span
    parts: tuple = ()


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Num:
    value: float
    unit: str | None  # "ms" | "s" | None
    text: str
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class Kwarg:
    name: Ident
    value: "Expr"


@dataclass(frozen=True)
class Call:
    func: Ident
    args: tuple["Expr", ...]
    kwargs: tuple[Kwarg, ...]
    alias: Ident | None
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / ^ == != < > <= >= and or
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str  # - + not
    operand: "Expr"
    span: Span


Expr = Union[Num, Str, Bool, Name, Call, BinOp, Unary]


# ------------------------------------------------------------- area statements
@dataclass(frozen=True)
class Ode:
    var: Ident
    coef: Expr | None  # tau in `tau * dr/dt = rhs`
    rhs: Expr
    span: Span


@dataclass(frozen=True)
class Assign:
    var: Ident
    value: Expr
    span: Span


@dataclass(frozen=True)
class StateDecl:
    var: Ident
    init: Expr
    span: Span


@dataclass(frozen=True)
class PortDecl:
    """`port fb`: an optional port, silent while no connection feeds it (LANGUAGE.md §9.1)."""

    var: Ident
    span: Span


@dataclass(frozen=True)
class OutputStmt:
    var: Ident
    span: Span


@dataclass(frozen=True)
class SolverStmt:
    solver: Ident
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    name: Ident
    value: Expr
    trainable: bool
    span: Span
    options: tuple = ()  # `trainable(min = dt, max = 100 ms, per = channel)`: its arguments (Kwarg or Expr)


@dataclass(frozen=True)
class If:
    cond: Expr
    then: tuple["Decl", ...]
    orelse: tuple["Decl", ...]
    span: Span


@dataclass(frozen=True)
class For:
    """`for var in start..stop { body }`: the body once per whole number, both bounds included."""

    var: Ident
    start: "Expr"
    stop: "Expr"
    body: tuple["Decl", ...]
    span: Span


# ------------------------------------------------------------ top-level decls
@dataclass(frozen=True)
class ModelDecl:
    name: Ident
    span: Span


@dataclass(frozen=True)
class TimeItem:
    name: Ident
    value: Expr


@dataclass(frozen=True)
class TimeBlock:
    items: tuple[TimeItem, ...]
    span: Span


@dataclass(frozen=True)
class InputDecl:
    name: Ident
    shape: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Op:
    """One stage of a connection's pipeline: `conv(3, stride=2) as V1.conv`."""

    name: Ident
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    alias: Ident | None
    span: Span


@dataclass(frozen=True)
class Endpoint:
    area: Ident
    port: Ident | None
    span: Span


@dataclass(frozen=True)
class Connection:
    chain: tuple[Endpoint, ...]
    pipeline: tuple[Op, ...]
    delay: Expr | None
    span: Span


@dataclass(frozen=True)
class Readout:
    source: Ident
    pipeline: tuple[Op, ...]
    delay: Expr | None
    span: Span


@dataclass(frozen=True)
class TemplateCall:
    name: Ident
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True)
class AreaDecl:
    name: Ident
    shape: tuple[Expr, ...]
    template: TemplateCall | None
    body: tuple["Decl", ...]
    span: Span


@dataclass(frozen=True)
class TemplateParam:
    name: Ident
    default: Expr | None


@dataclass(frozen=True)
class DynamicsDecl:
    name: Ident
    params: tuple[TemplateParam, ...]
    body: tuple["Decl", ...]
    span: Span


Decl = Union[
    ModelDecl, TimeBlock, ParamDecl, InputDecl, Readout, AreaDecl, DynamicsDecl, Connection, If, For,
    Ode, Assign, StateDecl, PortDecl, OutputStmt, SolverStmt,
]


@dataclass
class Module:
    """A parsed `.dyn` file."""

    decls: tuple[Decl, ...]
    source: str
    file: str
    comments: dict[int, str] = field(default_factory=dict)


def walk_exprs(expr: Expr):
    """Yield `expr` and every sub-expression, depth first (a loop, not recursion)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        stack.extend(reversed(_operands(e)))


def _operands(e: Expr) -> list[Expr]:
    if isinstance(e, Call):
        return [*e.args, *(k.value for k in e.kwargs)]
    if isinstance(e, BinOp):
        return [e.left, e.right]
    if isinstance(e, Unary):
        return [e.operand]
    return []


# ------------------------------------------------------------- nesting limit
# Later stages walk `if` blocks and expressions recursively; this bound keeps
# them far from Python's recursion limit. A chain of binary operators at one
# level (`a + b + c + ...`, any length) counts once: its left operands are walked
# in loops, so only right operands, call arguments and unary operands nest.
MAX_NESTING = 100
_EXPRS = (Num, Str, Bool, Name, Call, BinOp, Unary)


def nesting_error(decls, limit: int = MAX_NESTING) -> Diagnostic | None:
    """The first `if` or operation nested more than `limit` deep, as an error; None if there is none."""
    stack = [(d, 0) for d in reversed(decls)]
    while stack:
        node, ifs = stack.pop()
        if isinstance(node, _EXPRS):
            found = _deep_operation(node, limit)
            if found is not None:
                return Diagnostic("error", f"expression nested too deeply (limit {limit})", found.span,
                                  "split it: compute an inner part as its own param or variable", "E009")
            continue
        if isinstance(node, If):
            ifs += 1
            if ifs > limit:
                return Diagnostic("error", f"'if' blocks nested too deeply (limit {limit})", node.span,
                                  "join conditions with 'and' instead of nesting them", "E009")
        stack.extend((child, ifs) for child in reversed(_parts(node)))
    return None


def _parts(node) -> list:
    """The syntax nodes held by a declaration's fields (names and spans left out)."""
    out = []
    for name in _field_names(type(node)):
        value = getattr(node, name)
        for v in value if isinstance(value, tuple) else (value,):
            if is_dataclass(v) and not isinstance(v, (Ident, Span)):
                out.append(v)
    return out


@lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _deep_operation(root: Expr, limit: int) -> Expr | None:
    """The first operation (call, operator) more than `limit` levels inside `root`, depth first."""
    stack = [(root, 1)]
    while stack:
        e, level = stack.pop()
        if not isinstance(e, (Call, BinOp, Unary)):
            continue
        if level > limit:
            return e
        if isinstance(e, BinOp):
            stack.extend(((e.right, level + 1), (e.left, level)))
        else:
            stack.extend((x, level + 1) for x in reversed(_operands(e)))
    return None
