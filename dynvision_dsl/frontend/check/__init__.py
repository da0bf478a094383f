"""Stage 2: semantic checks of a parsed spec, one module per concern. The driver resolves
params, conditionals and templates into an `ir.Model`, then runs every rule of `rules.RULES`,
collecting every diagnostic before stopping at the stage boundary."""
from __future__ import annotations

from ...diagnostics import Diagnostic, did_you_mean
from ...middle.conngraph import ConnGraph
from .. import ir
from .. import syntax as S
from ..values import Val
from . import generators as G
from .connections import connections, readouts
from .context import Context, Override
from .params import declare_param, evaluate_all, override_problems, select, survey, unused_overrides
from .rules import GENERATED_ATTRIBUTES, MODULE_ATTRIBUTES, RULES, Draft
from .shapes import infer_shapes, readout_shapes
from .statements import SOLVERS, areas as check_areas
from .templates import declare_dynamics
from .time_input import TIME_ITEMS, input_spec, model_name, time

__all__ = ["GENERATED_ATTRIBUTES", "MODULE_ATTRIBUTES", "RULES", "SOLVERS", "TIME_ITEMS", "check_module",
           "param_values"]


def check_module(module: S.Module, params: dict[str, Override] | None = None,
                 memory: int | None = None) -> tuple[ir.Model | None, list[Diagnostic]]:
    """Resolve and check a parsed module; the model is None when there are errors. The model must
    fit in `memory` bytes (default: this machine's RAM)."""
    bad = override_problems(params)
    if bad:
        return None, bad
    ctx = Context(module, params or {}, memory)
    model = run(ctx)
    unique = G.with_loop_notes(ctx.sink.items)  # a template's error repeats for each area using it
    return (None if ctx.sink.has_errors else model), unique


def param_values(module: S.Module, params: dict[str, Override] | None = None
                 ) -> tuple[dict[str, tuple[S.ParamDecl, Val | None]], list[Diagnostic]]:
    """Each top-level param of the variant that `params` selects: its declaration and its value
    after the overrides (None where it has an error), with every diagnostic of the check."""
    bad = override_problems(params)
    if bad:
        return {}, bad
    ctx = Context(module, params or {})
    run(ctx)
    failed = {n for n, slot in ctx.params.items() if n in (params or {}) and slot.override is None}
    values = {name: (slot.decl, None if name in failed else slot.value) for name, slot in ctx.params.items()}
    return values, G.with_loop_notes(ctx.sink.items)


def run(ctx: Context) -> ir.Model | None:
    """Every check in order; the model, or None where a stage found errors."""
    decls = _variant(ctx)
    by_kind: dict[type, list] = {}
    for d in decls:
        by_kind.setdefault(type(d), []).append(d)
    name = model_name(ctx, by_kind.get(S.ModelDecl, []))
    dt, steps, idle = time(ctx, by_kind.get(S.TimeBlock, []))
    ctx.dt = dt
    inputs = input_spec(ctx, by_kind.get(S.InputDecl, []))
    for d in by_kind.get(S.DynamicsDecl, []):
        declare_dynamics(ctx, d)
    _fed_ports(ctx, by_kind.get(S.Connection, []))
    areas = check_areas(ctx, by_kind.get(S.AreaDecl, []))
    if ctx.sink.has_errors and (dt is None or inputs is None):
        return None
    conns = connections(ctx, by_kind.get(S.Connection, []), areas, inputs, dt)
    outs = readouts(ctx, by_kind.get(S.Readout, []), areas, dt)
    if inputs is None or dt is None:
        return None
    graph = ConnGraph.build([*(i.name for i in inputs), *areas], conns)
    infer_shapes(ctx, areas, conns, inputs, graph)
    draft = Draft(name, dt, steps, idle, inputs, areas, conns, [readout_shapes(ctx, r, areas) for r in outs], graph)
    for rule in RULES:
        rule(ctx, draft)
    if ctx.sink.has_errors or not draft.complete:
        return None
    return draft.model(ctx)


def _variant(ctx: Context) -> list:
    """The declarations of the variant the params select, every param evaluated once."""
    survey(ctx, ctx.module.decls)
    for decl in ctx.module.decls:
        if isinstance(decl, S.ParamDecl):
            declare_param(ctx, decl)
    decls = select(ctx, ctx.module.decls, top=True)
    unused_overrides(ctx)
    evaluate_all(ctx)
    return decls


def _fed_ports(ctx: Context, decls: list[S.Connection]) -> None:
    """The ports this variant's connections feed, per area. A failed connection still counts, and
    one into an unknown area feeds the area it probably meant: its error says enough."""
    for d in decls:
        for end in d.chain[1:]:
            target = end.area.name
            if target not in ctx.all_area_names:
                target = did_you_mean(target, ctx.all_area_names, end.area.span.line) or target
            ctx.fed_into.setdefault(target, set()).add(end.port.name if end.port else "input")
