"""Connections and the readout: their areas, delays and operator pipelines, and the binding of
call arguments to a signature (operators, learnable functions)."""
from __future__ import annotations

import math
from typing import Any

from ...bounds import MAX_DELAY_STEPS
from ...diagnostics import Diagnostic, DynError, Span, did_you_mean, unknown
from ...ops import OPERATORS, OpError, OpSpec, resolve_defaults
from .. import ir
from .. import syntax as S
from ..values import Evaluator, err, fmt_quantity, kind_text, source_text
from . import fixed_ops as FX
from . import inputs as IO
from . import state_links as SL
from .context import Context, keyword_span, lower_hint, need_time, plain
from .params import lookup


def area_ref(ctx: Context, ident: S.Ident, areas, inp, allow_input: bool) -> bool:
    """Whether `ident` names an area (or, with allow_input, the input); an error if it does not."""
    name = ident.name
    inputs = {i.name: i for i in inp or ()}
    if name in areas or (allow_input and name in inputs):
        return True
    if name in inputs:
        ctx.sink.error(f"the input '{name}' cannot receive connections", ident.span,
                       "connections run from the input to areas", code="E055")
        return False
    if name in ctx.all_area_names and name not in areas:
        if name in ctx.selected_areas:
            return False  # the area failed its own checks; its error is already reported
        ctx.sink.error(f"area '{name}' is not part of this variant (it is declared under a condition "
                       f"that is false, line {ctx.all_area_names[name]})", ident.span, code="E021")
        return False
    cands = dict(ctx.all_area_names)
    for i in inp or ():
        cands.setdefault(i.name, i.span.line)
    ctx.sink.error(unknown("area", name, cands, ident.span.line), ident.span, code="E054")
    if not allow_input:  # the area probably meant is fed by this broken connection
        ctx.broken_targets.add(did_you_mean(name, cands, ident.span.line) or name)
    return False


def delay(ctx: Context, expr: S.Expr | None, dt: float | None) -> tuple[float, int]:
    """A delay in ms and in steps of dt."""
    if expr is None:
        return 0.0, 0
    val = Evaluator(ctx.src, lookup(ctx))(expr)
    if val.dim != 1:
        raise need_time(ctx, expr, f"a delay must be a time, but '{ctx.text(expr)}' is {kind_text(val)}",
                        "write a unit after the number, e.g. 'delay 2 ms'", "a delay")
    if val.v < 0:
        raise err(f"a delay cannot be negative, got {val.describe()}", expr.span, code="E033")
    if dt is None:
        return float(val.v), 0
    ratio = val.v / dt
    if not ratio <= MAX_DELAY_STEPS:  # also inf, from a tiny dt
        raise err(f"delay '{ctx.text(expr)}' is {plain(ratio)} steps of dt = {fmt_quantity(dt, 1)}, more "
                  f"than the {MAX_DELAY_STEPS} a delay buffer may hold", expr.span,
                  lower_hint(ctx.text(expr), ctx.params, f"at most {plain(MAX_DELAY_STEPS * dt)} ms")
                  + (" or raise dt" if dt < 1e-3 else ""), code="E034")
    if abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)):
        raise err(f"delay {val.describe()} is not a multiple of dt = {fmt_quantity(dt, 1)}", expr.span,
                  f"use {fmt_quantity(math.floor(ratio) * dt, 1)} or {fmt_quantity(math.ceil(ratio) * dt, 1)}",
                  code="E036")
    return float(val.v), int(round(ratio))


def connections(ctx: Context, decls: list[S.Connection], areas, inp, dt) -> list[ir.Conn]:
    """Each link of each connection chain, its operators bound and named."""
    conns: list[ir.Conn] = []
    names: dict[str, int] = {}
    for d in decls:
        wait = ctx.attempt(lambda d=d: delay(ctx, d.delay, dt))
        for src, dst in zip(d.chain, d.chain[1:]):
            ok_src = area_ref(ctx, src.area, areas, inp, allow_input=True)
            var = SL.source_var(src, areas, inp, ctx.sink) if ok_src and src.port is not None else None
            ok_src = ok_src and var is not False
            ok_dst = area_ref(ctx, dst.area, areas, inp, allow_input=False)
            ops = pipeline_args(ctx, d.pipeline)
            if not (ok_src and ok_dst) or ops is None or wait is None:
                ctx.broken_targets.add(dst.area.name)
                continue
            if any(kind == "lateral" and args["kind"] == "none" for kind, args, _, _ in ops):
                continue  # lateral(none, k): no recurrence, no connection
            port = dst.port.name if dst.port else "input"
            label = f"{ir.signal_name(src.area.name, var)} -> {dst.area.name}" + (f".{port}" if dst.port else "")
            base = f"{src.area.name}{'_' + var if var else ''}_to_{dst.area.name}" + (f"_{port}" if dst.port else "")
            names[base] = names.get(base, 0) + 1
            if names[base] > 1:
                base += f"_{names[base]}"
            conns.append(ir.Conn(len(conns), src.area.name, dst.area.name, port, op_stubs(ops, base),
                                 wait[0], wait[1], d.span, label, ctx.text(d), var,
                                 dst.port.span if dst.port else dst.area.span))
    return conns


