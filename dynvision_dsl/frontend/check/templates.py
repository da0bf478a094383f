"""Dynamics templates: their declarations, an area's instantiation of one (arguments bound into
the area's scope), conditionals inside bodies and an area's own params."""
from __future__ import annotations

from ...diagnostics import Span, unknown
from .. import ir
from .. import syntax as S
from . import bounded_params as BP
from ..values import Evaluator, Val, err
from .context import AreaState, Context, float32
from .params import condition, lookup, lookup_param


def declare_dynamics(ctx: Context, d: S.DynamicsDecl) -> None:
    if d.name.name in ctx.dynamics:
        first = ctx.dynamics[d.name.name].span.line
        ctx.sink.error(f"dynamics '{d.name.name}' is defined twice (first at line {first})", d.name.span,
                       code="E023")
        return
    ctx.dynamics[d.name.name] = d


def lookup_const(ctx: Context, st: AreaState):
    """The constants an area's expressions see: its scope (template arguments, area params), then params."""
    def find(name: str, span: Span) -> Val:
        val = st.scope.get(name)
        return val if val is not None else lookup_param(ctx, name, span)
    return find


def instantiate(ctx: Context, st: AreaState, call: S.TemplateCall) -> list:
    """The template's statements, its arguments bound into the area's scope."""
    name = call.name.name
    if name not in ctx.dynamics:
        raise err(unknown("dynamics", name, {k: v.span.line for k, v in ctx.dynamics.items()}, call.span.line),
                  call.name.span, code="E039")
    dyn = ctx.dynamics[name]
    st.area.template = name
    st.scope.values.update(_arguments(ctx, call, dyn))
    return flatten(ctx, st, dyn.body)


def _arguments(ctx: Context, call: S.TemplateCall, dyn: S.DynamicsDecl) -> dict[str, Val]:
    name = call.name.name
    params = [p.name.name for p in dyn.params]
    values: dict[str, Val] = {}
    if len(call.args) > len(params):
        raise err(f"{name}() takes {len(params)} argument{'s' * (len(params) != 1)}, got {len(call.args)}",
                  call.args[len(params)].span, code="E040")
    ev = Evaluator(ctx.src, lookup(ctx))
    for p, e in zip(params, call.args):
        values[p] = ev(e)
    for kw in call.kwargs:
        if kw.name.name not in params:
            raise err(unknown(f"parameter of dynamics {name}", kw.name.name, params), kw.name.span, code="E040")
        if kw.name.name in values:
            raise err(f"{name}() got '{kw.name.name}' twice", kw.name.span, code="E040")
        values[kw.name.name] = ev(kw.value)
    for p in dyn.params:
        if p.name.name not in values:
            if p.default is None:
                raise err(f"dynamics {name} needs the argument '{p.name.name}'", call.name.span,
                          f"write '{name}({p.name.name}=...)'", code="E040")
            values[p.name.name] = ev(p.default)
    return values


def flatten(ctx: Context, st: AreaState, body) -> list:
    """The statements `if` selects, the area's params taken into its scope."""
    out = []
    for s in body:
        if isinstance(s, S.If):
            cond = ctx.attempt(lambda s=s: condition(ctx, s.cond, lookup_const(ctx, st)))
            if cond is None:
                continue
            out.extend(flatten(ctx, st, s.then if cond else s.orelse))
        elif isinstance(s, S.ParamDecl):
            _local_param(ctx, st, s)
        else:
            out.append(s)
    return out


def _local_param(ctx: Context, st: AreaState, s: S.ParamDecl) -> None:
    name = s.name.name
    val = ctx.attempt(lambda: Evaluator(ctx.src, lookup_const(ctx, st))(s.value))
    if val is None:
        return
    if not val.is_number and s.trainable:
        ctx.sink.error(f"trainable param '{name}' must be a number, got {val.describe()}", s.value.span,
                       code="E024")
        return
    bounds = None
    if s.options:
        bounds = BP.trainable_bounds(s, val, Evaluator(ctx.src, BP.with_dt(lookup_const(ctx, st), ctx.dt)),
                                     ctx.sink)  # None after an error: the param stays, unbounded
    if s.trainable:
        path = f"{st.name}.{name}"
        if bounds is not None and bounds != ir.TrainableBounds():
            st.area.bounds[path] = bounds
        st.trainable[name] = (path, val.dim)
        ctx.modules.setdefault(path, s.name.span)
        st.area.trainables[path] = float32(float(val.v), ctx.text(s.value), s.value.span)
        st.param_spans[name] = s.name.span
    else:
        st.scope.values[name] = val
        st.param_spans[name] = s.name.span
