"""Stage 2: semantic checks. Resolves params, conditionals and templates into
an `ir.Model`, collecting every diagnostic (names, dimensions, delays, shapes,
ports, cycles, module names) before stopping at the stage boundary."""
from __future__ import annotations

import bisect
import heapq
import keyword
import math
import numbers
import operator
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx

from . import ir
from . import syntax as S
from .bounds import MAX_DELAY_STEPS, MAX_STEPS, resource_diagnostics
from .diagnostics import Diagnostic, DynError, Sink, Span, did_you_mean, unknown
from .frontend.check import bounded_params as BP
from .frontend.check import inputs as IO
from .frontend.check import state_links as SL
from .frontend.check import coefficient as CO
from .frontend.check import fixed_ops as FX
from .frontend.check import generators as G
from .frontend.check import reductions as R
from .frontend.check import solver_param as SP
from .ops import FUNCTIONS, MATH_FUNCTIONS, MODULE_FREE, OPERATORS, OpError, OpSpec, has_channel_map, resolve_defaults
from .parse import parse_value
from .util import params as P
from .values import NON_FINITE_NAMES, Evaluator, Val, dim_text, err, fmt_quantity, kind_text, source_text
from .frontend.check import noise as noise_rules, variables

SOLVERS = ("euler", "rk4", "exponential")
# Attributes of the generated module (emit's tables, the template's methods, `graph`, set on each
# model) and of every DynModel and nn.Module: a module path may not reuse them, nor start with '_'
# (the generated module's internals, like its step functions). tests/test_check.py keeps this honest.
GENERATED_ATTRIBUTES = frozenset((
    "input_name", "input_shape", "steps", "idle", "classes", "dt", "areas", "area_shapes", "outputs",
    "state_slots", "buffer_len", "present_from", "readout_from", "step_names", "step_inputs", "variant_of", "steady",
    "simulate", "graph", "inputs", "readouts", "readouts_from", "signals", "frames"))
