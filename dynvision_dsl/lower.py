"""Stage 5: lower each step variant to a torch.fx graph, optimise it, and
print it as Python. The result, a `Program`, is what `emit` renders and what
the in-process module runs: both execute the very same code."""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F

from .frontend import ir
from .middle.algebra import linear_split
from .functions import TABLE as FUNCTION_TABLE, torch_function
from .layers import Bounded
from .lower_layout import conv_input, rewritten_conv
from .backend.passes.lean_training_ops import conv_paths
from .ops import OPERATORS, REDUCE_OVER, REDUCED, OpSpec, adapt_stride, function_module
from .frontend.check.variables import definitions, inline
from .backend.markers import as_map, keep_if_silent
from .backend.passes import pipeline
from .backend.passmanager import PassManager, PassReport, changed
from .backend.runtime_ops import noise_sample, phi1
from .backend.tail import Wiring, tail_graphs
from .backend.shapes import record, record_function
from .pycode import print_step
from . import codenames as names
from .schedule import Read, Schedule, StepKey

# one-argument functions of the function table, as torch functions (min, max, clamp: see Apply below)
_MATH = {f.name: torch_function(f.torch) for f in FUNCTION_TABLE if f.arity == 1}
_ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
          "pow": operator.pow, "neg": operator.neg}
_REDUCE = {"mean": torch.mean, "sum": torch.sum, "max": torch.amax}
_COMPARE = {"lt": torch.lt, "gt": torch.gt, "le": torch.le, "ge": torch.ge, "eq": torch.eq, "ne": torch.ne}


@dataclass
class ModuleDef:
    path: str
    ctor: str  # constructor source, evaluated in the generated module's namespace
    line: int  # spec line that asked for it
    comment: str


@dataclass
class StepFn:
    name: str
    key: StepKey
    inputs: list[str]  # placeholder names, in call order
    graph: fx.Graph
    source: str
    passes: dict[str, bool] = field(default_factory=dict)
    reports: list[PassReport] = field(default_factory=list)  # per pass: changed, time, node counts


@dataclass
class Program:
    model: ir.Model
    schedule: Schedule
    modules: list[ModuleDef]
    trainables: list[tuple[str, str, int]]  # path, constructor source, spec line
    steps: list[StepFn]
    outputs: list[tuple[str, str]]  # what a step returns: ("state", "V1.r"), ("out", "V1"), ("var", "V1.g"),
    # ("logits", readout name)
    constants: names.Constants = field(default_factory=names.Constants)  # the steps' named constants
    tails: list[StepFn] = field(default_factory=list)  # the tail variants, last step first (backend/tail.py)

    @property
    def functions(self) -> list[StepFn]:
        """Every step function the module has: the variants, then the tail variants."""
        return self.steps + self.tails

    @property
    def tail(self) -> list[int]:
        """Per step from the end (last first): its tail variant's index in `functions`."""
        return list(range(len(self.steps), len(self.functions)))


TIME_INPUT = "time_ms"  # the step function's argument that carries `t`


def read_name(r: Read) -> str:
    return f"{r.source}_d{r.delay}"


def state_name(area: str, var: str) -> str:
    return f"{area}_{var}_prev"


def frame_name(model: ir.Model, name: str) -> str:
    """The step function's argument for an input's current frame: `x`, or `x_NAME` with several inputs."""
    return "x" if len(model.inputs) == 1 else f"x_{name}"


def variables(model: ir.Model, order: list[str]) -> list[tuple[str, str]]:
    """(area, name) of every assigned variable that is not a state or the output, in evaluation order: a step
    returns them so that `record=["V1.g"]` and `V1.g -> ...` can read them."""
    out = []
    for a in order:
        area = model.areas[a]
        out.extend((a, v) for v in dict.fromkeys(s.var for s in area.assigns) if v not in area.states and v != area.output)
    return out


