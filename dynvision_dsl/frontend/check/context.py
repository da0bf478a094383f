"""The checker's state as one dataclass, shared by every check module, and the small helpers
they all use (collecting a DynError, quoting source text, float32 limits)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ...diagnostics import Diagnostic, DynError, Sink, Span
from .. import ir
from .. import syntax as S
from ..values import Val, err, source_text

Override = Any  # str | int | float | bool
TIME_NAME = "t"  # in an equation: the time of the current step in ms (0 at the first recorded step)
FLOAT32_MAX = 3.4028234663852886e38  # the model computes in float32: a larger constant is inf there
T = TypeVar("T")


@dataclass
class ParamSlot:
    """A top-level param: its declaration, value, override, and why it has no value."""

    decl: S.ParamDecl
    value: Val | None = None
    override: Val | None = None
    busy: bool = False
    error: list[Diagnostic] | None = None  # why it has no value, once evaluated


@dataclass
class Scope:
    """Names visible to constant expressions: params, template arguments, area params."""

    values: dict[str, Val] = field(default_factory=dict)
    parent: "Scope | None" = None

    def get(self, name: str) -> Val | None:
        if name in self.values:
            return self.values[name]
        return self.parent.get(name) if self.parent else None


@dataclass
class Context:
    """Everything one check of a module knows; each check module reads and adds to it."""

    module: S.Module
    overrides: dict[str, Override]
    memory: int | None = None  # bytes the model must fit in (None: this machine's RAM)
    sink: Sink = field(default_factory=Sink)
    params: dict[str, ParamSlot] = field(default_factory=dict)
    all_param_names: dict[str, int] = field(default_factory=dict)  # every branch's params -> line
    all_area_names: dict[str, int] = field(default_factory=dict)
    area_name_spans: dict[str, Span] = field(default_factory=dict)  # where each area name is first declared
    dynamics: dict[str, S.DynamicsDecl] = field(default_factory=dict)
    selected_areas: set[str] = field(default_factory=set)  # this variant's areas, also ones that failed
    modules: dict[str, Span] = field(default_factory=dict)  # module path -> where it was named
    broken_targets: set[str] = field(default_factory=set)  # areas fed by a connection that failed its checks
    fed_ports: set[str] = field(default_factory=set)  # every port name any connection of the spec feeds
    fed_into: dict[str, set[str]] = field(default_factory=dict)  # area -> ports this variant's connections feed
    dt: float | None = None  # ms, once the time block is read

    @property
    def src(self) -> str:
        return self.module.source

    @property
    def file(self) -> str:
        return self.module.file

    def text(self, node) -> str:
        """The source text of a node."""
        return source_text(self.src, node.span)

    def text_at(self, span: Span) -> str:
        return source_text(self.src, span)

    def attempt(self, fn: Callable[[], T], default: T | None = None, record: bool = True) -> T | None:
        """Run `fn`, turning a DynError into collected diagnostics (or, with record off, into the default)."""
        try:
            return fn()
        except DynError as exc:
            if record:
                self.sink.items.extend(exc.diagnostics)
            return default


@dataclass
class AreaState:
    """What checking one area has found so far: its scope, states, variables and ports."""

    decl: S.AreaDecl
    area: ir.Area
    scope: Scope = field(default_factory=Scope)  # template arguments, then area params (constants)
    trainable: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (module path, dim)
    param_spans: dict[str, Span] = field(default_factory=dict)  # the area's own params, where declared
    states: dict[str, ir.EqExpr | None] = field(default_factory=dict)
    state_spans: dict[str, Span] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)
    declared_ports: dict[str, Span] = field(default_factory=dict)  # `port NAME`: optional, silent while unfed
    ports: list[str] = field(default_factory=list)
    fn_count: dict[str, int] = field(default_factory=dict)
    stmts: list = field(default_factory=list)  # the area's statements, template first
    pre: set[int] = field(default_factory=set)  # ids of the assignments above the ODEs (§9.2)
    pre_names: set[str] = field(default_factory=set)  # the variables they assign
    in_pre: bool = False  # checking an assignment above the ODEs
    output_span: Span | None = None

    @property
    def name(self) -> str:
        return self.decl.name.name


def unitless_definition(ctx: Context, e: S.Expr) -> Span | None:
    """Where a top-level param is defined by a bare number, when `e` is just its name: a time
    error there is the definition's (it lacks the unit), not the use's."""
    if not isinstance(e, S.Name) or e.name not in ctx.params:
        return None
    value = ctx.params[e.name].decl.value
    return value.span if isinstance(value, S.Num) and value.unit is None else None


def need_time(ctx: Context, e: S.Expr, message: str, hint: str, role: str) -> DynError:
    """A 'must be a time' error at `e`, or at the definition of the unit-less param `e` names,
    noting where it is used."""
    where = unitless_definition(ctx, e)
    if where is None:
        return err(message, e.span, hint, code="E032")
    return err(f"{message} (its definition '{ctx.text_at(where)}' has no unit)", where,
               f"write the unit in its definition, e.g. '{ctx.text_at(where)} ms'; "
                               f"'{e.name}' is used as {role} at line {e.span.line}, column {e.span.col}", code="E032")


def keyword_span(span: Span, word: str) -> Span:
    """The keyword a declaration starts with (`readout` of a second readout line)."""
    return Span(span.file, span.line, span.col, span.line, span.col + len(word))


def float32(value: float, text: str, span: Span) -> float:
    """`value`, if float32 (which the model computes in) holds it; a DynError at `span` otherwise."""
    if not abs(value) <= FLOAT32_MAX:
        what = f"is {value:.3g}, beyond" if math.isfinite(value) else "overflows"
        raise err(f"'{text}' {what} the float32 range the model computes in (about 3.4e38)", span,
                  "use a smaller value", code="E011")
    return value


def plain(x: float) -> str:
    """A whole number in digits (1000000, not 1e+06), anything else as %g."""
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else f"{x:g}"


def not_a_number(name: str, span: Span) -> DynError:
    return err(f"'{name}' is not a number in a spec: every value is finite (there is no inf or nan)", span,
               "write a large finite number instead, e.g. 1e9", code="E011")


def lower_hint(text: str, params: dict, example: str) -> str:
    """'lower it with --set NAME=...' when `text` is just a param's name, else 'lower it in the spec'."""
    if text in params:
        return f"lower it with --set {text}=... ({example})"
    return f"lower it in the spec ({example})"