# The public attributes of nn.Module and DynModel, written out so that checking never imports torch
# (names starting with '_' are refused anyway); tests/test_check.py compares it with the installed torch.
MODULE_ATTRIBUTES = frozenset((
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "code",
    "check_finite", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "input_transform", "ipu", "load_dynvision",
    "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "picture",
    "program", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "require", "requires_grad_",
    "run", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",))
TIME_ITEMS = ("dt", "steps", "idle")
TIME_NAME = "t"  # in an equation: the time of the current step in ms (0 at the first recorded step)
FLOAT32_MAX = 3.4028234663852886e38  # the model computes in float32: a larger constant is inf there
Override = Any  # str | int | float | bool


@dataclass
class _ParamSlot:
    decl: S.ParamDecl
    value: Val | None = None
    override: Val | None = None
    busy: bool = False
    error: list[Diagnostic] | None = None  # why it has no value, once evaluated


@dataclass
class _Scope:
    """Names visible to constant expressions: params, template arguments, area params."""

    values: dict[str, Val] = field(default_factory=dict)
    parent: "_Scope | None" = None

    def get(self, name: str) -> Val | None:
        if name in self.values:
            return self.values[name]
        return self.parent.get(name) if self.parent else None


def check_module(module: S.Module, params: dict[str, Override] | None = None,
                 memory: int | None = None) -> tuple[ir.Model | None, list[Diagnostic]]:
    """Resolve and check a parsed module; the model is None when there are errors. The model must
    fit in `memory` bytes (default: this machine's RAM)."""
    bad = P.problems(params if params is not None else {})
    if bad:
        return None, [Diagnostic("error", message, Span(quote, 0, 0, 0, 0)) for quote, message in bad]
    checker = _Checker(module, params or {})
    model = checker.run()
    if model is not None and not checker.sink.has_errors:
        checker.sink.items.extend(resource_diagnostics(model, memory))
    unique = G.with_loop_notes(checker.sink.items)  # a template's error repeats for each area using it
    return (None if checker.sink.has_errors else model), unique


def param_values(module: S.Module, params: dict[str, Override] | None = None
                 ) -> tuple[dict[str, tuple[S.ParamDecl, Val | None]], list[Diagnostic]]:
    """Each top-level param of the variant that `params` selects: its declaration and its value
    after the overrides (None where it has an error), with every diagnostic of the check."""
    bad = P.problems(params if params is not None else {})
    if bad:
        return {}, [Diagnostic("error", message, Span(quote, 0, 0, 0, 0)) for quote, message in bad]
    checker = _Checker(module, params or {})
    checker.run()
    failed = {n for n, slot in checker.params.items() if n in (params or {}) and slot.override is None}
    values = {name: (slot.decl, None if name in failed else slot.value) for name, slot in checker.params.items()}
    return values, G.with_loop_notes(checker.sink.items)


class _Checker:
    def __init__(self, module: S.Module, overrides: dict[str, Override]):
        self.m = module
        self.src = module.source
        self.file = module.file
        self.sink = Sink()
        self.overrides = overrides
        self.params: dict[str, _ParamSlot] = {}
        self.all_param_names: dict[str, int] = {}
        self.all_area_names: dict[str, int] = {}
        self.area_name_spans: dict[str, Span] = {}  # where each area name is first declared
        self.dynamics: dict[str, S.DynamicsDecl] = {}
        self.selected_areas: set[str] = set()  # areas of this variant, including ones that failed their checks
        self.modules: dict[str, Span] = {}  # module path -> where it was named
        self.broken_targets: set[str] = set()  # areas fed by a connection that failed its checks
        self.dt: float | None = None  # ms, once the time block is read

    # ----------------------------------------------------------------- driver
    def run(self) -> ir.Model | None:
        self._survey(self.m.decls)
        for decl in self.m.decls:
            if isinstance(decl, S.ParamDecl):
                self._declare_param(decl)
        decls = self._select(self.m.decls, top=True)
        self._unused_overrides()
        for slot in self.params.values():
            self._try(lambda s=slot: self._param_value(s.decl.name.name, s.decl.name.span))
        by_kind: dict[type, list] = {}
        for d in decls:
            by_kind.setdefault(type(d), []).append(d)
        name = self._model_name(by_kind.get(S.ModelDecl, []))
        dt, steps, idle = self._time(by_kind.get(S.TimeBlock, []))
        self.dt = dt
        inp = self._input(by_kind.get(S.InputDecl, []))
        for d in by_kind.get(S.DynamicsDecl, []):
            self._declare_dynamics(d)
        areas = self._areas(by_kind.get(S.AreaDecl, []), inp)
        if self.sink.has_errors and (dt is None or inp is None):
            return None
        conns = self._connections(by_kind.get(S.Connection, []), areas, inp, dt)
        readouts = self._readouts(by_kind.get(S.Readout, []), areas, dt)
        if inp is None or dt is None:
            return None
        self._infer_shapes(areas, conns, inp)
        readouts = [self._readout_shapes(r, areas) for r in readouts]
        readout = None if None in readouts or not readouts else readouts
        self._check_ports(areas, conns)
        self._check_zero_delay_cycles(conns)
        self._check_reachability(areas, conns, inp)
        self._check_module_names(areas, conns, [r for r in readouts if r is not None])
        if self.sink.has_errors or readout is None:
            return None
        final = {n: s.value.v for n, s in self.params.items() if s.value is not None}
        return ir.Model(name, self.file, self.src, dt, steps, idle, inp, areas, conns, readouts, final)

    def _try(self, fn, default=None, record: bool = True):
        """Run `fn`, turning a DynError into collected diagnostics (or, with record off, into the default)."""
        try:
            return fn()
        except DynError as exc:
            if record:
                self.sink.items.extend(exc.diagnostics)
            return default

    def _text(self, node) -> str:
        return source_text(self.src, node.span)

    # ---------------------------------------------------- params and variants
    def _survey(self, decls: Iterable, depth: int = 0) -> None:
        """Note every param and area name in every branch, for did-you-mean and
        for telling 'unknown' from 'not in this variant'."""
        for d in decls:
            if isinstance(d, S.ParamDecl) and depth >= 0:
                self.all_param_names.setdefault(d.name.name, d.name.span.line)
            elif isinstance(d, S.AreaDecl) and not d.name.parts:
                self.all_area_names.setdefault(d.name.name, d.name.span.line)
                self.area_name_spans.setdefault(d.name.name, d.name.span)
            elif isinstance(d, S.For):
                self._survey(d.body, depth + 1)
            elif isinstance(d, S.If):
                self._survey(d.then, depth + 1)
                self._survey(d.orelse, depth + 1)

    def _declare_param(self, decl: S.ParamDecl) -> None:
        name = decl.name.name
        if decl.trainable:
            self.sink.error(f"param '{name}' is marked trainable outside an area", decl.span,
                            "declare trainable params inside an area body")
        if name in self.params:
            first = self.params[name].decl.span.line
            self.sink.error(f"param '{name}' is defined twice (first at line {first})", decl.name.span)
            return
        slot = self.params[name] = _ParamSlot(decl)
        if name in self.overrides:
            slot.override = self._try(lambda: self._override_value(name, self.overrides[name]))

    def _select(self, decls: Iterable, top: bool) -> list:
        """The declarations chosen by `if` conditions, in source order."""
        out = []
        for d in decls:
            if isinstance(d, S.If):
                self._params_first(d.cond)
                cond = self._try(lambda d=d: self._condition(d.cond, self._lookup_param))
                branch = d.then if cond else d.orelse
                if cond is None:
                    continue
                if top:
                    for sub in branch:
                        if isinstance(sub, S.ParamDecl):
                            self._declare_param(sub)
                out.extend(self._select(branch, top))
            elif isinstance(d, S.For):
                body = self._try(lambda d=d: G.unroll(d, self._lookup_param, self.src, self.all_param_names), [])
                if top:
                    for sub in body:
                        if isinstance(sub, S.ParamDecl):
                            self._declare_param(sub)
                out.extend(self._select(body, top))
            else:
                d = self._try(lambda d=d: G.plain_names(d, self._lookup_param, self.src, self.all_param_names))
                if d is not None:
                    G.register_areas(d, self.all_area_names, self.area_name_spans)
                    out.append(d)
        return out

    def _condition(self, expr: S.Expr, lookup) -> bool:
        val = Evaluator(self.src, lookup)(expr)
        if not isinstance(val.v, bool):
            raise err(f"a condition must be true or false, but '{self._text(expr)}' is {kind_text(val)}",
                      expr.span, "compare it, e.g. 'if feedback != \"off\"'")
        return val.v

    def _lookup_param(self, name: str, span: Span) -> Val:
        if name in self.params:
            return self._param_value(name, span)
        if name.lower() in NON_FINITE_NAMES and name not in self.all_param_names:
            raise _not_a_number(name, span)
        if name in self.all_param_names:
            raise err(f"param '{name}' is not defined in this variant (it is declared under a condition "
                      f"that is false, line {self.all_param_names[name]})", span)
        if name == TIME_NAME:
            raise DynError([Diagnostic("error", "'t' is the time of a step and changes during the run; a value "
                                       "here must be constant", span, "use t in an area's equations", "E118")])
        raise err(unknown("param", name, self.all_param_names, span.line), span)

    def _param_value(self, name: str, span: Span) -> Val:
        slot = self.params[name]
        if slot.value is None and slot.error is None and not slot.busy:
            self._dependencies_first(name)
        if slot.error is not None:
            raise DynError(slot.error)
        if slot.value is not None:
            return slot.value
        if slot.busy:
            raise err(f"param '{name}' is defined in terms of itself", slot.decl.value.span)
        slot.busy = True
        try:
            default = Evaluator(self.src, self._lookup_param)(slot.decl.value)
            slot.value = default
            if slot.override is not None:
                slot.value = self._checked_override(name, slot.override, default)
        except DynError as exc:
            slot.error = exc.diagnostics
            raise
        finally:
            slot.busy = False
        return slot.value

    def _dependencies_first(self, name: str) -> None:
        """Evaluate the params that `name` reads before it, deepest first, in a loop: each
        evaluation then finds its params done, so a chain of 5000 params never recurses deeply.
        A param read again while its own dependencies are walked is defined in terms of itself."""
        path, order = [(name, iter(self._param_deps(name)))], []
        on_path, seen = {name}, {name}
        while path:
            n, deps = path[-1]
            for d in deps:
                slot = self.params[d]
                if d in on_path and slot.error is None:
                    slot.error = err(f"param '{d}' is defined in terms of itself", slot.decl.value.span).diagnostics
                elif d not in seen and slot.value is None and slot.error is None and not slot.busy:
                    path.append((d, iter(self._param_deps(d))))
                    on_path.add(d)
                    seen.add(d)
                    break
            else:
                path.pop()
                on_path.discard(n)
                order.append(n)
        for n in order[:-1]:
            self._try(lambda n=n: self._param_value(n, self.params[n].decl.name.span), record=False)

    def _param_deps(self, name: str) -> list[str]:
        return self._params_in(self.params[name].decl.value)

    def _params_in(self, expr: S.Expr) -> list[str]:
        return [e.name for e in S.walk_exprs(expr) if isinstance(e, S.Name) and e.name in self.params]

    def _params_first(self, expr: S.Expr) -> None:
        """Evaluate the params `expr` reads (errors are kept for when it reads them), so that
        evaluating `expr` does not stack their evaluation on top of its own recursion."""
        for name in self._params_in(expr):
            self._try(lambda name=name: self._param_value(name, self.params[name].decl.name.span), record=False)

    def _unused_overrides(self) -> None:
        for name in self.overrides:
            span = Span(P.origin(self.overrides, name), 0, 0, 0, 0)
            if name in self.params:
                continue
            if name in self.all_param_names:
                self.sink.error(f"cannot set param '{name}': it is declared under a condition that is false "
                                f"(line {self.all_param_names[name]})", span)
            else:
                self.sink.error(f"cannot set {unknown('param', name, self.all_param_names)}", span,
                                "declare it in the spec with 'param NAME = VALUE'")

    def _override_value(self, name: str, raw: Override) -> Val:
        """The value an override gives; errors quote it as typed (`--set size=abc`), not as a
        place in the spec."""
        quote = P.origin(self.overrides, name)
        if isinstance(raw, bool):
            return Val(raw, None)
        if isinstance(raw, numbers.Real):
            try:
                value = float(raw)
            except OverflowError:  # an int beyond float range
                value = math.inf
            return self._finite(name, Val(value, 0), str(raw), quote)
        text = str(raw).strip()
        declared = self.params[name].decl.value
        if isinstance(declared, S.Str) and not text.startswith('"'):
            return Val(text, None)
        try:
            expr = parse_value(text, quote)
            self._params_first(expr)
            value = Evaluator(text, self._lookup_param)(expr)
        except DynError as exc:  # the Evaluator also refuses a non-finite result (values.py)
            raise self._unreadable(name, text, quote, exc) from None
        return value

    def _unreadable(self, name: str, text: str, quote: str, exc: DynError) -> DynError:
        """An override's own errors, relocated to the override; a spec error it ran into stays put."""
        declared = self._text(self.params[name].decl.value)
        hint = f"the spec has {name} = {declared}; e.g. {P.example(self.overrides, name, declared)}"
        out = [Diagnostic(d.severity, f"cannot read the value {P.short(text)}: {d.message}", Span(quote, 0, 0, 0, 0),
                          d.hint or hint, d.code) if d.span.file == quote else d for d in exc.diagnostics]
        return DynError(out, self.src)

    def _finite(self, name: str, value: Val, text: str, quote: str) -> Val:
        if value.is_number and not math.isfinite(value.v):
            why = "is not a finite number" if "inf" in text or "nan" in text else "is too large to be a number"
            raise err(f"the value {P.short(text)} {why}", Span(quote, 0, 0, 0, 0), f"give {name} a finite value")
        return value

    def _checked_override(self, name: str, new: Val, default: Val) -> Val:
        same = (new.dim == default.dim) and (type(new.v) is type(default.v) or (new.is_number and default.is_number))
        if not same:
            want = kind_text(default)
            fix = P.example(self.overrides, name, fmt_quantity(new.v, 1)) if default.dim == 1 and new.dim == 0 else None
            raise err(f"param '{name}' is {want} ({default.describe()}), but the override gives "
                      f"{kind_text(new)} ({new.describe()})", Span(P.origin(self.overrides, name), 0, 0, 0, 0),
                      f"write e.g. {fix}" if fix else None)
        return new

    # ------------------------------------------------------- model, time, input
    def _model_name(self, decls: list[S.ModelDecl]) -> str:
        for extra in decls[1:]:
            self.sink.error("a spec has one 'model' line", extra.span)
        if decls:
            name = decls[0].name
            cls = name.name[:1].upper() + name.name[1:]
            if keyword.iskeyword(cls):
                self.sink.error(f"model name '{name.name}' would make the Python class '{cls}', a reserved word",
                                name.span, "choose another model name")
            return name.name
        stem = self.file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        derived = "".join(p.capitalize() for p in stem.replace("-", "_").split("_")) or "Model"
        return derived + "Model" if keyword.iskeyword(derived) else derived

    def _int(self, expr: S.Expr, what: str, minimum: int, lookup=None) -> int:
        val = Evaluator(self.src, lookup or self._lookup_param)(expr)
        if not val.is_number or val.dim != 0 or isinstance(val.v, bool) or float(val.v) != int(val.v):
            raise err(f"{what} must be a whole number, but '{self._text(expr)}' is {val.describe()}", expr.span)
        if val.v < minimum:
            raise err(f"{what} must be at least {minimum}, got {int(val.v)}", expr.span)
        return int(val.v)

    def _time(self, blocks: list[S.TimeBlock]):
        if not blocks:
            self.sink.error("the spec has no time block", Span(self.file, 1, 1, 1, 2),
                            "add 'time { dt = 1 ms  steps = 10 }'")
            return None, 1, 0
        for extra in blocks[1:]:
            self.sink.error(f"a second time block (the first is at line {blocks[0].span.line})", extra.span)
        items: dict[str, S.TimeItem] = {}
        misspelt: set[str] = set()  # settings an unknown name probably meant; not reported missing too
        for item in blocks[0].items:
            name = item.name.name
            if name not in TIME_ITEMS:
                misspelt.add(did_you_mean(name, TIME_ITEMS) or "")
                self.sink.error(unknown("time setting", name, TIME_ITEMS), item.name.span,
                                "a time block sets dt, steps and idle")
            elif name in items:
                self.sink.error(f"'{name}' is set twice in the time block", item.name.span)
            else:
                items[name] = item
        dt = None
        if "dt" not in items:
            if "dt" not in misspelt:
                self.sink.error("the time block does not set dt", blocks[0].span, "add 'dt = 1 ms'")
        else:
            dt = self._try(lambda: self._dt(items["dt"].value))
        steps = self._try(lambda: self._int(items["steps"].value, "steps", 1), 1) if "steps" in items else None
        if steps is None:
            if "steps" not in items and "steps" not in misspelt:
                self.sink.error("the time block does not set steps", blocks[0].span, "add 'steps = 10'")
            steps = 1
        idle = self._try(lambda: self._int(items["idle"].value, "idle", 0), 0) if "idle" in items else 0
        if steps + idle > MAX_STEPS:
            culprit = items["steps"] if steps >= idle else items["idle"]
            self.sink.error(f"a run of {steps + idle} steps is more than the {MAX_STEPS} a model runs (the steps "
                            f"loop in Python, and the logits alone keep every step)", culprit.value.span,
                            _lower_hint(self._text(culprit.value), self.params, "e.g. 100"))
            steps, idle = 1, 0
        return dt, steps, idle

    def _dt(self, expr: S.Expr) -> float:
        val = Evaluator(self.src, self._lookup_param)(expr)
        if val.dim != 1:
            raise err(f"dt must be a time, but '{self._text(expr)}' is {kind_text(val)}", expr.span,
                      "write a unit after the number, e.g. 'dt = 1 ms'")
        if val.v <= 0:
            raise err(f"dt must be positive, got {val.describe()}", expr.span)
        return _float32(float(val.v), self._text(expr), expr.span)

    def _input(self, decls: list[S.InputDecl]) -> list[ir.InputSpec] | None:
        spans = {n: self.area_name_spans[n] for n in self.all_area_names if n in self.area_name_spans}
        return IO.check_inputs(decls, self.sink, self._input_dims, spans, self.file)

    def _input_dims(self, d: S.InputDecl) -> tuple[int, int, int] | None:
        if len(d.shape) != 3:
            self.sink.error(f"the input shape has {len(d.shape)} entries; it needs [channels, height, width]", d.span)
            return None
        dims = [self._try(lambda e=e, w=w: self._int(e, f"the input's {w}", 1)) for e, w in zip(d.shape, ("channels", "height", "width"))]
        return None if None in dims else tuple(dims)

    # ------------------------------------------------------------------ areas
    def _declare_dynamics(self, d: S.DynamicsDecl) -> None:
        if d.name.name in self.dynamics:
            first = self.dynamics[d.name.name].span.line
            self.sink.error(f"dynamics '{d.name.name}' is defined twice (first at line {first})", d.name.span)
            return
        self.dynamics[d.name.name] = d

    def _areas(self, decls: list[S.AreaDecl], inp) -> dict[str, ir.Area]:
        areas: dict[str, ir.Area] = {}
        first: dict[str, int] = {}
        for d in decls:
            name = d.name.name
            if name in first:
                self.sink.error(f"area '{name}' is defined twice (first at line {first[name]})", d.name.span)
                continue
            first[name] = d.span.line
            self.selected_areas.add(name)
            area = self._try(lambda d=d: _AreaBuilder(self, d).build())
            if area is not None:
                areas[name] = area
        return areas

    # ------------------------------------------------------------ connections
    def _area_ref(self, ident: S.Ident, areas, inp, allow_input: bool) -> bool:
        name = ident.name
        inputs = {i.name: i for i in inp or ()}
        if name in areas or (allow_input and name in inputs):
            return True
        if name in inputs:
            self.sink.error(f"the input '{name}' cannot receive connections", ident.span,
                            "connections run from the input to areas")
            return False
        if name in self.all_area_names and name not in areas:
            if name in self.selected_areas:
                return False  # the area failed its own checks; its error is already reported
            self.sink.error(f"area '{name}' is not part of this variant (it is declared under a condition "
                            f"that is false, line {self.all_area_names[name]})", ident.span)
            return False
        cands = dict(self.all_area_names)
        for i in inp or ():
            cands.setdefault(i.name, i.span.line)
        self.sink.error(unknown("area", name, cands, ident.span.line), ident.span)
        if not allow_input:  # the area probably meant is fed by this broken connection
            self.broken_targets.add(did_you_mean(name, cands, ident.span.line) or name)
        return False

    def _delay(self, expr: S.Expr | None, dt: float | None) -> tuple[float, int]:
        if expr is None:
            return 0.0, 0
        val = Evaluator(self.src, self._lookup_param)(expr)
        if val.dim != 1:
            raise err(f"a delay must be a time, but '{self._text(expr)}' is {kind_text(val)}", expr.span,
                      "write a unit after the number, e.g. 'delay 2 ms'")
        if val.v < 0:
            raise err(f"a delay cannot be negative, got {val.describe()}", expr.span)
        if dt is None:
            return float(val.v), 0
        ratio = val.v / dt
        if not ratio <= MAX_DELAY_STEPS:  # also inf, from a tiny dt
            raise err(f"delay '{self._text(expr)}' is {_plain(ratio)} steps of dt = {fmt_quantity(dt, 1)}, more "
                      f"than the {MAX_DELAY_STEPS} a delay buffer may hold", expr.span,
                      _lower_hint(self._text(expr), self.params, f"at most {_plain(MAX_DELAY_STEPS * dt)} ms")
                      + (" or raise dt" if dt < 1e-3 else ""))
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)):
            raise err(f"delay {val.describe()} is not a multiple of dt = {fmt_quantity(dt, 1)}", expr.span,
                      f"use {fmt_quantity(math.floor(ratio) * dt, 1)} or {fmt_quantity(math.ceil(ratio) * dt, 1)}")
        return float(val.v), int(round(ratio))

    def _connections(self, decls: list[S.Connection], areas, inp, dt) -> list[ir.Conn]:
        conns: list[ir.Conn] = []
        names: dict[str, int] = {}
        for d in decls:
            delay = self._try(lambda d=d: self._delay(d.delay, dt))
            for src, dst in zip(d.chain, d.chain[1:]):
                ok_src = self._area_ref(src.area, areas, inp, allow_input=True)
                var = SL.source_var(src, areas, inp, self.sink) if ok_src and src.port is not None else None
                ok_src = ok_src and var is not False
                ok_dst = self._area_ref(dst.area, areas, inp, allow_input=False)
                ops = self._pipeline_args(d.pipeline)
                if not (ok_src and ok_dst) or ops is None or delay is None:
                    self.broken_targets.add(dst.area.name)
                    continue
                if any(kind == "lateral" and args["kind"] == "none" for kind, args, _, _ in ops):
                    continue  # lateral(none, k): no recurrence, no connection
                port = dst.port.name if dst.port else "input"
                label = f"{ir.signal_name(src.area.name, var)} -> {dst.area.name}" + (f".{port}" if dst.port else "")
                base = f"{src.area.name}{'_' + var if var else ''}_to_{dst.area.name}" + (f"_{port}" if dst.port else "")
                names[base] = names.get(base, 0) + 1
                if names[base] > 1:
                    base += f"_{names[base]}"
                conns.append(ir.Conn(len(conns), src.area.name, dst.area.name, port, self._op_stubs(ops, base),
                                     delay[0], delay[1], d.span, label, self._text(d), var))
        return conns

    def _op_stubs(self, ops, base: str) -> list[OpSpec]:
        """Unnamed operators are called BASE.KIND (BASE.KIND_i when a kind repeats)."""
        kinds = [kind for kind, _, _, _ in ops]
        out = []
        for i, (kind, args, alias, span) in enumerate(ops):
            derived = f"{base}.{kind}" if kinds.count(kind) == 1 else f"{base}.{kind}_{i}"
            out.append(OpSpec(kind, tuple(sorted(args.items())), alias or derived, (), (), span))
        return out

    def _pipeline_args(self, pipeline: tuple[S.Op, ...]):
        out = []
        for op in pipeline:
            res = self._try(lambda op=op: self._op_args(op))
            if res is None:
                return None
            out.append(res)
        return out

    def _op_args(self, op: S.Op):
        name = op.name.name
        if name not in OPERATORS:
            raise err(unknown("operator", name, list(OPERATORS)), op.name.span,
                      "operators: " + ", ".join(OPERATORS))
        FX.check_before_binding(op)
        args = _bind_args(self, OPERATORS[name].args, op.args, op.kwargs, name, op.span, self._lookup_param)
        try:
            args = resolve_defaults(OPERATORS[name], args)
        except OpError as exc:
            raise err(f"{name}: {exc.message}", op.span, exc.hint) from None
        FX.check_after_binding(op, args)
        args = FX.trimmed(name, args)
        return name, args, op.alias.name if op.alias else None, op.span

    def _readouts(self, decls: list[S.Readout], areas, dt) -> list:
        """Every readout in declaration order (None for one that failed its checks)."""
        if not decls:
            self.sink.error("the spec has no readout", Span(self.file, 1, 1, 1, 2),
                            "add e.g. 'readout IT : avgpool | linear(10)'")
            return []
        clashes = IO.check_readout_names(decls, self.sink)
        return [None if i in clashes else self._readout(d, i, areas, dt, len(decls) > 1) for i, d in enumerate(decls)]

    def _readout(self, d: S.Readout, i: int, areas, dt, several: bool):
        ok = self._area_ref(d.source, areas, None, allow_input=False)
        ops = self._pipeline_args(d.pipeline)
        delay = self._try(lambda: self._delay(d.delay, dt))
        if not ok or ops is None or delay is None:
            return None
        name = IO.readout_name(d)[0]
        specs = self._op_stubs(ops, IO.readout_base(name, several))
        return ir.ReadoutSpec(d.source.name, specs, delay[0], delay[1], 0, d.span, self._text(d), name, -1 - i)

    # ----------------------------------------------------------------- shapes
    def _infer_shapes(self, areas: dict[str, ir.Area], conns: list[ir.Conn], inp: ir.InputSpec) -> None:
        sizes: dict[str, tuple[int, int]] = {i.name: i.shape[1:] for i in inp}
        origin: dict[str, ir.Conn | None] = {}
        for a in areas.values():
            if a.size is not None:
                sizes[a.name], origin[a.name] = a.size, None
        channels = {a.name: a.channels for a in areas.values()}
        channels.update({i.name: i.shape[0] for i in inp})
        self._size_areas(areas, conns, sizes, channels, origin)
        for a in areas.values():
            if a.name in sizes:
                a.size = tuple(sizes[a.name])
        self._report_unsized([a for a in areas.values() if a.size is None], conns, sizes, channels, inp)
        for c in conns:
            self._try(lambda c=c: self._check_conn_shape(c, areas, sizes, channels, origin))

    def _size_areas(self, areas: dict[str, ir.Area], conns: list[ir.Conn], sizes, channels, origin) -> None:
        """Give each area without a size the size of its first connection (inputs first, then by
        index) that does not resize and whose source has one. Passes over the areas in declaration
        order until nothing changes, visiting only areas whose sources gained a size since."""
        into: dict[str, list[ir.Conn]] = {}
        for c in sorted(conns, key=lambda c: (c.port != "input", c.index)):
            if not any(o.kind in ("adapt", "resize") for o in c.ops):
                into.setdefault(c.target, []).append(c)
        readers: dict[str, list[str]] = {}
        for c in conns:
            readers.setdefault(c.source, []).append(c.target)
        position = {name: i for i, name in enumerate(areas)}
        names = list(areas)
        todo = [i for i, name in enumerate(names) if name not in sizes]
        while todo:
            later: set[int] = set()  # to visit again in the next pass
            heapq.heapify(todo)
            while todo:
                i = heapq.heappop(todo)
                a = areas[names[i]]
                if a.name in sizes or not self._size_from(a, into.get(a.name, ()), sizes, channels, origin):
                    continue
                for t in readers.get(a.name, ()):
                    if t in position and t not in sizes and position[t] > i:
                        heapq.heappush(todo, position[t])  # still ahead in this pass
                    elif t in position and t not in sizes:
                        later.add(position[t])
            todo = sorted(later)

    def _size_from(self, a: ir.Area, cands, sizes, channels, origin) -> bool:
        for c in cands:
            if c.source not in sizes:
                continue
            try:
                shape = self._through(c.ops, (channels[c.source], *sizes[c.source]), (a.channels, None, None))[-1]
            except OpError:
                continue
            sizes[a.name], origin[a.name] = (shape[1:] if len(shape) == 3 else (1, 1)), c
            return True
        return False

    def _report_unsized(self, unsized: list[ir.Area], conns: list[ir.Conn], sizes, channels, inp) -> None:
        """One error per area whose size is unknown, leaving out those downstream of an error already made."""
        fed = {c.target for c in conns}
        orphans = [a for a in unsized if a.name not in fed and a.name not in self.broken_targets]
        for a in orphans:
            self.sink.error(f"cannot infer the size of area {a.name}: no connection leads into it", a.span,
                            f"connect it, e.g. '{inp[0].name} -> {a.name} : conv(3)', or give its size: "
                            f"'area {a.name} [{a.channels}, H, W]'")
        explained = self._downstream(conns, self.broken_targets | {a.name for a in orphans})
        for a in unsized:
            if a.name in explained or self._explain_size(a, conns, sizes, channels):
                continue
            self.sink.error(f"cannot infer the size of area {a.name}: every connection into it resizes, "
                            f"or comes from an area of unknown size", a.span,
                            f"give the size explicitly: 'area {a.name} [{a.channels}, H, W]'")

    @staticmethod
    def _downstream(conns: list[ir.Conn], starts: set[str]) -> set[str]:
        """`starts` and every area a connection path leads to from them."""
        g = nx.DiGraph((c.source, c.target) for c in conns)
        out = set(starts)
        for name in starts:
            if name in g:
                out |= nx.descendants(g, name)
        return out

    def _explain_size(self, a: ir.Area, conns: list[ir.Conn], sizes, channels) -> bool:
        """Report the operator that keeps every connection into `a` from giving it a size; False if none."""
        for c in conns:
            if c.target != a.name or c.source not in sizes or any(o.kind in ("adapt", "resize") for o in c.ops):
                continue
            shape = (channels[c.source], *sizes[c.source])
            for o in c.ops:
                try:
                    shape = tuple(OPERATORS[o.kind].shape(o.a, shape, (a.channels, None, None)))
                except OpError as exc:
                    self.sink.error(f"{o.kind} in {c.label}: {exc.message}", o.span, exc.hint)
                    return True
        return False

    def _through(self, ops: list[OpSpec], shape, target) -> list:
        shapes = [tuple(shape)]
        for o in ops:
            shapes.append(tuple(OPERATORS[o.kind].shape(o.a, shapes[-1], target)))
        return shapes

    def _check_conn_shape(self, c: ir.Conn, areas, sizes, channels, origin) -> None:
        if c.source not in sizes or c.target not in sizes:
            return
        target = areas[c.target]
        shapes = [(channels[c.source], *sizes[c.source])]
        for i, o in enumerate(c.ops):
            try:
                out = tuple(OPERATORS[o.kind].shape(o.a, shapes[-1], target.shape))
            except OpError as exc:
                raise err(f"{o.kind} in {c.label}: {exc.message}", o.span, exc.hint) from None
            c.ops[i] = OpSpec(o.kind, o.args, o.path, shapes[-1], out, o.span)
            shapes.append(out)
        final = shapes[-1]
        if len(final) != 3:
            if final[0] != target.channels:
                raise err(f"{c.label} delivers a vector of {final[0]}, but {c.target} has {target.channels} "
                          f"channels", c.span, f"a vector feeds an area [n] with n = its length, as n maps of 1 x 1")
            final = (final[0], 1, 1)
        if final[0] != target.channels:
            raise err(f"{c.label} delivers {final[0]} channels, but {c.target} has {target.channels}", c.span,
                      "end the pipeline with conv, pointwise or adapt to map channels")
        if tuple(final[1:]) != tuple(target.size):
            ref = origin.get(c.target)
            ref_text = f"from {ref.label}" if ref is not None else "as declared"
            raise err(f"port '{c.port}' of {c.target} receives {list(final[1:])} from {c.label} but "
                      f"{list(target.size)} {ref_text} (use resize or adapt)", c.span,
                      "end the pipeline with 'resize' or 'adapt', or change a stride")

    def _readout_shapes(self, r: ir.ReadoutSpec | None, areas) -> ir.ReadoutSpec | None:
        if r is None or r.source not in areas or areas[r.source].size is None:
            return r
        shape = areas[r.source].shape
        for i, o in enumerate(r.ops):
            try:
                out = tuple(OPERATORS[o.kind].shape(o.a, shape, None))
            except OpError as exc:
                self.sink.error(f"{o.kind} in the readout: {exc.message}", o.span, exc.hint)
                return None
            r.ops[i] = OpSpec(o.kind, o.args, o.path, shape, out, o.span)
            shape = out
        if len(shape) == 3 and shape[1:] != (1, 1):
            self.sink.error(f"the readout ends in a {list(shape)} map, not a vector of class scores", r.span,
                            "end it with 'avgpool | linear(n)' or 'flatten | linear(n)'")
            return None
        r.classes = math.prod(shape)
        return r

    # ------------------------------------------------------------------ ports
    def _check_ports(self, areas: dict[str, ir.Area], conns: list[ir.Conn]) -> None:
        fed: dict[tuple[str, str], ir.Conn] = {}
        for c in conns:
            fed.setdefault((c.target, c.port), c)
        fed_by_area: dict[str, list[str]] = {}
        for area, port in fed:
            fed_by_area.setdefault(area, []).append(port)
        for (area, port), c in fed.items():
            if area in areas and port not in areas[area].ports and not areas[area].incomplete:
                guess = did_you_mean(port, areas[area].ports)
                self.sink.error(f"port '{port}' of {area} is fed but never read by its equations", c.span,
                                f"did you mean '{guess}'?" if guess else f"read '{port}' in {area}'s equations")
        for a in areas.values():
            if a.name in self.broken_targets:
                continue  # a connection into it failed; its error says enough
            for port in a.ports:
                if (a.name, port) not in fed:
                    fed_ports = fed_by_area.get(a.name, [])
                    guess = did_you_mean(port, fed_ports + [s for s in a.states])
                    self.sink.warning(f"port '{port}' of {a.name} is read but never fed; it stays silent", a.span,
                                      f"did you mean '{guess}'?" if guess else
                                      f"feed it with a connection '... -> {a.name}.{port}'" if port != "input" else
                                      f"feed it with a connection '... -> {a.name}'")

    def _check_zero_delay_cycles(self, conns: list[ir.Conn]) -> None:
        g = nx.MultiDiGraph()
        for c in conns:
            if c.delay_steps == 0:
                g.add_edge(c.source, c.target, conn=c)
        seen: set[int] = set()
        for cycle in sorted(nx.simple_cycles(g), key=lambda cyc: sorted(cyc)):
            edges = []
            for a, b in zip(cycle, cycle[1:] + cycle[:1]):
                edges.append(min((d["conn"] for d in g.get_edge_data(a, b).values()), key=lambda c: c.index))
            last = max(edges, key=lambda c: c.index)
            if last.index in seen:
                continue
            seen.add(last.index)
            start = cycle.index(last.target)
            order = cycle[start:] + cycle[:start]
            path = " -> ".join(order + [order[0]])
            self.sink.error(f"{last.source} -> {last.target} closes the cycle {path} with total delay 0 ms",
                            last.span, "give one connection of the cycle a delay of at least dt")

    def _check_reachability(self, areas, conns, inp) -> None:
        g = nx.DiGraph()
        g.add_nodes_from(areas)
        g.add_edges_from((c.source, c.target) for c in conns)
        g.add_nodes_from(i.name for i in inp)
        reached = set(self.broken_targets)  # fed by a failed connection: reported already
        for start in [*(i.name for i in inp), *self.broken_targets]:
            if start in g:
                reached |= nx.descendants(g, start)
        for a in areas.values():
            if a.name not in reached and not any(v is not None for v in a.states.values()) and not any(
                    m.startswith(("Bias",)) for m in a.functions.values()):
                self.sink.warning(f"no connection path from '{inp[0].name}' reaches area {a.name}; it stays silent",
                                  a.span, f"connect it, e.g. '{inp[0].name} -> {a.name} : conv(3)'")

    def _check_module_names(self, areas, conns, readout) -> None:
        owners: dict[str, Span] = {}

        def claim(path: str, span: Span) -> None:
            taken = _taken_segment(path)
            if taken is not None:
                self.sink.error(f"module name '{path}' uses '{taken}', a name the generated module reserves",
                                span, "choose another name with 'as', or rename the area")
            elif path in owners:
                self.sink.error(f"module name '{path}' is used twice (first at line {owners[path].line})", span,
                                "give each operator its own 'as' name")
            else:
                owners[path] = span

        for a in areas.values():
            for path in list(a.functions) + list(a.trainables):
                claim(path, self.modules.get(path, a.span))
        pipelines = [c.ops for c in conns] + [r.ops for r in readout or ()]
        for ops in pipelines:
            for o in ops:
                if o.kind not in MODULE_FREE:
                    claim(o.path, o.span)
        paths = sorted(owners)
        for p in paths:  # the names that start with 'p.' sort together, from bisect's point on
            i = bisect.bisect_left(paths, p + ".")
            if i < len(paths) and paths[i].startswith(p + "."):
                self.sink.error(f"module name '{p}' is also the start of '{paths[i]}'", owners[p],
                                f"rename one, e.g. '{p}.main'")


