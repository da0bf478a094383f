"""Params, variants and overrides: every param's value (dependencies first, in a loop), the
declarations `if` selects, and the `--set`/`params=` values checked like the spec's own."""
from __future__ import annotations

import math
import numbers
from typing import Iterable

from ...diagnostics import Diagnostic, DynError, Span, unknown
from ...util import params as P
from .. import syntax as S
from ..parse import parse_value
from ..values import NON_FINITE_NAMES, Evaluator, Val, err, fmt_quantity, kind_text
from . import generators as G
from .context import TIME_NAME, Context, Override, ParamSlot, not_a_number


def survey(ctx: Context, decls: Iterable) -> None:
    """Note every param and area name in every branch, for did-you-mean and for telling
    'unknown' from 'not in this variant'."""
    for d in decls:
        if isinstance(d, S.ParamDecl):
            ctx.all_param_names.setdefault(d.name.name, d.name.span.line)
        elif isinstance(d, S.AreaDecl) and not d.name.parts:
            ctx.all_area_names.setdefault(d.name.name, d.name.span.line)
            ctx.area_name_spans.setdefault(d.name.name, d.name.span)
        elif isinstance(d, S.For):
            survey(ctx, d.body)
        elif isinstance(d, S.Connection):
            ctx.fed_ports.update(end.port.name for end in d.chain[1:] if end.port is not None)
        elif isinstance(d, S.If):
            survey(ctx, d.then)
            survey(ctx, d.orelse)


def declare_param(ctx: Context, decl: S.ParamDecl) -> None:
    name = decl.name.name
    if decl.trainable:
        ctx.sink.error(f"param '{name}' is marked trainable outside an area", decl.name.span,
                       "declare trainable params inside an area body", code="E024")
    if name in ctx.params:
        first = ctx.params[name].decl.span.line
        ctx.sink.error(f"param '{name}' is defined twice (first at line {first})", decl.name.span, code="E023")
        return
    slot = ctx.params[name] = ParamSlot(decl)
    if name in ctx.overrides:
        slot.override = ctx.attempt(lambda: override_value(ctx, name, ctx.overrides[name]))


def select(ctx: Context, decls: Iterable, top: bool) -> list:
    """The declarations chosen by `if` conditions, in source order."""
    out = []
    for d in decls:
        if isinstance(d, S.For):
            out.extend(_unrolled(ctx, d, top))
            continue
        if not isinstance(d, S.If):
            d = ctx.attempt(lambda d=d: G.plain_names(d, lookup(ctx), ctx.src, ctx.all_param_names))
            if d is not None:
                G.register_areas(d, ctx.all_area_names, ctx.area_name_spans)
                out.append(d)
            continue
        params_first(ctx, d.cond)
        cond = ctx.attempt(lambda d=d: condition(ctx, d.cond, lambda n, s: lookup_param(ctx, n, s)))
        if cond is None:
            continue
        branch = d.then if cond else d.orelse
        if top:
            for sub in branch:
                if isinstance(sub, S.ParamDecl):
                    declare_param(ctx, sub)
        out.extend(select(ctx, branch, top))
    return out


def _unrolled(ctx: Context, d: S.For, top: bool) -> list:
    """A `for` loop's declarations, once per value of its variable (§9.7), selected in turn."""
    body = ctx.attempt(lambda: G.unroll(d, lookup(ctx), ctx.src, ctx.all_param_names), [])
    if top:
        for sub in body:
            if isinstance(sub, S.ParamDecl):
                declare_param(ctx, sub)
    return select(ctx, body, top)


def condition(ctx: Context, expr: S.Expr, lookup) -> bool:
    val = Evaluator(ctx.src, lookup)(expr)
    if not isinstance(val.v, bool):
        raise err(f"a condition must be true or false, but '{ctx.text(expr)}' is {kind_text(val)}",
                  expr.span, "compare it, e.g. 'if feedback != \"off\"'", code="E012")
    return val.v


def lookup_param(ctx: Context, name: str, span: Span) -> Val:
    """The value of top-level param `name` read at `span`; a located error when there is none."""
    if name in ctx.params:
        return param_value(ctx, name, span)
    if name.lower() in NON_FINITE_NAMES and name not in ctx.all_param_names:
        raise not_a_number(name, span)
    if name in ctx.all_param_names:
        raise err(f"param '{name}' is not defined in this variant (it is declared under a condition "
                  f"that is false, line {ctx.all_param_names[name]})", span, code="E021")
    if name == TIME_NAME:
        raise err("'t' is the time of a step and changes during the run; a value here must be constant", span,
                  "use t in an area's equations", code="E118")
    raise err(unknown("param", name, ctx.all_param_names, span.line), span, code="E020")


def lookup(ctx: Context):
    """`lookup_param` bound to `ctx`, as the Evaluator takes it."""
    return lambda name, span: lookup_param(ctx, name, span)


def param_value(ctx: Context, name: str, span: Span) -> Val:
    slot = ctx.params[name]
    if slot.value is None and slot.error is None and not slot.busy:
        _dependencies_first(ctx, name)
    if slot.error is not None:
        raise DynError(slot.error)
    if slot.value is not None:
        return slot.value
    if slot.busy:
        raise err(f"param '{name}' is defined in terms of itself", slot.decl.value.span, code="E022")
    slot.busy = True
    try:
        default = Evaluator(ctx.src, lookup(ctx))(slot.decl.value)
        slot.value = default
        if slot.override is not None:
            slot.value = _checked_override(ctx, name, slot.override, default)
    except DynError as exc:
        slot.error = exc.diagnostics
        raise
    finally:
        slot.busy = False
    return slot.value


