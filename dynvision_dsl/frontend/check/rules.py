"""Whole-model rules, run in order by the driver once areas, connections and shapes are known:
ports, zero-delay cycles, reachability, module names and resource bounds. Each is a plain
function `rule(ctx, draft)`; `RULES` lists them all, and nothing else decides which run."""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable

from ...bounds import resource_diagnostics
from ...diagnostics import Span, did_you_mean
from ...middle.conngraph import ConnGraph
from ...ops import MODULE_FREE
from .. import ir
from ..values import unit_text
from .context import Context

# Attributes of the generated module (emit's tables, the template's methods, `graph`, set on each
# model) and of every DynModel and nn.Module: a module path may not reuse them, nor start with '_'
# (the generated module's internals, like its step functions). tests/test_check.py keeps this honest.
GENERATED_ATTRIBUTES = frozenset((
    "input_name", "input_shape", "steps", "idle", "classes", "dt", "areas", "area_shapes", "outputs",
    "state_slots", "buffer_len", "present_from", "readout_from", "step_names", "step_inputs", "variant_of", "steady",
    "tail_variants", "tail_from",
    "simulate", "graph", "inputs", "readouts", "readouts_from", "signals", "frames",
    "recompute", "loop_start", "loop_step", "loop_finish"))
# The public attributes of nn.Module and DynModel, written out so that checking never imports torch
# (names starting with '_' are refused anyway); tests/test_check.py compares it with the installed torch.
MODULE_ATTRIBUTES = frozenset((
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "code",
    "check_finite", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "first_scored_step", "float",
    "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "input_transform", "ipu", "load_dynvision",
    "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "picture",
    "program", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "require", "requires_grad_",
    "run", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
    "compile_steps", "execution",))  # runtime/execution.py


@dataclass
class Draft:
    """The checked parts of a model, before it is one `ir.Model`."""

    name: str
    dt: float
    steps: int
    idle: int
    inputs: list[ir.InputSpec]
    areas: dict[str, ir.Area]
    conns: list[ir.Conn]
    readouts: list[ir.ReadoutSpec | None]  # None for one that failed its checks
    graph: ConnGraph

    @property
    def complete(self) -> bool:
        """Every readout passed its checks (and there is one)."""
        return bool(self.readouts) and None not in self.readouts

    def model(self, ctx: Context) -> ir.Model:
        final = {n: s.value.v for n, s in ctx.params.items() if s.value is not None}
        units = {n: unit_text(s.value.dim) for n, s in ctx.params.items() if s.value is not None and s.value.dim}
        model = ir.Model(self.name, ctx.file, ctx.src, self.dt, self.steps, self.idle, self.inputs, self.areas,
                         self.conns, list(self.readouts), final, units)
        model.use_graph(self.graph)  # the one connection graph, built once by the driver
        return model


def ports(ctx: Context, draft: Draft) -> None:
    """A port fed but never read is an error at the port's name in the connection (§9.1)."""
    fed: dict[tuple[str, str], ir.Conn] = {}
    for c in draft.conns:
        fed.setdefault((c.target, c.port), c)
    for (area, port), c in fed.items():
        a = draft.areas.get(area)
        if a is None or port in a.ports or a.incomplete:
            continue
        guess = did_you_mean(port, [p for p in a.ports if (area, p) not in fed] or a.ports)
        ctx.sink.error(f"port '{port}' of {area} is fed but never read by its equations", c.port_span or c.span,
                       f"did you mean '{guess}'?" if guess else f"read '{port}' in {area}'s equations", code="E062")


def zero_delay_cycles(ctx: Context, draft: Draft) -> None:
    seen: set[int] = set()
    for edges in draft.graph.zero_delay_cycles():
        last = max(edges, key=lambda c: c.index)
        if last.index in seen:
            continue
        seen.add(last.index)
        order = [c.source for c in edges]
        start = order.index(last.target)
        order = order[start:] + order[:start]
        path = " -> ".join(order + [order[0]])
        ctx.sink.error(f"{last.source} -> {last.target} closes the cycle {path} with total delay 0 ms",
                       last.span, "give one connection of the cycle a delay of at least dt", code="E063")


def reachability(ctx: Context, draft: Draft) -> None:
    """An area no connection path from the input reaches stays silent: a warning."""
    inp = draft.inputs[0]
    reached = draft.graph.downstream([*(i.name for i in draft.inputs), *ctx.broken_targets])  # failed: reported
    for a in draft.areas.values():
        if a.name not in reached and not any(v is not None for v in a.states.values()) and not any(
                m.startswith(("Bias",)) for m in a.functions.values()):
            ctx.sink.warning(f"no connection path from '{inp.name}' reaches area {a.name}; it stays silent",
                             ctx.area_name_spans.get(a.name, a.span),
                             f"connect it, e.g. '{inp.name} -> {a.name} : conv(3)'", code="W001")


def module_names(ctx: Context, draft: Draft) -> None:
    """Every module path (operators, learnable functions, trainables) is free and unique."""
    owners: dict[str, Span] = {}
    for a in draft.areas.values():
        for path in list(a.functions) + list(a.trainables):
            _claim(ctx, owners, path, ctx.modules.get(path, a.span))
    pipelines = [c.ops for c in draft.conns] + [r.ops for r in draft.readouts if r is not None]
    for ops in pipelines:
        for o in ops:
            if o.kind not in MODULE_FREE:
                _claim(ctx, owners, o.path, o.name_span or o.span)
    paths = sorted(owners)
    for p in paths:  # the names that start with 'p.' sort together, from bisect's point on
        i = bisect.bisect_left(paths, p + ".")
        if i < len(paths) and paths[i].startswith(p + "."):
            ctx.sink.error(f"module name '{p}' is also the start of '{paths[i]}'", owners[p],
                           f"rename one, e.g. '{p}.main'", code="E064")


def _claim(ctx: Context, owners: dict[str, Span], path: str, span: Span) -> None:
    taken = taken_segment(path)
    if taken is not None:
        ctx.sink.error(f"module name '{path}' uses '{taken}', a name the generated module reserves",
                       span, "choose another name with 'as', or rename the area", code="E064")
    elif path in owners:
        ctx.sink.error(f"module name '{path}' is used twice (first at line {owners[path].line})", span,
                       "give each operator its own 'as' name", code="E064")
    else:
        owners[path] = span


def taken_segment(path: str) -> str | None:
    """The segment of a module path that an attribute of the generated module already holds, if any."""
    first, *rest = path.split(".")
    if first in GENERATED_ATTRIBUTES or first in MODULE_ATTRIBUTES or first.startswith("_"):
        return first
    return next((seg for seg in rest if seg in MODULE_ATTRIBUTES), None)


def resource_bounds(ctx: Context, draft: Draft) -> None:
    """The model must fit in memory (bounds.py); checked only once everything else is clean."""
    if ctx.sink.has_errors or not draft.complete:
        return
    ctx.sink.items.extend(resource_diagnostics(draft.model(ctx), ctx.memory))


Rule = Callable[[Context, Draft], None]
RULES: tuple[Rule, ...] = (ports, zero_delay_cycles, reachability, module_names, resource_bounds)