def lower(model: ir.Model, schedule: Schedule, optimize: bool = True) -> Program:
    modules, trainables = _module_defs(model)
    outputs = ([("state", f"{a}.{v}") for a, v in schedule.state_keys] + [("out", a) for a in schedule.order]
               + [("var", f"{a}.{v}") for a, v in variables(model, schedule.order)]
               + [("logits", r.name) for r in model.readouts])
    steps, manager, convs = [], PassManager(pipeline(optimize)), conv_paths(modules)
    constants = names.Constants(taken=_attribute_names(modules, trainables))
    fields = names.output_fields(outputs, len(model.readouts) > 1)
    for k, key in enumerate(schedule.variants):
        graph, reports = step_graph(model, schedule, k, manager, convs)
        inputs = [n.target for n in graph.nodes if n.op == "placeholder"]
        name = f"_step_{k}"
        code = print_step(graph, name, model, constants, fields)
        steps.append(StepFn(name, key, inputs, graph, code, changed(reports), reports))
    tails = _tail_steps(steps[schedule.steady], _wiring(model, schedule, outputs), model, constants, fields)
    return Program(model, schedule, modules, trainables, steps, outputs, constants, tails)


_TAIL_LIMIT = 64  # tail variants at most: earlier steps run the steady one (which computes more)


def _tail_steps(steady: StepFn, wiring: Wiring, model: ir.Model, constants, fields) -> list[StepFn]:
    """The tail variants `_tail_0` (the last step), `_tail_1`, ... (backend/tail.py), printed."""
    tails = []
    for d, graph in enumerate(tail_graphs(steady.graph, wiring, _TAIL_LIMIT)):
        name = f"_tail_{d}"
        head, body = print_step(graph, name, model, constants, fields).split("\n", 1)
        code = (f'{head}\n    """Step T - {d + 1} of a run that records nothing: the steady step without '
                f'what no later output needs (backend/tail.py)."""\n{body}')
        tails.append(StepFn(name, steady.key, steady.inputs, graph, code))
    return tails


def signals(model: ir.Model, outputs: list[tuple[str, str]]) -> dict[str, tuple[str, str, int]]:
    """What a run can record or buffer, by name (`V1` the output, `V1.a` a state or variable):
    (area, variable, index in a step's outputs). The generated module's `signals` table."""
    out: dict[str, tuple[str, str, int]] = {}
    for i, (kind, name) in enumerate(outputs):
        if kind == "out":
            out[name] = (name, model.areas[name].output, i)
        elif kind in ("state", "var"):
            area, var = name.split(".", 1)
            if var != model.areas[area].output:
                out[name] = (area, var, i)
    return out


def _wiring(model: ir.Model, schedule: Schedule, outputs: list[tuple[str, str]]) -> Wiring:
    """Which step output each state and delayed-read placeholder of the steady step reads (a
    delayed read: the output its ring is written from, as the runtime writes it: `signals`)."""
    signal, inputs = signals(model, outputs), {i.name for i in model.inputs}
    return Wiring(frozenset(i for i, (kind, _) in enumerate(outputs) if kind == "logits"),
                  {state_name(a, v): outputs.index(("state", f"{a}.{v}")) for a, v in schedule.state_keys},
                  {read_name(r): (signal[r.source][2], r.delay) for r in schedule.reads if r.source not in inputs})


def _attribute_names(modules: list[ModuleDef], trainables) -> set[str]:
    """Names a constant (a class attribute of the model) must not take: its submodules' and
    parameters' top-level names, and the attributes of the model class and nn.Module."""
    from .frontend.check.rules import GENERATED_ATTRIBUTES, MODULE_ATTRIBUTES

    roots = {m.path.split(".")[0] for m in modules} | {path.split(".")[0] for path, _, _ in trainables}
    return roots | GENERATED_ATTRIBUTES | MODULE_ATTRIBUTES | set(dir(torch.nn.Module))