def _taken_segment(path: str) -> str | None:
    """The segment of a module path that an attribute of the generated module already holds, if any."""
    first, *rest = path.split(".")
    if first in GENERATED_ATTRIBUTES or first in MODULE_ATTRIBUTES or first.startswith("_"):
        return first
    return next((seg for seg in rest if seg in MODULE_ATTRIBUTES), None)


# --------------------------------------------------------------- arguments
def _bind_args(ck: _Checker, sig, args, kwargs, fname: str, span: Span, lookup) -> dict[str, Any]:
    """Bind positional then keyword arguments to a signature, Python style."""
    ev = Evaluator(ck.src, lookup)
    out: dict[str, Any] = {}
    if len(args) > len(sig):
        raise err(f"{fname}() takes at most {len(sig)} argument{'s' * (len(sig) != 1)}, got {len(args)}",
                  args[len(sig)].span)
    for a, expr in zip(sig, args):
        value = _arg_value(ck, ev, a, expr, fname, sig, out, lookup)
        if not _took_flag(expr, a, out, sig):  # a bare flag (`conv(3, fixed)`) sets itself, not the slot
            out[a.name] = value
    for kw in kwargs:
        match = [a for a in sig if a.name == kw.name.name]
        if not match:
            raise err(unknown(f"argument of {fname}()", kw.name.name, [a.name for a in sig]), kw.name.span)
        if kw.name.name in out:
            raise err(f"{fname}() got '{kw.name.name}' twice", kw.name.span)
        out[kw.name.name] = _arg_value(ck, ev, match[0], kw.value, fname, sig, out, lookup)
    for a in sig:
        if a.required and out.get(a.name) is None:  # a bare flag may have taken its place
            raise err(f"{fname}() needs the argument '{a.name}'", span)
    return out