def _dependencies_first(ctx: Context, name: str) -> None:
    """Evaluate the params that `name` reads before it, deepest first, in a loop: each
    evaluation then finds its params done, so a chain of 5000 params never recurses deeply.
    A param read again while its own dependencies are walked is defined in terms of itself."""
    path, order = [(name, iter(_param_deps(ctx, name)))], []
    on_path, seen = {name}, {name}
    while path:
        n, deps = path[-1]
        for d in deps:
            slot = ctx.params[d]
            if d in on_path and slot.error is None:
                slot.error = err(f"param '{d}' is defined in terms of itself", slot.decl.value.span,
                                 code="E022").diagnostics
            elif d not in seen and slot.value is None and slot.error is None and not slot.busy:
                path.append((d, iter(_param_deps(ctx, d))))
                on_path.add(d)
                seen.add(d)
                break
        else:
            path.pop()
            on_path.discard(n)
            order.append(n)
    for n in order[:-1]:
        ctx.attempt(lambda n=n: param_value(ctx, n, ctx.params[n].decl.name.span), record=False)


def _param_deps(ctx: Context, name: str) -> list[str]:
    return params_in(ctx, ctx.params[name].decl.value)


def params_in(ctx: Context, expr: S.Expr) -> list[str]:
    return [e.name for e in S.walk_exprs(expr) if isinstance(e, S.Name) and e.name in ctx.params]


def params_first(ctx: Context, expr: S.Expr) -> None:
    """Evaluate the params `expr` reads (errors are kept for when it reads them), so that
    evaluating `expr` does not stack their evaluation on top of its own recursion."""
    for name in params_in(ctx, expr):
        ctx.attempt(lambda name=name: param_value(ctx, name, ctx.params[name].decl.name.span), record=False)


def evaluate_all(ctx: Context) -> None:
    """Every top-level param's value, so each error is reported once even where nothing reads it."""
    for slot in ctx.params.values():
        ctx.attempt(lambda s=slot: param_value(ctx, s.decl.name.name, s.decl.name.span))


# ------------------------------------------------------------------ overrides
def override_problems(params: dict[str, Override] | None) -> list[Diagnostic]:
    """Errors for a `params=` value that is not a dict of names to plain values."""
    bad = P.problems(params if params is not None else {})
    return [Diagnostic("error", message, Span(quote, 0, 0, 0, 0), None, "E025") for quote, message in bad]


def unused_overrides(ctx: Context) -> None:
    for name in ctx.overrides:
        span = Span(P.origin(ctx.overrides, name), 0, 0, 0, 0)
        if name in ctx.params:
            continue
        if name in ctx.all_param_names:
            ctx.sink.error(f"cannot set param '{name}': it is declared under a condition that is false "
                           f"(line {ctx.all_param_names[name]})", span, code="E025")
        else:
            ctx.sink.error(f"cannot set {unknown('param', name, ctx.all_param_names)}", span,
                           "declare it in the spec with 'param NAME = VALUE'", code="E025")


def override_value(ctx: Context, name: str, raw: Override) -> Val:
    """The value an override gives; errors quote it as typed (`--set size=abc`), not as a
    place in the spec."""
    quote = P.origin(ctx.overrides, name)
    if isinstance(raw, bool):
        return Val(raw, None)
    if isinstance(raw, numbers.Real):
        try:
            value = float(raw)
        except OverflowError:  # an int beyond float range
            value = math.inf
        return _finite(name, Val(value, 0), str(raw), quote)
    text = str(raw).strip()
    declared = ctx.params[name].decl.value
    if isinstance(declared, S.Str) and not text.startswith('"'):
        return Val(text, None)
    try:
        expr = parse_value(text, quote)
        params_first(ctx, expr)
        value = Evaluator(text, lookup(ctx))(expr)
    except DynError as exc:  # the Evaluator also refuses a non-finite result (values.py)
        raise _unreadable(ctx, name, text, quote, exc) from None
    return value


def _unreadable(ctx: Context, name: str, text: str, quote: str, exc: DynError) -> DynError:
    """An override's own errors, relocated to the override; a spec error it ran into stays put."""
    declared = ctx.text(ctx.params[name].decl.value)
    hint = f"the spec has {name} = {declared}; e.g. {P.example(ctx.overrides, name, declared)}"
    out = [Diagnostic(d.severity, f"cannot read the value {P.short(text)}: {d.message}", Span(quote, 0, 0, 0, 0),
                      d.hint or hint, "E026") if d.span.file == quote else d for d in exc.diagnostics]
    return DynError(out, ctx.src)


def _finite(name: str, value: Val, text: str, quote: str) -> Val:
    if value.is_number and not math.isfinite(value.v):
        why = "is not a finite number" if "inf" in text or "nan" in text else "is too large to be a number"
        raise err(f"the value {P.short(text)} {why}", Span(quote, 0, 0, 0, 0), f"give {name} a finite value",
                  code="E026")
    return value


def _checked_override(ctx: Context, name: str, new: Val, default: Val) -> Val:
    same = (new.dim == default.dim) and (type(new.v) is type(default.v) or (new.is_number and default.is_number))
    if not same:
        want = kind_text(default)
        fix = P.example(ctx.overrides, name, fmt_quantity(new.v, 1)) if default.dim == 1 and new.dim == 0 else None
        raise err(f"param '{name}' is {want} ({default.describe()}), but the override gives "
                  f"{kind_text(new)} ({new.describe()})", Span(P.origin(ctx.overrides, name), 0, 0, 0, 0),
                  f"write e.g. {fix}" if fix else None, code="E026")
    return new