def step_graph(model: ir.Model, schedule: Schedule, k: int, manager: PassManager,
               convs: frozenset[str] | None = None) -> tuple[fx.Graph, list[PassReport]]:
    """Step variant k's graph (`_step_k`), lowered and run through the manager's passes; `convs`
    (the model's convolution paths, `conv_modules`) is worked out here when not given."""
    convs = conv_modules(model) if convs is None else convs
    graph = _StepBuilder(model, schedule, schedule.variants[k], convs).build()
    return graph, manager.run(graph, f"_step_{k}", model.file, model.source)


def conv_modules(model: ir.Model) -> frozenset[str]:
    """The paths of the model's 2-d convolutions: lean_training_ops may write into their outputs."""
    return conv_paths(_module_defs(model)[0])


# ---------------------------------------------------------------- modules
def _module_defs(model: ir.Model) -> tuple[list[ModuleDef], list[tuple[str, str, int]]]:
    defs: list[ModuleDef] = []
    trainables: list[tuple[str, str, int]] = []
    for a in model.areas.values():
        for path, value in a.trainables.items():
            trainables.append((path, trainable_ctor(value, a.bounds.get(path), a.channels), a.span.line))
        for path, fn in a.functions.items():
            apply = next(n for n in _all_applies(a) if n.module == path)
            defs.append(ModuleDef(path, function_module(fn, dict(apply.options), a.shape), apply.span.line,
                                  f"{fn} in area {a.name}"))
    for c in model.conns:
        defs.extend(_op_modules(c.ops, c.span.line, c.label))
    for r in model.readouts:
        defs.extend(_op_modules(r.ops, r.span.line, "readout" if len(model.readouts) == 1 else f"readout {r.name}"))
    return defs, trainables


def trainable_ctor(value: float, bounds: ir.TrainableBounds | None, channels: int) -> str:
    """The constructor source of a trainable param: a plain nn.Parameter (a scalar, or (C, 1, 1)
    per channel), or a Bounded module whose value starts at exactly `value` in float32."""
    shape = trainable_shape(bounds, channels)
    if bounds is None or bounds.lo is None and bounds.hi is None:
        return f"nn.Parameter(torch.tensor({value}))" if not shape else f"nn.Parameter(torch.full({shape}, {value}))"
    raw, scale, shift = exact_raw(value, bounds.lo, bounds.hi)
    return f"Bounded({shape}, {raw!r}, lo={bounds.lo!r}, hi={bounds.hi!r}, scale={scale!r}, shift={shift!r})"


def trainable_shape(bounds: ir.TrainableBounds | None, channels: int) -> tuple[int, ...]:
    """A trainable's shape: (C, 1, 1) per channel, else () (one value)."""
    return (channels, 1, 1) if bounds is not None and bounds.per_channel else ()


def exact_raw(value: float, lo: float | None, hi: float | None) -> tuple[float, float, float]:
    """(raw, scale, shift) at which Bounded gives float32(value) exactly, within its bounds even
    at raw = +-inf (see _exact_start; two bounds: the scale shrinks until the top holds too)."""
    cap = None
    while True:
        raw, scale, shift = _exact_start(value, lo, hi, cap)
        if lo is None or hi is None:
            return raw, scale, shift
        with torch.no_grad():
            top = float(Bounded((), math.inf, lo, hi, scale, shift)())
        if top <= hi:
            return raw, scale, shift
        cap = float(torch.nextafter(torch.tensor(scale), torch.tensor(0.0)))