def _took_flag(expr, a, out: dict, sig) -> bool:
    """Whether positional `expr` was a bare flag naming another argument of `sig`."""
    return (isinstance(expr, S.Name) and expr.name != a.name and out.get(expr.name) is True
            and any(s.kind == "bool" and s.name == expr.name for s in sig))


def _arg_value(ck, ev, a, expr, fname, sig, out, lookup):
    if isinstance(expr, S.Name):
        bare = expr.name
        try:
            val = lookup(bare, expr.span)
        except DynError:
            if a.kind == "enum" and bare in a.choices:
                return bare
            flags = [s for s in sig if s.kind == "bool" and s.name == bare]
            if flags:
                out[bare] = True
                return out.get(a.name, a.default) if a.name != bare else True
            if a.kind == "enum":
                raise err(unknown(f"{a.name} of {fname}()", bare, list(a.choices)), expr.span,
                          "choices: " + ", ".join(a.choices)) from None
            raise
    else:
        val = ev(expr)
    text = source_text(ck.src, expr.span)
    if a.kind == "enum":
        if not isinstance(val.v, str) or val.v not in a.choices:
            guess = did_you_mean(str(val.v), a.choices) if isinstance(val.v, str) else None
            raise err(f"{a.name} of {fname}() must be one of {', '.join(a.choices)}; got {val.describe()}"
                      + (f" (did you mean '{guess}'?)" if guess else ""), expr.span)
        return val.v
    if a.kind == "bool":
        if not isinstance(val.v, bool):
            raise err(f"{a.name} of {fname}() must be true or false, got '{text}'", expr.span)
        return val.v
    if not val.is_number or isinstance(val.v, bool) or val.dim != 0:
        raise err(f"{a.name} of {fname}() must be a dimensionless number, but '{text}' is {kind_text(val)}",
                  expr.span)
    if a.kind == "int":
        if float(val.v) != int(val.v):
            raise err(f"{a.name} of {fname}() must be a whole number, got {val.describe()}", expr.span)
        return int(val.v)
    return float(val.v)