def op_stubs(ops, base: str) -> list[OpSpec]:
    """Unnamed operators are called BASE.KIND (BASE.KIND_i when a kind repeats)."""
    kinds = [kind for kind, _, _, _ in ops]
    out = []
    for i, (kind, args, alias, op) in enumerate(ops):
        derived = f"{base}.{kind}" if kinds.count(kind) == 1 else f"{base}.{kind}_{i}"
        named = op.alias.span if op.alias else op.name.span
        out.append(OpSpec(kind, tuple(sorted(args.items())), alias or derived, (), (), op.span, named))
    return out


def pipeline_args(ctx: Context, pipeline: tuple[S.Op, ...]):
    """(kind, args, alias, span) of each operator, or None when one has an error."""
    out = []
    for op in pipeline:
        res = ctx.attempt(lambda op=op: _op_args(ctx, op))
        if res is None:
            return None
        out.append(res)
    return out


def _op_args(ctx: Context, op: S.Op):
    name = op.name.name
    if name not in OPERATORS:
        raise err(unknown("operator", name, list(OPERATORS)), op.name.span,
                  "operators: " + ", ".join(OPERATORS), code="E057")
    FX.check_before_binding(op)
    args = bind_args(ctx, OPERATORS[name].args, op.args, op.kwargs, name, op.name.span, lookup(ctx))
    try:
        args = resolve_defaults(OPERATORS[name], args)
    except OpError as exc:
        raise err(f"{name}: {exc.message}", _arg_span(op, exc.arg), exc.hint, code="E058") from None
    FX.check_after_binding(op, args)
    args = FX.trimmed(name, args)
    return name, args, op.alias.name if op.alias else None, op


def _arg_span(op: S.Op, arg: str | None) -> Span:
    """Where argument `arg` of an operator call is written (keyword or position), else the operator's name."""
    for kw in op.kwargs:
        if kw.name.name == arg:
            return kw.value.span
    names = [a.name for a in OPERATORS[op.name.name].args]
    if arg in names and names.index(arg) < len(op.args):
        return op.args[names.index(arg)].span
    return op.name.span


def readouts(ctx: Context, decls: list[S.Readout], areas, dt) -> list[ir.ReadoutSpec | None]:
    """Every readout in declaration order (None for one that failed its checks; §9.8)."""
    if not decls:
        ctx.sink.error("the spec has no readout", Span(ctx.file, 1, 1, 1, 2),
                       "add e.g. 'readout IT : avgpool | linear(10)'", code="E029")
        return []
    clashes = IO.check_readout_names(decls, ctx.sink)
    return [None if i in clashes else _readout(ctx, d, i, areas, dt, len(decls) > 1) for i, d in enumerate(decls)]


def _readout(ctx: Context, d: S.Readout, i: int, areas, dt, several: bool) -> ir.ReadoutSpec | None:
    ok = area_ref(ctx, d.source, areas, None, allow_input=False)
    ops = pipeline_args(ctx, d.pipeline)
    wait = ctx.attempt(lambda: delay(ctx, d.delay, dt))
    if not ok or ops is None or wait is None:
        return None
    name = IO.readout_name(d)[0]
    specs = op_stubs(ops, IO.readout_base(name, several))
    return ir.ReadoutSpec(d.source.name, specs, wait[0], wait[1], 0, d.span, ctx.text(d), name, -1 - i)