def _exact_start(value: float, lo: float | None, hi: float | None, cap: float | None,
                 tries: int = 256) -> tuple[float, float, float]:
    """(raw, scale, shift) at which Bounded gives float32(value) exactly. One bound: raw = 0 and
    the scale is walked; two: scale = hi - lo (rounded down, so lo + scale <= hi) and raw is
    walked. Where the float32 grid skips the value, `shift` (a few ulps, towards the open side:
    >= 0 above a min, <= 0 below a max) makes up the rest, so the bounds still hold."""
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    target = f32(value)
    if lo is None or hi is None:
        raw, scale = f32(0.0), f32((value - lo if hi is None else hi - value) / math.log(2.0))
    else:
        scale = f32(hi - lo if cap is None else cap)
        while float(f32(lo) + scale) > hi:
            scale = torch.nextafter(scale, f32(0.0))
        raw = f32(math.log((value - lo) / (hi - lo)) - math.log1p(-(value - lo) / (hi - lo)))
    below = hi is None or lo is not None  # the side `base` must stay on: <= target (a min) or >= (a max)
    best = None
    with torch.no_grad():
        for _ in range(tries):
            base = Bounded((), float(raw), lo, hi, float(scale))()
            if (base <= target) == below or base == target:
                gap = abs(float(target) - float(base))
                best = (gap, float(raw), float(scale)) if best is None or gap < best[0] else best
                if gap == 0:
                    break
            grow = (base < target) == below  # hi - scale * softplus falls as scale grows
            step = f32(math.inf if grow else -math.inf)
            raw, scale = (raw, torch.nextafter(scale, step)) if hi is None or lo is None else (torch.nextafter(raw, step), scale)
        _, raw, scale = best
        base = Bounded((), raw, lo, hi, scale)()
    return raw, scale, float(target - base)


def _op_modules(ops: list[OpSpec], line: int, label: str) -> list[ModuleDef]:
    out = []
    for o in ops:
        for sub, ctor in OPERATORS[o.kind].modules(o.a, o.in_shape, o.out_shape):
            out.append(ModuleDef(f"{o.path}.{sub}" if sub else o.path, ctor, line, f"{o.kind} in {label}"))
    return out


def _all_applies(a: ir.Area):
    exprs = [o.rhs for o in a.odes] + [o.coef for o in a.odes if o.coef is not None] + [
        s.value for s in (*a.before_odes, *a.assigns)]
    for e in exprs:
        for n in ir.walk(e):
            if isinstance(n, ir.Apply):
                yield n


def _number(e: ir.EqExpr | None) -> float | None:
    """The value of a constant equation expression, or None if it is not constant."""
    if e is None or not all(isinstance(n, ir.Const) or isinstance(n, ir.Apply) and n.fn in _ARITH and n.module is None
                            for n in ir.walk(e)):
        return None
    return ir.fold(e, lambda n, vals: n.value if isinstance(n, ir.Const) else float(_ARITH[n.fn](*vals)))