# ------------------------------------------------------------ area bodies
class _AreaBuilder:
    """Resolves one area: its template, statements, names and dimensions."""

    def __init__(self, ck: _Checker, decl: S.AreaDecl):
        self.ck, self.d = ck, decl
        self.name = decl.name.name
        self.scope = _Scope()  # template arguments, then area params (constants)
        self.local_dims: dict[str, int] = {}
        self.trainable: dict[str, tuple[str, int]] = {}  # name -> (module path, dim)
        self.states: dict[str, ir.EqExpr | None] = {}
        self.state_spans: dict[str, Span] = {}
        self.assigned: set[str] = set()
        self.ports: list[str] = []
        self.fn_count: dict[str, int] = {}
        self.area: ir.Area | None = None

    def lookup_const(self, name: str, span: Span) -> Val:
        val = self.scope.get(name)
        if val is not None:
            return val
        return self.ck._lookup_param(name, span)

    def build(self) -> ir.Area:
        d = self.d
        shape = [self.ck._int(e, f"the channel count of {self.name}" if i == 0 else "a size", 1) for i, e in enumerate(d.shape)]
        if len(shape) not in (1, 3):
            raise err(f"area {self.name} has shape {shape}; write [channels] or [channels, height, width]", d.span)
        self.area = ir.Area(self.name, shape[0], tuple(shape[1:]) if len(shape) == 3 else None, d.span)
        stmts: list = []
        if d.template is not None:
            stmts.extend(self._instantiate(d.template))
        stmts.extend(self._flatten(d.body))
        self._declare(stmts)
        self.pre = variables.before_odes(stmts)
        self.pre_names = {s.var.name for s in stmts if id(s) in self.pre}
        self._in_pre = False
        before = len(self.ck.sink.items)
        self.ck.sink.items.extend(variables.placement_errors(stmts, self.states, self.pre))
        for s in stmts:
            self.ck._try(lambda s=s: self._statement(s))
        self.ck.sink.items.extend(noise_rules.area_errors(self.area))
        self.area.incomplete = any(d.is_error for d in self.ck.sink.items[before:])
        self._finish(stmts)
        return self.area

    def _instantiate(self, call: S.TemplateCall) -> list:
        ck = self.ck
        name = call.name.name
        if name not in ck.dynamics:
            raise err(unknown("dynamics", name, {k: v.span.line for k, v in ck.dynamics.items()}, call.span.line),
                      call.name.span)
        dyn = ck.dynamics[name]
        self.area.template = name
        params = [p.name.name for p in dyn.params]
        values: dict[str, Val] = {}
        if len(call.args) > len(params):
            raise err(f"{name}() takes {len(params)} argument{'s' * (len(params) != 1)}, got {len(call.args)}",
                      call.args[len(params)].span)
        ev = Evaluator(ck.src, ck._lookup_param)
        for p, e in zip(params, call.args):
            values[p] = ev(e)
        for kw in call.kwargs:
            if kw.name.name not in params:
                raise err(unknown(f"parameter of dynamics {name}", kw.name.name, params), kw.name.span)
            if kw.name.name in values:
                raise err(f"{name}() got '{kw.name.name}' twice", kw.name.span)
            values[kw.name.name] = ev(kw.value)
        for p in dyn.params:
            if p.name.name not in values:
                if p.default is None:
                    raise err(f"dynamics {name} needs the argument '{p.name.name}'", call.span,
                              f"write '{name}({p.name.name}=...)'")
                values[p.name.name] = ev(p.default)
        self.scope.values.update(values)
        return self._flatten(dyn.body)

    def _flatten(self, body) -> list:
        out = []
        for s in body:
            if isinstance(s, S.If):
                cond = self.ck._try(lambda s=s: self.ck._condition(s.cond, self.lookup_const))
                if cond is None:
                    continue
                out.extend(self._flatten(s.then if cond else s.orelse))
            elif isinstance(s, S.ParamDecl):
                self._local_param(s)
            else:
                out.append(s)
        return out

    def _local_param(self, s: S.ParamDecl) -> None:
        name = s.name.name
        val = self.ck._try(lambda: Evaluator(self.ck.src, self.lookup_const)(s.value))
        if val is None:
            return
        if not val.is_number and s.trainable:
            self.ck.sink.error(f"trainable param '{name}' must be a number, got {val.describe()}", s.value.span)
            return
        bounds = None
        if s.options:
            bounds = BP.trainable_bounds(s, val, Evaluator(self.ck.src, BP.with_dt(self.lookup_const, self.ck.dt)),
                                         self.ck.sink)  # None after an error: the param stays, unbounded
        if s.trainable:
            path = f"{self.name}.{name}"
            if bounds is not None and bounds != ir.TrainableBounds():
                self.area.bounds[path] = bounds
            self.trainable[name] = (path, val.dim)
            self.ck.modules.setdefault(path, s.name.span)
            self.area.trainables[path] = _float32(float(val.v), self.ck._text(s.value), s.value.span)
        else:
            self.scope.values[name] = val

    def _declare(self, stmts) -> None:
        for s in stmts:
            if isinstance(s, S.StateDecl):
                self._new_state(s.var, s.span)
            elif isinstance(s, S.Ode) and s.var.name not in self.states:
                self.states[s.var.name] = None
                self.state_spans[s.var.name] = s.var.span

    def _new_state(self, var: S.Ident, span: Span) -> None:
        if var.name in self.state_spans and var.name in self.states and self.states[var.name] is not None:
            self.ck.sink.error(f"state '{var.name}' of {self.name} is declared twice", var.span)
        self.states[var.name] = None
        self.state_spans[var.name] = var.span

    # statements
    def _statement(self, s) -> None:
        a = self.area
        if isinstance(s, S.StateDecl):
            init = Evaluator(self.ck.src, self.lookup_const)(s.init)
            if not init.is_number or isinstance(init.v, bool) or init.dim != 0:
                raise err(f"the initial value of '{s.var.name}' must be a dimensionless number, got "
                          f"{init.describe()}", s.init.span)
            self.states[s.var.name] = ir.Const(_float32(float(init.v), self.ck._text(s.init), s.init.span), s.init.span)
        elif isinstance(s, S.Ode):
            if any(o.var == s.var.name for o in a.odes):
                raise err(f"'{s.var.name}' of {self.name} has two differential equations", s.var.span)
            coef = None
            want = -1
            if s.coef is not None:
                self._known_coefficient(s.coef)
                coef, cdim = self._expr(s.coef, in_ode=True)
                if cdim != 1:
                    raise err(f"the coefficient of d{s.var.name}/dt must be a time, but '{self.ck._text(s.coef)}' "
                              f"is {dim_text(cdim)}", s.coef.span, "write e.g. 'tau * dr/dt = ...' with tau in ms")
                self._positive_time_constant(coef, s)
                want = 0
            rhs, rdim = self._expr(s.rhs, in_ode=True)
            if rdim != want:
                what = "dimensionless" if want == 0 else "1/time"
                raise err(f"the right side of d{s.var.name}/dt is {dim_text(rdim)}, but must be {what}", s.rhs.span,
                          "multiply the derivative by a time constant: 'tau * dr/dt = ...'" if want == -1 else None)
            a.odes.append(ir.OdeEq(s.var.name, coef, rhs, s.span))
        elif isinstance(s, S.Assign):
            if s.var.name in self.scope.values or s.var.name in self.trainable or s.var.name in self.ck.params:
                line = self.ck.params[s.var.name].decl.span.line if s.var.name in self.ck.params else None
                raise err(f"cannot assign to param '{s.var.name}'" + (f" (declared at line {line})" if line else ""),
                          s.var.span, "params are constants; give the variable another name")
            self._in_pre = id(s) in self.pre
            value, vdim = self._expr(s.value, in_ode=False)
            if vdim != 0:
                raise err(f"'{s.var.name}' must be dimensionless, but the value is {dim_text(vdim)}", s.value.span)
            self.assigned.add(s.var.name)
            (a.before_odes if self._in_pre else a.assigns).append(ir.AssignEq(s.var.name, value, s.span))
        elif isinstance(s, S.OutputStmt):
            a.output = s.var.name
            self._output_span = s.var.span
        elif isinstance(s, S.SolverStmt):
            a.solver = SP.solver_name(s, SOLVERS, self._param_or_none)

    def _param_or_none(self, name: str) -> Val | None:
        """The value of the param or template argument `name` visible here, or None if there is none."""
        known = self.scope.get(name) is not None or name in self.ck.params
        return self.lookup_const(name, self.d.span) if known else None

    def _positive_time_constant(self, coef: ir.EqExpr, s: S.Ode) -> None:
        value = coef.value if isinstance(coef, ir.Const) else (
            self.area.trainables.get(coef.path) if isinstance(coef, ir.ParamRef) else CO.constant_value(coef))
        if value is not None and value <= 0:
            raise err(f"the time constant of d{s.var.name}/dt must be positive, but '{self.ck._text(s.coef)}' is "
                      f"{fmt_quantity(value, 1)}", s.coef.span, "a leak 'tau * dr/dt = -r + ...' needs tau > 0")
        dt = self.ck.dt
        if value is not None and dt is not None and not dt / value <= FLOAT32_MAX:
            raise err(f"dt / '{self.ck._text(s.coef)}' is {dt / value:.3g}, beyond the float32 range the model "
                      f"computes in (about 3.4e38)", s.coef.span, "use a larger time constant or a smaller dt")

    def _known_coefficient(self, coef: S.Expr) -> None:
        """A time constant must be a param or template argument; any other name would read as a port."""
        if not isinstance(coef, S.Name):  # a parenthesised coefficient: each name in it
            for name in [e for e in S.walk_exprs(coef) if isinstance(e, S.Name) and e.name != TIME_NAME]:
                self._known_coefficient(name)
            return
        name = coef.name
        if (self.scope.get(name) is not None or name in self.trainable or name in self.states
                or name in self.assigned or name in self.ck.all_param_names or self._defines(name, self._all_stmts())):
            return
        cands = {n: self.ck.params[n].decl.span.line for n in self.ck.params}
        cands.update({n: coef.span.line for n in [*self._scope_names(), *self.trainable]})
        raise err(unknown("param", name, cands, coef.span.line), coef.span,
                  "a time constant is a param or a number with a unit, e.g. 'tau * dr/dt = ...'")

    def _scope_names(self) -> list[str]:
        names, scope = [], self.scope
        while scope is not None:
            names.extend(scope.values)
            scope = scope.parent
        return names

    def _finish(self, stmts) -> None:
        a = self.area
        a.states = dict(self.states)
        a.ports = self.ports
        known = set(self.states) | self.assigned
        if a.output not in known and not (a.incomplete and self._defines(a.output, stmts)):
            span = getattr(self, "_output_span", a.span)
            if a.output == "r" and not hasattr(self, "_output_span"):
                self.ck.sink.error(f"area {a.name} has no output: assign 'r' or name one with 'output NAME'", a.span)
            else:
                self.ck.sink.error(unknown(f"variable of {a.name}", a.output, sorted(known)), span)
        if a.solver == "exponential":
            defs = variables.definitions(a)
            for ode in a.odes:
                self.ck._try(lambda ode=ode: linear_split(variables.inline(ode.rhs, defs), ode.var))

    @staticmethod
    def _defines(var: str, stmts) -> bool:
        """Whether a statement assigns, integrates or declares `var`."""
        return any(isinstance(s, (S.Assign, S.Ode, S.StateDecl)) and s.var.name == var for s in stmts)

    # expressions
    def _expr(self, e: S.Expr, in_ode: bool) -> tuple[ir.EqExpr, int]:
        ck = self.ck
        if isinstance(e, S.Num):
            v = Evaluator(ck.src, self.lookup_const)(e)
            return ir.Const(_float32(float(v.v), ck._text(e), e.span), e.span), v.dim
        if isinstance(e, (S.Str, S.Bool)):
            raise err(f"'{ck._text(e)}' is not a number; equations compute with numbers", e.span)
        if isinstance(e, S.Name):
            return self._name(e, in_ode)
        if isinstance(e, S.Unary):
            if e.op == "not":
                raise err("'not' belongs in conditions, not in equations", e.span)
            x, dim = self._expr(e.operand, in_ode)
            return (ir.Apply("neg", (x,), e.span) if e.op == "-" else x), dim
        if isinstance(e, S.BinOp):
            return self._binop(e, in_ode)
        if isinstance(e, S.Call):
            return self._call(e, in_ode)
        raise TypeError(e)

    def _name(self, e: S.Name, in_ode: bool) -> tuple[ir.EqExpr, int]:
        name = e.name
        val = self.scope.get(name)
        if val is not None:
            return self._const(val, e), val.dim
        if name in self.trainable:
            path, dim = self.trainable[name]
            return ir.ParamRef(path, e.span), dim
        if name in self.states:
            return ir.Ref("state", name, e.span), 0
        if name in self.assigned:
            return ir.Ref("var", name, e.span), 0
        if name in self.ck.params:
            val = self.ck._param_value(name, e.span)
            return self._const(val, e), val.dim
        if in_ode and name in self.pre_names:  # a variable above the ODEs whose own check failed
            return ir.Ref("var", name, e.span), 0
        if any(isinstance(s, S.Assign) and s.var.name == name for s in self._all_stmts()):
            raise variables.read_before_assigned(name, e.span, in_ode, not in_ode and self._in_pre)
        if name in self.ck.all_param_names:
            raise err(f"param '{name}' is not defined in this variant", e.span)
        if name.lower() in NON_FINITE_NAMES:
            raise _not_a_number(name, e.span)
        if name == TIME_NAME:
            return ir.Ref("time", name, e.span), 1
        if name not in self.ports:
            self.ports.append(name)
        return ir.Ref("port", name, e.span), 0

    def _all_stmts(self):
        stmts = list(self.d.body)
        if self.d.template is not None and self.d.template.name.name in self.ck.dynamics:
            stmts += list(self.ck.dynamics[self.d.template.name.name].body)
        return stmts

    def _const(self, val: Val, e) -> ir.Const:
        if not val.is_number or isinstance(val.v, bool):
            raise err(f"'{self.ck._text(e)}' is {val.describe()}, not a number; equations compute with numbers",
                      e.span)
        return ir.Const(_float32(float(val.v), self.ck._text(e), e.span), e.span)

    def _binop(self, e: S.BinOp, in_ode: bool) -> tuple[ir.EqExpr, int]:
        spine = [e]  # a + b + c + ...: left operands in a loop, so a long sum needs no recursion
        while True:
            if spine[-1].op in ("and", "or"):
                raise err(f"'{spine[-1].op}' belongs in conditions, not in equations", spine[-1].span)
            if not isinstance(spine[-1].left, S.BinOp):
                break
            spine.append(spine[-1].left)
        value = self._expr(spine[-1].left, in_ode)
        for node in reversed(spine):
            value = self._combine(node, value, self._expr(node.right, in_ode))
        return value

    def _combine(self, e: S.BinOp, left: tuple[ir.EqExpr, int], right: tuple[ir.EqExpr, int]) -> tuple[ir.EqExpr, int]:
        (a, da), (b, db) = left, right
        fn = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "<": "lt", ">": "gt", "<=": "le",
              ">=": "ge", "==": "eq", "!=": "ne"}[e.op]
        if fn in ("add", "sub", "lt", "gt", "le", "ge", "eq", "ne") and da != db:
            verb = {"add": "add", "sub": "subtract"}.get(fn, "compare")
            right_bad = db != 0
            culprit, cdim, odim = (e.right, db, da) if right_bad else (e.left, da, db)
            other = e.left if right_bad else e.right
            target = "a dimensionless value" if odim == 0 else f"'{self.ck._text(other)}' ({dim_text(odim)})"
            prep = {"add": "to", "subtract": "from"}.get(verb, "with")
            raise err(f"cannot {verb} '{self.ck._text(culprit)}' ({dim_text(cdim)}) {prep} {target}", culprit.span,
                      "give both sides the same unit")
        dim = {"add": da, "sub": da, "mul": da + db, "div": da - db}.get(fn, 0)
        if fn == "pow":
            if db != 0:
                raise err(f"an exponent must be dimensionless, but '{self.ck._text(e.right)}' is {dim_text(db)}",
                          e.right.span)
            if da != 0:
                if not isinstance(b, ir.Const) or b.value != int(b.value):
                    raise err(f"'{self.ck._text(e.left)}' has a unit; raise it only to a whole constant power", e.span)
                dim = int(da * b.value)
        _check_constant_arithmetic(fn, a, b, e, self.ck._text(e))
        return ir.Apply(fn, (a, b), e.span), dim

    def _call(self, e: S.Call, in_ode: bool) -> tuple[ir.EqExpr, int]:
        name = e.func.name
        if R.is_reduction(e):
            return R.reduction(e, lambda x: self._expr(x, in_ode))
        if name in MATH_FUNCTIONS:
            if e.alias is not None:
                raise err(f"{name}() has no parameters to name with 'as'", e.alias.span)
            if e.kwargs:
                raise err(f"{name}() takes no keyword arguments", e.kwargs[0].name.span)
            n = MATH_FUNCTIONS[name]
            if len(e.args) != n:
                raise err(f"{name}() takes {n} argument{'s' * (n != 1)}, got {len(e.args)}", e.span)
            parts = [self._expr(a, in_ode) for a in e.args]
            dims = [d for _, d in parts]
            if name in ("tanh", "sigmoid", "exp", "log") and dims[0] != 0:
                raise err(f"{name}() needs a dimensionless argument, but '{self.ck._text(e.args[0])}' is "
                          f"{dim_text(dims[0])}", e.args[0].span)
            if name in ("min", "max", "clamp") and len(set(dims)) > 1:
                raise err(f"{name}() needs arguments of one dimension", e.span)
            dim = {"sign": 0, "sqrt": dims[0] // 2}.get(name, dims[0])
            if name == "sqrt" and dims[0] % 2:
                raise err(f"sqrt of {dim_text(dims[0])} has no whole dimension", e.span)
            return ir.Apply(name, tuple(p for p, _ in parts), e.span), dim
        if name in FUNCTIONS:
            return self._learnable(e, in_ode)
        if name == noise_rules.NAME:
            return noise_rules.call(e)
        cands = list(MATH_FUNCTIONS) + list(FUNCTIONS) + [noise_rules.NAME, "mean", "sum"]
        hint = "operators like conv belong on connections" if name in OPERATORS else None
        raise err(unknown("function", name, cands), e.func.span, hint)

    def _check_groups(self, groups: int, span: Span) -> None:
        c = self.area.channels
        if groups < 1:
            raise err(f"groupnorm needs at least 1 group, got {groups}", span)
        if c % groups:
            raise err(f"groupnorm: {groups} groups do not divide the {c} channels of {self.name}", span,
                      f"use a divisor of {c}, e.g. {_divisor_below(c, groups)}")

    def _learnable(self, e: S.Call, in_ode: bool) -> tuple[ir.EqExpr, int]:
        fdef = FUNCTIONS[e.func.name]
        args = list(e.args)
        inner = None
        if fdef.takes_input:
            if not args:
                raise err(f"{fdef.name}() needs the value to normalise as its first argument", e.span)
            inner, dim = self._expr(args.pop(0), in_ode)
        bound = _bind_args(self.ck, fdef.args, tuple(args), e.kwargs, fdef.name, e.span, self.lookup_const)
        bound = {a.name: a.default for a in fdef.args if not a.required} | bound
        if fdef.name == "groupnorm":
            self._check_groups(bound["groups"], args[0].span if args else e.kwargs[0].value.span)
        n = self.fn_count[fdef.name] = self.fn_count.get(fdef.name, 0) + 1
        path = e.alias.name if e.alias else f"{self.name}.{fdef.name}" + (f"_{n}" if n > 1 else "")
        opts = tuple(sorted(bound.items()))
        self.area.functions[path] = fdef.name
        self.ck.modules.setdefault(path, e.alias.span if e.alias else e.span)
        return ir.Apply(fdef.name, (inner,) if inner is not None else (), e.span, path, opts), 0


def _lower_hint(text: str, params: dict, example: str) -> str:
    """'lower it with --set NAME=...' when `text` is just a param's name, else 'lower it in the spec'."""
    if text in params:
        return f"lower it with --set {text}=... ({example})"
    return f"lower it in the spec ({example})"


def _plain(x: float) -> str:
    """A whole number in digits (1000000, not 1e+06), anything else as %g."""
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else f"{x:g}"


def _not_a_number(name: str, span: Span) -> DynError:
    return err(f"'{name}' is not a number in a spec: every value is finite (there is no inf or nan)", span,
               "write a large finite number instead, e.g. 1e9")


def _float32(value: float, text: str, span: Span) -> float:
    """`value`, if float32 (which the model computes in) holds it; a DynError at `span` otherwise."""
    if not abs(value) <= FLOAT32_MAX:
        what = f"is {value:.3g}, beyond" if math.isfinite(value) else "overflows"
        raise err(f"'{text}' {what} the float32 range the model computes in (about 3.4e38)", span,
                  "use a smaller value")
    return value


_ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
               "pow": operator.pow}