# --------------------------------------------------------------- arguments
def bind_args(ctx: Context, sig, args, kwargs, fname: str, span: Span, lookup_fn) -> dict[str, Any]:
    """Bind positional then keyword arguments to a signature, Python style; `span` is the callee's name."""
    ev = Evaluator(ctx.src, lookup_fn)
    out: dict[str, Any] = {}
    if len(args) > len(sig):
        raise err(f"{fname}() takes at most {len(sig)} argument{'s' * (len(sig) != 1)}, got {len(args)}",
                  args[len(sig)].span, code="E040")
    for a, expr in zip(sig, args):
        value = _arg_value(ctx, ev, a, expr, fname, sig, out, lookup_fn)
        if not _took_flag(expr, a, out, sig):  # a bare flag (`conv(3, fixed)`) sets itself, not the slot
            out[a.name] = value
    for kw in kwargs:
        match = [a for a in sig if a.name == kw.name.name]
        if not match:
            raise err(unknown(f"argument of {fname}()", kw.name.name, [a.name for a in sig]), kw.name.span,
                      code="E040")
        if kw.name.name in out:
            raise err(f"{fname}() got '{kw.name.name}' twice", kw.name.span, code="E040")
        out[kw.name.name] = _arg_value(ctx, ev, match[0], kw.value, fname, sig, out, lookup_fn)
    for a in sig:
        if a.required and out.get(a.name) is None:  # a bare flag may have taken its place
            raise err(f"{fname}() needs the argument '{a.name}'", span, code="E040")
    return out


def _took_flag(expr, a, out: dict, sig) -> bool:
    """Whether positional `expr` was a bare flag naming another argument of `sig`."""
    return (isinstance(expr, S.Name) and expr.name != a.name and out.get(expr.name) is True
            and any(s.kind == "bool" and s.name == expr.name for s in sig))


def _arg_value(ctx, ev, a, expr, fname, sig, out, lookup_fn):
    if isinstance(expr, S.Name):
        found = _bare_word(ev, a, expr, fname, sig, out, lookup_fn)
        if found is not _VALUE:
            return found
        val = lookup_fn(expr.name, expr.span)
    else:
        val = ev(expr)
    try:
        return _typed(a, val, fname, source_text(ctx.src, expr.span), expr.span)
    except DynError as exc:
        raise _at_definition(ctx, exc, expr, f"{a.name} of {fname}()") from None


def _at_definition(ctx: Context, exc: DynError, expr: S.Expr, role: str) -> DynError:
    """An argument that is just a param's name has its wrong value from the param's definition:
    the error points there and says where the param is used (LANGUAGE.md §9.1)."""
    if not isinstance(expr, S.Name) or expr.name not in ctx.params:
        return exc
    value = ctx.params[expr.name].decl.value
    use = f"'{expr.name}' is used as {role} at line {expr.span.line}, column {expr.span.col}"
    return DynError([Diagnostic(d.severity, d.message, value.span, f"{use}; {d.hint}" if d.hint else use, d.code)
                     for d in exc.diagnostics])


_VALUE = object()  # a bare word that names a value, not a choice or a flag


def _bare_word(ev, a, expr: S.Name, fname, sig, out, lookup_fn):
    """A bare word as an argument: an enum choice or a flag where it names no value."""
    bare = expr.name
    try:
        lookup_fn(bare, expr.span)
        return _VALUE
    except DynError:
        if a.kind == "enum" and bare in a.choices:
            return bare
        flags = [s for s in sig if s.kind == "bool" and s.name == bare]
        if flags:
            out[bare] = True
            return out.get(a.name, a.default) if a.name != bare else True
        if a.kind == "enum":
            raise err(unknown(f"{a.name} of {fname}()", bare, list(a.choices)), expr.span,
                      "choices: " + ", ".join(a.choices), code="E041") from None
        raise


def _typed(a, val, fname: str, text: str, span: Span):
    """An argument's value checked against its kind (enum, bool, int, float)."""
    if a.kind == "enum":
        if not isinstance(val.v, str) or val.v not in a.choices:
            guess = did_you_mean(str(val.v), a.choices) if isinstance(val.v, str) else None
            raise err(f"{a.name} of {fname}() must be one of {', '.join(a.choices)}; got {val.describe()}"
                      + (f" (did you mean '{guess}'?)" if guess else ""), span, code="E041")
        return val.v
    if a.kind == "bool":
        if not isinstance(val.v, bool):
            raise err(f"{a.name} of {fname}() must be true or false, got '{text}'", span, code="E041")
        return val.v
    if not val.is_number or isinstance(val.v, bool) or val.dim != 0:
        raise err(f"{a.name} of {fname}() must be a dimensionless number, but '{text}' is {kind_text(val)}",
                  span, code="E041")
    if a.kind == "int":
        if float(val.v) != int(val.v):
            raise err(f"{a.name} of {fname}() must be a whole number, got {val.describe()}", span, code="E041")
        return int(val.v)
    return float(val.v)