# ------------------------------------------------------------- step graphs
class _StepBuilder:
    """Builds one step's full computation; silence is left to the drop_silent pass."""

    def __init__(self, model: ir.Model, schedule: Schedule, key: StepKey, convs: frozenset[str]):
        self.m, self.s, self.key, self.convs = model, schedule, key, convs
        self.g = fx.Graph()
        self.out: dict[str, fx.Node] = {}  # area outputs computed this step
        self._silent: fx.Node | None = None
        self._time: fx.Node | None = None
        self._span = None
        self._role: tuple[str, str] | None = None  # (area, name) the values made now are named after (codenames)
        self._roles: dict = {}  # the current area's equations: span -> (area, quantity)
        self._noise_scale = 1.0  # 1/sqrt(dt) inside an ODE's right side: white noise (Euler-Maruyama)

    def node(self, op: str, target, args=(), name: str | None = None, span=None) -> fx.Node:
        n = self.g.create_node(op, target, tuple(args), {}, name=name)
        if span is not None or self._span is not None:
            n.meta["span"] = span or self._span
        role = self._role or self._roles.get(n.meta.get("span"))
        if role is not None:
            n.meta["role"] = role
        return n

    def fn(self, target, *args, name=None):
        return self.node("call_function", target, args, name)

    def silent(self) -> fx.Node:
        if self._silent is None:
            self._silent = self.g.placeholder("silent")
            self._silent.meta["silent"] = True
        return self._silent

    def time(self) -> fx.Node:
        """The step's time in ms, a 0-dim tensor the runtime passes (one graph serves many steps)."""
        if self._time is None:
            self._time = self.g.placeholder(TIME_INPUT)
            self._time.meta["unbatched"] = True
            record(self._time, (), batched=False)
        return self._time

    def build(self) -> fx.Graph:
        self.xs = {i.name: record(self.g.placeholder(frame_name(self.m, i.name)), i.shape) for i in self.m.inputs}
        x = self.x = self.xs[self.m.inputs[0].name]  # batch, dtype and device of every made tensor
        self.reads = {}
        outputs = {a: area.output for a, area in self.m.areas.items()}
        for r, present in zip(self.s.reads, self.key.reads):
            p = self.g.placeholder(read_name(r))
            p.meta["role"] = (r.source, f"{names.signal_quantity(r.source, outputs)}_delayed_{r.delay}")
            p.meta["silent"] = not present
            record(p, self._signal_shape(r.source))
            self.reads[(r.source, r.delay)] = p
        self.prev = {}
        for (a, v), present in zip(self.s.state_keys, self.key.states):
            p = self.g.placeholder(state_name(a, v))
            p.meta["role"] = (a, f"{names.quantity(a, v)}_prev")
            p.meta["silent"] = not present
            record(p, self.m.areas[a].shape)
            self.prev[(a, v)] = p
        new_states: dict[tuple[str, str], object] = {}
        for name in self.s.order:
            area = self.m.areas[name]
            values = self._area(area)
            as_maps = {}
            for key, value in values.items():
                if key[0] in ("state", "var"):
                    self._role = (name, names.quantity(name, key[1]))
                    as_maps[key] = self.fn(as_map, value, x, tuple(area.shape))
                    self._role = None
            for v in area.states:
                new_states[(name, v)] = as_maps[("state", v)]
            self.out[name] = as_maps[("state" if area.output in area.states else "var", area.output)]
            self.out.update({f"{name}.{v}": m for (kind, v), m in as_maps.items()})
        logits = [self._readout(r) for r in self.m.readouts]
        result = ([new_states[k] for k in self.s.state_keys] + [self.out[a] for a in self.s.order]
                  + [self.out[f"{a}.{v}"] for a, v in variables(self.m, self.s.order)] + logits)
        self.g.output(tuple(result))
        return self.g

    def _signal_shape(self, source: str) -> tuple[int, ...]:
        """The per-sample shape of a signal: an input's, or its area's (`V1` and `V1.c` alike)."""
        area = self.m.areas.get(source.partition(".")[0])
        return area.shape if area is not None else next(i.shape for i in self.m.inputs if i.name == source)

    def source_value(self, source: str, delay: int):
        if delay == 0:
            return self.xs[source] if source in self.xs else self.out[source]
        return self.reads[(source, delay)]

    # connections
    def _pipeline(self, value, ops: list[OpSpec], span):
        self._span = span
        for o in ops:
            before, value = value, self._op(value, o)
            if isinstance(value, fx.Node) and value is not before:  # the checker's shape (backend/shapes.py)
                record(value, o.out_shape, model_dtype=bool(value.meta.get("conv") or value.meta.get("conv_product")))
        self._span = None
        return value

    def _module(self, path: str, value, name: str | None = None):
        node = self.node("call_module", path, (value,), name=name)
        node.meta["conv"] = path in self.convs  # lean_training_ops may write into its output
        return node

    def _op(self, v, o: OpSpec):
        a, k = o.a, o.kind
        if (rewritten := rewritten_conv(self, v, o)) is not None:  # centre tap, gemm, resize first (layout.py)
            rewritten.meta["conv_product"] = True  # a product with the conv's weight: the model's dtype
            return rewritten
        v = conv_input(self, v, o)  # the layout the convolution runs in
        if k in ("conv", "depthwise", "pointwise", "scale", "dropout", "local"):
            return self._module(o.path, v)
        if k == "linear":
            if len(o.in_shape) > 1:
                v = self.fn(torch.flatten, v, 1)
            return self._module(o.path, v)
        if k == "maxpool":
            return self.fn(F.max_pool2d, v, a["k"], a["stride"], a["padding"])
        if k == "avgpool":
            if a.get("out") is not None:
                return self.fn(F.adaptive_avg_pool2d, v, a["out"])
            if a["k"] is None:
                return self.fn(F.adaptive_avg_pool2d, v, 1)
            return self.fn(F.avg_pool2d, v, a["k"], a["stride"], a["padding"])
        if k == "resize" or k == "adapt":
            if k == "adapt" and o.in_shape[0] != o.out_shape[0]:
                v = self._module(f"{o.path}.conv", v)
                if adapt_stride(o.in_shape, o.out_shape):  # the strided conv did the resize
                    return v
            if tuple(o.in_shape[1:]) != tuple(o.out_shape[1:]):
                v = self.node("call_function", F.interpolate, (v, tuple(o.out_shape[1:])))
            return v
        if k == "flatten":
            return self.fn(torch.flatten, v, 1)
        if k == "identity":
            return v
        if k == "lateral":
            kind = a["kind"]
            subs = {"self": [""], "full": ["conv"], "depthpointwise": ["depthwise_conv", "pointwise_conv"],
                    "pointdepthwise": ["pointwise_conv", "depthwise_conv"], "local": [""],
                    "localdepthwise": ["local_conv", "patchy_conv"]}[kind]
            for sub in subs:
                v = self._module(f"{o.path}.{sub}" if sub else o.path, v)
            return v
        raise NotImplementedError(k)

    # areas
    def _area(self, area: ir.Area) -> dict:
        env: dict[tuple[str, str], object] = {}
        for port in area.ports:
            terms = []
            for c in self.m.conns_into(area.name):
                if c.port == port:
                    self._role = (area.name, names.term(area.name, port, c.signal))
                    term = self._pipeline(self.source_value(c.signal, c.delay_steps), c.ops, c.span)
                    if c.ops and len(c.ops[-1].out_shape) == 1:  # a vector into an area [n]: n maps of 1 x 1
                        term = self.fn(torch.unflatten, term, 1, (c.ops[-1].out_shape[0], 1, 1))
                    terms.append(term)
            self._role = (area.name, names.quantity(area.name, port))
            total = terms[0] if terms else self.silent()
            for t in terms[1:]:
                total = self.fn(operator.add, total, t)
            self._role = None
            env[("port", port)] = total
        self._roles = {s.span: (area.name, names.quantity(area.name, s.var))
                       for s in (*area.odes, *area.before_odes, *area.assigns)}
        for v in area.states:
            env[("state", v)] = self.prev[(area.name, v)]
        self.area = area
        new = self._integrate(area, env)
        env.update({("state", v): n for v, n in new.items()})
        for s in area.assigns:
            self._span = s.span
            value = self.expr(s.value, env)
            if s.var in area.states:
                value = self.fn(keep_if_silent, value, env[("state", s.var)])
                env[("state", s.var)] = value
            else:
                env[("var", s.var)] = value
            self._span = None
        return env

    def _variables(self, area: ir.Area, env: dict) -> None:
        """Evaluate the variables above the ODEs (§9.2) into `env`, from its states and ports."""
        for a in area.before_odes:
            self._span = a.span
            env[("var", a.var)] = self.expr(a.value, env)
        self._span = None

    def _rhs(self, o: ir.OdeEq, env: dict):
        """An ODE's right side; each noise() in it is a white-noise sample, N(0, 1) / sqrt(dt)."""
        self._span = o.span
        self._noise_scale = 1.0 / math.sqrt(self.m.dt)
        try:
            return self.expr(o.rhs, env)
        finally:
            self._noise_scale = 1.0

    def _integrate(self, area: ir.Area, env: dict) -> dict[str, object]:
        self._variables(area, env)  # the first (Euler) evaluation; assignments below the ODEs see it
        if not area.odes:
            return {}
        dt = names.Constant(self.m.dt, "dt", f"{self.m.dt:g} ms")
        rate_scale = {o.var: (lambda h, o=o: self.fn(operator.truediv, h, self.expr(o.coef, env)) if o.coef is not None else h)
                      for o in area.odes}
        if area.solver == "exponential":
            defs = definitions(area)  # the split a*X + b sees through the variables to the states
            return {o.var: self._exponential(o, inline(o.rhs, defs), env) for o in area.odes}
        if area.solver == "euler":
            out = {}
            for o in area.odes:
                rhs = self._rhs(o, env)
                self._span = o.span
                out[o.var] = self.fn(operator.add, env[("state", o.var)], self.fn(operator.mul, rate_scale[o.var](dt), rhs))
            self._span = None
            return out
        # classic fourth-order Runge-Kutta over the area's joint system, inputs held
        ks: list[dict[str, object]] = []
        stage_env = dict(env)
        for frac in (0.5, 0.5, 1.0, None):
            k = {}
            for o in area.odes:
                k[o.var] = self._rhs(o, stage_env)
            ks.append(k)
            if frac is not None:
                stage_env = dict(env)
                for o in area.odes:
                    self._span = o.span
                    stage_env[("state", o.var)] = self.fn(operator.add, env[("state", o.var)],
                                                          self.fn(operator.mul, rate_scale[o.var](dt * frac), k[o.var]))
                self._variables(area, stage_env)  # re-evaluated from the stage's states
        out = {}
        for o in area.odes:
            self._span = o.span
            total = ks[0][o.var]
            for w, k in ((2.0, ks[1]), (2.0, ks[2]), (1.0, ks[3])):
                total = self.fn(operator.add, total, self.fn(operator.mul, w, k[o.var]))
            out[o.var] = self.fn(operator.add, env[("state", o.var)], self.fn(operator.mul, rate_scale[o.var](dt / 6), total))
        self._span = None
        return out

    def _exponential(self, o: ir.OdeEq, rhs: ir.EqExpr, env: dict):
        """Exact for a linear leak with held input, coef * X' = a X + b (per unit a, b, coef):
        X <- X e^z + (b / coef) dt phi1(z), z = a dt / coef, phi1(z) = (e^z - 1) / z, 1 at z = 0."""
        self._span = o.span
        a, b = linear_split(rhs, o.var)
        x = env[("state", o.var)]
        coef = self.expr(o.coef, env) if o.coef is not None else 1.0
        dt = self.m.dt
        step = self.fn(operator.truediv, dt, coef)  # dt / coef
        if a is None:
            return self.fn(operator.add, x, self.fn(operator.mul, step, self.expr(b, env)))
        a_val, c_val = _number(a), _number(o.coef) if o.coef is not None else 1.0
        if a_val is not None and c_val is not None:  # a constant leak: the factors are numbers
            z = a_val / c_val * dt
            decay, gain = math.exp(z), dt / c_val * (math.expm1(z) / z if z != 0.0 else 1.0)
            where = f"{o.span.file}:{o.span.line}"  # named constants of the model (codenames)
            tau = self._expr_node(o.coef, [], env) if isinstance(o.coef, ir.Const) else None  # `5 ms` for a param
            c_text = tau.values if isinstance(tau, names.Constant) else f"{c_val:g}"
            z_text = f"{a_val:g} * {dt:g} ms / {c_text}"  # a * dt / tau: the leak, the step, the ODE's coefficient
            decay = names.Constant(decay, "exp(a * dt / tau)", f"exp({z_text})", where, label=f"{o.var}_decay")
            gain = names.Constant(gain, "dt / tau * phi1(a * dt / tau)", f"{dt:g} ms / {c_text} * phi1({z_text})", where,
                                  f"{o.var}_gain")
        else:
            z = self.fn(operator.mul, self.expr(a, env), step)
            decay, gain = self.fn(torch.exp, z), self.fn(operator.mul, step, self.fn(phi1, z))
        result = self.fn(operator.mul, x, decay)
        if b is not None:
            result = self.fn(operator.add, result, self.fn(operator.mul, self.expr(b, env), gain))
        self._span = None
        return result

    def expr(self, e: ir.EqExpr, env: dict):
        """The graph value of an equation expression (built children first, in a loop)."""
        return ir.fold(e, lambda node, args: self._expr_node(node, args, env))

    def _expr_node(self, e: ir.EqExpr, args: list, env: dict):
        if isinstance(e, ir.Const):
            return names.spec_constant(e.value, self.m.source, e.span, self.m.params, self.m.param_units)
        if isinstance(e, ir.Ref):
            return self.time() if e.kind == "time" else env[(e.kind, e.name)]
        if isinstance(e, ir.ParamRef):
            bounds = self.area.bounds.get(e.path)
            op = "call_module" if bounds is not None and (bounds.lo is not None or bounds.hi is not None) else "get_attr"
            node = self.node(op, e.path, ())  # a Bounded module (its value), else the nn.Parameter
            return record(node, trainable_shape(bounds, self.area.channels), batched=False, model_dtype=True)
        if e.module is not None:
            return record_function(self.node("call_module", e.module, tuple(args)), self.area.functions.get(e.module))
        if e.fn == "noise":
            sample = self.fn(noise_sample, self.x, tuple(self.area.shape))
            return sample if self._noise_scale == 1.0 else self.fn(operator.mul, sample, self._noise_scale)
        if e.fn in _ARITH:
            return self.fn(_ARITH[e.fn], *args)
        if e.fn in _MATH:
            return self.fn(_MATH[e.fn], *args)
        if e.fn in REDUCED:
            return self._reduce(e.fn, args[0])
        if e.fn in ("min", "max"):
            a, b = args
            if not isinstance(a, fx.Node) and not isinstance(b, fx.Node):
                return (min if e.fn == "min" else max)(a, b)
            if isinstance(a, fx.Node) and isinstance(b, fx.Node):
                return self.fn(torch.minimum if e.fn == "min" else torch.maximum, a, b)
            t, c = (a, b) if isinstance(a, fx.Node) else (b, a)
            return self.node("call_function", torch.clamp, (t, None, c) if e.fn == "min" else (t, c))
        if e.fn == "clamp":
            return self.node("call_function", torch.clamp, tuple(args))
        if e.fn in _COMPARE:
            cmp = self.fn(_COMPARE[e.fn], *args)
            ref = next(a for a in args if isinstance(a, fx.Node))
            return self.node("call_method", "type_as", (cmp, ref))
        raise NotImplementedError(e.fn)

    def _reduce(self, fn: str, value):
        """mean/sum/max over channels or space, kept as a broadcastable dimension of 1."""
        name, over = REDUCED[fn]
        dims = REDUCE_OVER[over]
        if not isinstance(value, fx.Node):  # a constant: its mean and max are itself, its sum n times it
            c, h, w = self.area.shape
            return value * (c if over == "channels" else h * w) if name == "sum" else value
        reduced = self.fn(_REDUCE[name], value, dims, True)
        return self.node("call_method", "expand_as", (reduced, value))  # broadcast back: [1, H, W] -> [C, H, W]

    def _readout(self, r: ir.ReadoutSpec):
        several = len(self.m.readouts) > 1
        self._role = (f"readout {r.name}" if several else "readout", names.logits(r.name, several))
        v = self._pipeline(self.source_value(r.source, r.delay_steps), r.ops, r.span)
        if len(r.ops[-1].out_shape if r.ops else self.m.areas[r.source].shape) > 1:
            v = self.fn(torch.flatten, v, 1)
        self._role = None
        return v