def _constant(x: ir.EqExpr) -> float | None:
    """The value of a constant or a negated constant, else None."""
    if isinstance(x, ir.Apply) and x.fn == "neg" and len(x.args) == 1:
        inner = _constant(x.args[0])
        return None if inner is None else -inner
    return x.value if isinstance(x, ir.Const) else None


def _check_constant_arithmetic(fn: str, a: ir.EqExpr, b: ir.EqExpr, e: S.BinOp, text: str) -> None:
    """Constant arithmetic in an equation must stay finite in float32 (it would be inf or nan at run time)."""
    if fn == "div" and _constant(b) == 0:
        raise err(f"division by zero in '{text}'", e.right.span)
    x, y = _constant(a), _constant(b)
    if x is None or y is None or fn not in _ARITHMETIC:
        return
    if fn == "pow" and (x == 0 and y < 0 or x < 0 and y != int(y)):
        raise err(f"'{text}' has no finite real value", e.span)
    try:
        value = _ARITHMETIC[fn](x, y)
    except OverflowError:
        value = math.inf
    _float32(value, text, e.span)


def _divisor_below(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, max(limit, 1)) + 1) if n % d == 0)


def linear_split(rhs: ir.EqExpr, var: str) -> tuple[ir.EqExpr | None, ir.EqExpr | None]:
    """Write `rhs` as a*var + b with a, b free of var; a DynError if it is not linear."""
    has, parts = ir.fold(rhs, lambda x, args: _split_node(x, args, var))
    if not has:
        return None, rhs
    if isinstance(parts, _Nonlinear):
        raise err(f"the exponential solver needs d{var}/dt to be linear in '{var}'", parts.span,
                  "use 'solver euler' or 'solver rk4' for nonlinear dynamics")
    return parts


