"""The abstract syntax tree of a `.dyn` file: small dataclasses, a span on every node."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .diagnostics import Span


@dataclass(frozen=True)
class Ident:
    name: str
    span: Span


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


@dataclass(frozen=True)
class If:
    cond: Expr
    then: tuple["Decl", ...]
    orelse: tuple["Decl", ...]
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
    ModelDecl, TimeBlock, ParamDecl, InputDecl, Readout, AreaDecl, DynamicsDecl, Connection, If,
    Ode, Assign, StateDecl, OutputStmt, SolverStmt,
]


@dataclass
class Module:
    """A parsed `.dyn` file."""

    decls: tuple[Decl, ...]
    source: str
    file: str
    comments: dict[int, str] = field(default_factory=dict)


def walk_exprs(expr: Expr):
    """Yield `expr` and every sub-expression, depth first."""
    yield expr
    if isinstance(expr, Call):
        for a in expr.args:
            yield from walk_exprs(a)
        for k in expr.kwargs:
            yield from walk_exprs(k.value)
    elif isinstance(expr, BinOp):
        yield from walk_exprs(expr.left)
        yield from walk_exprs(expr.right)
    elif isinstance(expr, Unary):
        yield from walk_exprs(expr.operand)