@dataclass(frozen=True)
class _Nonlinear:
    """The first part of an equation (depth first) that a*var + b cannot describe."""

    span: Span


def _split_node(x: ir.EqExpr, args: list, var: str):
    """linear_split at one node, its operands done: (whether it reads var, x itself or (a, b) or _Nonlinear)."""
    if isinstance(x, ir.Ref) and x.kind == "state" and x.name == var:
        return True, (ir.Const(1.0, x.span), None)
    if not any(has for has, _ in args):
        return False, x
    return True, _split_apply(x, args)


def _split_apply(x: ir.Apply, args: list):
    """(a, b) of a node that reads var, from its operands' splits; _Nonlinear where that fails."""
    reads = [has for has, _ in args]
    if not (x.fn in ("add", "sub", "neg") or x.fn == "mul" and not all(reads) or x.fn == "div" and not reads[1]):
        return _Nonlinear(x.span)
    split = [parts if has else (None, parts) for has, parts in args]  # a var-free operand is all b
    bad = next((p for p in split if isinstance(p, _Nonlinear)), None)
    if bad is not None:
        return bad
    if x.fn in ("add", "sub"):
        (a1, b1), (a2, b2) = split
        return _comb(x.fn, a1, a2, x.span), _comb(x.fn, b1, b2, x.span)
    if x.fn == "neg":
        (a, b), = split
        return _comb("sub", None, a, x.span), _comb("sub", None, b, x.span)
    if x.fn == "mul":
        const, (a, b) = (args[0][1], split[1]) if not reads[0] else (args[1][1], split[0])
        return (ir.Apply("mul", (const, a), x.span) if a else None, ir.Apply("mul", (const, b), x.span) if b else None)
    (a, b), den = split[0], args[1][1]  # div by a var-free denominator
    return (ir.Apply("div", (a, den), x.span) if a else None, ir.Apply("div", (b, den), x.span) if b else None)


def _comb(fn, a, b, span):
    if a is None and b is None:
        return None
    if b is None:
        return a
    if a is None:
        return b if fn == "add" else ir.Apply("neg", (b,), span)
    return ir.Apply(fn, (a, b), span)
