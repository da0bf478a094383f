"""NIR (the Neuromorphic Intermediate Representation) graphs to and from `.dyn` models.

`to_nir`/`export` read the checked model (areas, connections, delays, weights), never a
trace; `from_nir`/`load` write a readable spec plus its weights. What NIR cannot hold is
listed in docs/interop.md; the `dynvision` metadata keys let a round trip restore it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..frontend import ir
from ..ops import REDUCED
from . import InteropError

SOURCE = "dynvision-dsl"
SPIKING = ("LIF", "IF", "CubaLIF", "Threshold")


def _nir():
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - the suite installs it
        raise InteropError("NIR support needs the 'nir' package: pip install 'dynvision-dsl[nir]'") from exc
    return nir


# ================================================================ equations
def _number(e: ir.EqExpr, model) -> float | None:
    """The value of a constant expression (a trainable reads its current value), else None."""
    if isinstance(e, ir.Const):
        return float(e.value)
    if isinstance(e, ir.ParamRef):  # a trainable: its current value (1.0 when only the structure is asked about)
        return 1.0 if model is None else float(model.get_parameter(e.path).detach().reshape(-1)[0])
    if isinstance(e, ir.Apply) and e.fn in ("add", "sub", "mul", "div", "neg"):
        vals = [_number(a, model) for a in e.args]
        if None in vals:
            return None
        return {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
                "div": lambda a, b: a / b, "neg": lambda a: -a}[e.fn](*vals)
    return None


def _affine(e: ir.EqExpr, model) -> dict[str, float] | None:
    """`e` as a sum of coefficient * term (terms: 'state:NAME', 'port:NAME', '1'), or None if nonlinear."""
    value = _number(e, model)
    if value is not None:
        return {"1": value}
    if isinstance(e, ir.Ref) and e.kind in ("state", "port"):
        return {f"{e.kind}:{e.name}": 1.0}
    if not isinstance(e, ir.Apply):
        return None
    if e.fn in ("add", "sub"):
        a, b = _affine(e.args[0], model), _affine(e.args[1], model)
        if a is None or b is None:
            return None
        sign = 1.0 if e.fn == "add" else -1.0
        return {k: a.get(k, 0.0) + sign * b.get(k, 0.0) for k in {*a, *b}}
    if e.fn == "neg":
        a = _affine(e.args[0], model)
        return None if a is None else {k: -v for k, v in a.items()}
    if e.fn in ("mul", "div"):
        left, right = (_number(a, model) for a in e.args)
        if e.fn == "div":
            factor, other = (None if not right else 1.0 / right), e.args[0]
        else:
            factor, other = (left, e.args[1]) if left is not None else (right, e.args[0])
        rest = _affine(other, model)
        if factor is None or rest is None:
            return None
        return {k: v * factor for k, v in rest.items()}
    return None


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}


def show(e: ir.EqExpr) -> str:
    """An equation expression as `.dyn` text (fully parenthesised where it nests)."""
    if isinstance(e, ir.Const):
        return repr(float(e.value))
    if isinstance(e, ir.Ref):
        return e.name
    if isinstance(e, ir.ParamRef):
        return e.path
    if e.fn in _INFIX:
        return f"({show(e.args[0])} {_INFIX[e.fn]} {show(e.args[1])})"
    if e.fn == "neg":
        return f"-{show(e.args[0])}"
    return f"{e.fn}({', '.join(show(a) for a in e.args)})"


@dataclass
class Leak:
    """An area as NIR's LI: tau (ms) dv/dt = v_leak - v + gain * input, then pointwise assignments."""

    tau_ms: float
    gain: float
    v_leak: float
    after: list[str]


def _stage_problem(area: ir.Area) -> str | None:
    """Why a stateless area is not a pointwise function of its input (None if it is)."""
    if area.states or not area.assigns or area.assigns[-1].var != area.output:
        return "it has no ODE and is not a pointwise function of its input"
    for eq in area.assigns:
        for n in ir.walk(eq.value):
            if isinstance(n, ir.Apply) and n.fn == "noise":
                return "it has no ODE and uses noise(), which NIR has no node for"
            if isinstance(n, ir.Apply) and n.module:
                return f"it has no ODE and uses {n.fn}() (a learnable function NIR has no node for)"
            if isinstance(n, ir.Apply) and n.fn in REDUCED:
                name, over = REDUCED[n.fn]
                return f"it has no ODE and uses {name}(x, {over}) (a reduction, not a pointwise function)"
            if isinstance(n, ir.Ref) and n.kind == "time":
                return "it has no ODE and reads the time t"
            if isinstance(n, ir.ParamRef):
                return f"it has no ODE and reads the trainable {n.path}"
            if isinstance(n, ir.Ref) and n.kind == "port" and n.name != "input":
                return f"it has no ODE and reads the port {n.name}"
    return None


def stage_of(area: ir.Area) -> list[str] | None:
    """The assignments of a stateless area (`r = relu(input)`) if it is a pointwise function of its
    input, else None; NIR has no such node, so it travels as Scale(1) with the assignments in metadata."""
    if area.odes or _stage_problem(area) is not None:
        return None
    return [f"{eq.var} = {show(eq.value)}" for eq in area.assigns]


def leak_of(area: ir.Area, model) -> Leak:
    """Read an area's dynamics as a linear leaky integrator, or say why it is not one."""
    def fail(why: str):
        raise InteropError(f"area {area.name}: {why}; NIR's LI (tau dv/dt = v_leak - v + R I) cannot express it")

    if area.before_odes:
        fail(f"its ODE reads the variable(s) {', '.join(e.var for e in area.before_odes)} assigned above it")
    if any(isinstance(n, ir.Apply) and n.fn == "noise" for e in (*area.odes, *area.assigns)
           for n in ir.walk(e.rhs if isinstance(e, ir.OdeEq) else e.value)):
        fail("it uses noise(), which NIR has no node for")
    if len(area.odes) != 1:
        fail(f"it has {len(area.odes)} ODEs (NIR's LI has one state)" if area.odes else _stage_problem(area))
    ode = area.odes[0]
    if ode.var != area.output:
        fail(f"its ODE integrates '{ode.var}' but its output is '{area.output}'")
    if any(p != "input" for p in area.ports):
        fail(f"it reads the port(s) {', '.join(p for p in area.ports if p != 'input')}")
    tau = 1.0 if ode.coef is None else _number(ode.coef, model)
    terms = _affine(ode.rhs, model)
    if tau is None or terms is None or set(terms) - {f"state:{ode.var}", "port:input", "1"}:
        fail(f"d{ode.var}/dt = {show(ode.rhs)} is not linear in {ode.var} and its input")
    a = terms.get(f"state:{ode.var}", 0.0)
    if a >= 0:
        fail(f"d{ode.var}/dt = {show(ode.rhs)} has no leak")
    for eq in area.assigns:
        if eq.var != area.output or any(isinstance(n, ir.Ref) and n.kind != "state" for n in ir.walk(eq.value)):
            fail(f"'{eq.var} = {show(eq.value)}' is not a pointwise function of the output")
    return Leak(tau / -a, terms.get("port:input", 0.0) / -a, terms.get("1", 0.0) / -a,
                [f"{eq.var} = {show(eq.value)}" for eq in area.assigns])


# ================================================================== export
@dataclass
class _Builder:
    """Nodes and edges of the NIR graph under construction, with unique names."""

    model: Any
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)

    def add(self, name: str, node) -> str:
        base, n = name, 2
        while name in self.nodes:
            name, n = f"{base}_{n}", n + 1
        self.nodes[name] = node
        return name

    def chain(self, start: str, names: list[str]) -> str:
        for name in names:
            self.edges.append((start, name))
            start = name
        return start


def _conv(nir, module, in_shape) -> Any:
    w = module.weight.detach().cpu().numpy().astype(np.float32)
    bias = module.bias
    b = np.zeros(w.shape[0], np.float32) if bias is None else bias.detach().cpu().numpy().astype(np.float32)
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=w, stride=module.stride, padding=module.padding,
                      dilation=module.dilation, groups=module.groups, bias=b)


def _pool(nir, op: ir.OpSpec):
    a, (h, w) = op.a, op.in_shape[1:]
    if a.get("out") is not None:
        n = a["out"]
        if h % n or w % n:
            raise InteropError(f"{op.path}: avgpool(out={n}) of a [{h}, {w}] map is not a fixed window; "
                               "NIR's AvgPool2d needs kernel and stride")
        k = (h // n, w // n)
        return nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(k), padding=np.array((0, 0)))
    if a.get("k") is None:  # global
        return nir.AvgPool2d(kernel_size=np.array((h, w)), stride=np.array((h, w)), padding=np.array((0, 0)))
    return nir.AvgPool2d(kernel_size=np.array((a["k"],) * 2), stride=np.array((a["stride"],) * 2),
                         padding=np.array((a["padding"],) * 2))


def _self_conv(nir, module, shape):
    """DynVision's `self` recurrence w*x + b as a depthwise 1x1 Conv2d."""
    c = shape[0]
    w = np.full((c, 1, 1, 1), float(module.weight.detach()[0]), np.float32)
    b = np.full(c, float(module.bias.detach()[0]), np.float32)
    return nir.Conv2d(input_shape=tuple(shape[1:]), weight=w, stride=1, padding=0, dilation=1, groups=c, bias=b)


def op_nodes(nir, op: ir.OpSpec, model) -> list[tuple[str, Any]]:
    """The NIR nodes (name, node) computing one operator; raises for what NIR lacks."""
    kind, get = op.kind, model.get_submodule
    if kind in ("conv", "depthwise", "pointwise"):
        return [(op.path, _conv(nir, get(op.path), op.in_shape))]
    if kind == "linear":
        flat = [] if len(op.in_shape) == 1 else [(f"{op.path}.flatten", _flatten(nir, op.in_shape))]
        m = get(op.path)
        w = m.weight.detach().cpu().numpy().astype(np.float32)
        node = nir.Linear(weight=w) if m.bias is None else nir.Affine(weight=w, bias=m.bias.detach().cpu().numpy())
        return flat + [(op.path, node)]
    if kind == "flatten":
        return [(op.path, _flatten(nir, op.in_shape))]
    if kind == "avgpool":
        return [(op.path, _pool(nir, op))]
    if kind == "scale":
        value = float(get(op.path).weight.detach()[0])
        return [(op.path, nir.Scale(scale=np.full(op.in_shape, value, np.float32)))]
    if kind in ("identity", "dropout", "resize", "adapt") and unsupported(op) is None:
        return [] if kind != "adapt" or op.in_shape[0] == op.out_shape[0] else \
            [(op.path, _conv(nir, get(f"{op.path}.conv"), op.in_shape))]
    if kind == "lateral" and unsupported(op) is None:
        return _lateral(nir, op, model)
    raise InteropError(f"{op.path}: cannot export {unsupported(op) or kind + ' to NIR'}")


def unsupported(op: ir.OpSpec) -> str | None:
    """Why NIR cannot express an operator ('maxpool: NIR has no max pooling'), or None if it can."""
    kind, a = op.kind, op.a
    resamples = kind in ("resize", "adapt") and op.in_shape[1:] != op.out_shape[1:]
    if kind == "maxpool":
        return "maxpool: NIR has no max pooling"
    if kind == "local" or (kind == "lateral" and a["kind"] in ("local", "localdepthwise")):
        return f"{kind}: NIR has no topographic sheet (a gather of positions)"
    if resamples:
        return f"{kind}: NIR has no resampling ({list(op.in_shape[1:])} to {list(op.out_shape[1:])})"
    if kind == "avgpool" and a.get("out") is not None and (op.in_shape[1] % a["out"] or op.in_shape[2] % a["out"]):
        return f"avgpool(out={a['out']}) of a {list(op.in_shape[1:])} map: NIR's AvgPool2d needs a fixed window"
    if kind not in ("conv", "depthwise", "pointwise", "linear", "flatten", "avgpool", "scale", "identity",
                    "dropout", "resize", "adapt", "lateral"):
        return f"{kind}: NIR has no such primitive"
    return None


def problems(spec: ir.Model, model=None) -> list[str]:
    """Everything in a checked model that NIR cannot express, one line each (empty: it can)."""
    out = []
    for area in spec.areas.values():
        if stage_of(area) is not None:
            continue
        try:
            leak_of(area, model)
        except InteropError as exc:
            out.append(str(exc))
    pipelines = [(c.label, c.ops) for c in spec.conns] + [("readout", spec.readout.ops)]
    for label, ops in pipelines:
        out += [f"{label}: {op.path}: {why}" for op in ops if (why := unsupported(op)) is not None]
    return out


def _lateral(nir, op, model):
    kind, get, shape = op.a["kind"], model.get_submodule, op.in_shape
    if kind == "self":
        return [(op.path, _self_conv(nir, get(op.path), shape))]
    if kind == "full":
        return [(f"{op.path}.conv", _conv(nir, get(f"{op.path}.conv"), shape))]
    if kind in ("depthpointwise", "pointdepthwise"):
        first, second = ("depthwise_conv", "pointwise_conv") if kind == "depthpointwise" else \
            ("pointwise_conv", "depthwise_conv")
        a = get(f"{op.path}.{first}")
        mid = (a.out_channels, *shape[1:])
        return [(f"{op.path}.{first}", _conv(nir, a, shape)),
                (f"{op.path}.{second}", _conv(nir, get(f"{op.path}.{second}"), mid))]
    raise InteropError(f"{op.path}: cannot export lateral({kind}) to NIR: NIR has no topographic sheet (a gather)")


def _flatten(nir, shape):
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)


def _pipeline(b: _Builder, nir, source: str, ops, delay_steps: int, label: str, shape) -> str:
    """Add a connection's operators (and its Delay, after them) from `source`; return the last node."""
    names = []
    for op in ops:
        for name, node in op_nodes(nir, op, b.model):
            names.append(b.add(name, node))
    if delay_steps:
        out_shape = ops[-1].out_shape if ops else shape
        seconds = delay_steps * b.model.dt * 1e-3
        names.append(b.add(f"{label}.delay", nir.Delay(delay=np.full(out_shape, seconds, np.float64))))
    return b.chain(source, names)


def _li(nir, area: ir.Area, leak: Leak) -> Any:
    full = lambda v: np.full(area.shape, v, np.float64)  # noqa: E731
    meta = {"dynvision_area": area.name, "state": area.output, "solver": area.solver,
            "silent_start": int(area.states.get(area.output) is None)}
    if leak.after:
        meta["after_step"] = "; ".join(leak.after)
    init = area.states.get(area.output)
    if init is not None:  # NIR's LI starts at 0; the initial value travels as metadata
        meta["initial"] = _number(init, None)
    return nir.LI(tau=full(leak.tau_ms * 1e-3), r=full(leak.gain), v_leak=full(leak.v_leak), metadata=meta)


def to_nir(model) -> Any:
    """The NIR graph of a compiled model: areas -> LI, operators -> Conv2d/Affine/..., delays -> Delay."""
    nir = _nir()
    spec = model.program.model
    model.require("NIR export")  # one Input node, one Output node
    bounded = next((p for a in spec.areas.values() for p in a.bounds), None)
    if bounded is not None:
        raise InteropError(f"{spec.name} cannot be written as NIR: the trainable {bounded} is bounded or per "
                           f"channel, and a NIR LI node holds one plain time constant")
    if any(c.source_var is not None for c in spec.conns):
        link = next(c for c in spec.conns if c.source_var is not None)
        raise InteropError(f"{spec.name} cannot be written as NIR: {link.label} reads a state, and a NIR "
                           f"edge carries an area's output only")
    found = problems(spec, model)
    if found:
        raise InteropError(f"{spec.name} cannot be written as NIR ({len(found)} problem{'s' * (len(found) > 1)}):\n  "
                           + "\n  ".join(found))
    b = _Builder(model)
    b.add(spec.input.name, nir.Input(input_type={"input": np.array(spec.input.shape)}))
    for area in spec.areas.values():
        stage = stage_of(area)
        if stage is not None:
            meta = {"dynvision_area": area.name, "stateless": 1, "state": area.output, "after_step": "; ".join(stage)}
            b.add(area.name, nir.Scale(scale=np.ones(area.shape, np.float32), metadata=meta))
        else:
            b.add(area.name, _li(nir, area, leak_of(area, model)))
    for conn in spec.conns:
        last = _pipeline(b, nir, conn.source, conn.ops, conn.delay_steps, f"{conn.source}_to_{conn.target}",
                         spec.areas[conn.source].shape if conn.source in spec.areas else spec.input.shape)
        b.edges.append((last, conn.target))
    ro = spec.readout
    last = _pipeline(b, nir, ro.source, ro.ops, ro.delay_steps, "readout", spec.areas[ro.source].shape)
    if len(ro.ops[-1].out_shape if ro.ops else spec.areas[ro.source].shape) != 1:  # a [C, 1, 1] map is flattened
        last = b.chain(last, [b.add("readout.flatten", _flatten(nir, ro.ops[-1].out_shape))])
    b.add("output", nir.Output(output_type={"output": np.array((ro.classes,))}))
    b.edges.append((last, "output"))
    meta = {"source": SOURCE, "model": spec.name, "dt": spec.dt * 1e-3, "steps": spec.steps, "idle": spec.idle}
    norm = getattr(model, "input_transform", None)
    if norm is not None:  # no NIR node normalises per channel: what the input must already be
        meta["input_normalization"] = norm.to_dict()
    # NIR 1.0.8's type check reads a grouped Conv2d's input channels from weight.shape[1] (C_in / groups)
    grouped = any(getattr(n, "groups", 1) != 1 for n in b.nodes.values())
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta, type_check=not grouped)


def export(model, path: str | Path, overwrite: bool = False) -> Any:
    """Write `model` as a NIR file (HDF5) atomically; returns the graph."""
    from ..util.files import atomic_target

    graph = to_nir(model)
    with atomic_target(path, overwrite) as tmp:
        _nir().write(tmp, graph)
    return graph


# ================================================================== import
NEURONS = ("LI", "CubaLI", "I")
OPS = ("Conv2d", "Affine", "Linear", "Scale", "Flatten", "AvgPool2d", "SumPool2d", "Delay")
CHANNEL_MAPS = ("Conv2d", "Affine", "Linear")


@dataclass
class Imported:
    """A spec written from a NIR graph and the weights its modules take (state-dict keys)."""

    spec: str
    state_dict: dict
    notes: list[str] = field(default_factory=list)  # what the import decided (delays added to cycles)

    def compile(self, params: dict | None = None):
        """The compiled model with the graph's weights loaded (strict)."""
        from ..pipeline import compile as compile_spec

        model = compile_spec(self.spec, params, file="<nir import>")
        model.load_state_dict(self.state_dict, strict=True)
        return model


@dataclass
class _Conn:
    source: str
    target: str  # an area, or "" for the readout
    ops: list[str]  # NIR node names, Delays removed
    delay_s: float


class _Names:
    """NIR node names turned into unique `.dyn` identifiers and module paths."""

    def __init__(self):
        from ..frontend.check import GENERATED_ATTRIBUTES, MODULE_ATTRIBUTES
        from ..frontend.parse import KEYWORDS, RESERVED_UNITS

        self.reserved = set(KEYWORDS) | set(RESERVED_UNITS) | set(GENERATED_ATTRIBUTES) | set(MODULE_ATTRIBUTES)
        self.taken: dict[str, str] = {}

    def _segment(self, text: str, first: bool) -> str:
        seg = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in text) or "n"
        if seg.isdigit() and not first:
            return seg
        if seg[0].isdigit() or seg[0] == "_":
            seg = "n" + seg
        return seg + "_" if seg in self.reserved else seg

    def ident(self, name: str, dotted: bool = False) -> str:
        if name in self.taken:
            return self.taken[name]
        parts = name.split(".") if dotted else [name]
        text = ".".join(self._segment(p, i == 0) for i, p in enumerate(parts))
        base, n = text, 2
        while text in self.taken.values():
            text, n = f"{base}_{n}", n + 1
        self.taken[name] = text
        return text


def _kind(node) -> str:
    return type(node).__name__


def _uniform(values, what: str, name: str) -> float:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.allclose(arr, arr[0], rtol=1e-6, atol=0):
        raise InteropError(f"node '{name}': its {what} differs between elements ({arr.min():g} .. {arr.max():g}); "
                           "a .dyn area or operator takes one value")
    return float(arr[0])


def _validate(graph) -> None:
    """Only rate primitives: spiking ones and nested graphs get a clear error."""
    spiking = [f"'{n}' ({_kind(v)})" for n, v in graph.nodes.items() if _kind(v) in SPIKING]
    if spiking:
        raise InteropError(f"the NIR graph has spiking nodes: {', '.join(spiking)}; dynv import takes rate "
                           "primitives only (LI, CubaLI, I, Conv2d, Affine, Linear, Scale, Flatten, AvgPool2d, "
                           "SumPool2d, Delay); replace each spiking neuron by its LI counterpart")
    known = set(NEURONS) | set(OPS) | {"Input", "Output"}
    other = [f"'{n}' ({_kind(v)})" for n, v in graph.nodes.items() if _kind(v) not in known]
    if other:
        raise InteropError(f"the NIR graph has nodes dynv import cannot translate: {', '.join(other)}")
    for kind in ("Input", "Output"):
        found = [n for n, v in graph.nodes.items() if _kind(v) == kind]
        if len(found) != 1:
            raise InteropError(f"the NIR graph has {len(found)} {kind} nodes ({', '.join(found) or 'none'}); "
                               f"a .dyn model has exactly one {kind.lower()}")


def _is_stage(node) -> bool:
    """A stateless area written by our export (Scale(1) with the area's assignments in metadata)."""
    return _kind(node) == "Scale" and bool((node.metadata or {}).get("stateless"))


def _is_area(node) -> bool:
    return _kind(node) in NEURONS or _is_stage(node)


def _adjacency(graph) -> tuple[dict, dict]:
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    pred: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise InteropError(f"the NIR edge {a} -> {b} names a node the graph does not have")
        succ[a].append(b)
        pred[b].append(a)
    return succ, pred


def _paths(graph, junctions: set[str]) -> list[tuple[str, list[str], str]]:
    """Every (source, op nodes, target) from the input, an area or a junction (an operator that
    sums several inputs: a relay area `NODE_in` does the sum) to an area, a junction or the Output."""
    succ, _ = _adjacency(graph)
    out = []

    def walk(source, node, ops):
        for nxt in succ[node]:
            v = graph.nodes[nxt]
            if nxt in junctions or _is_area(v) or _kind(v) == "Output":
                out.append((source, ops, f"{nxt}#in" if nxt in junctions else nxt))
            elif _kind(v) == "Input":
                raise InteropError(f"the NIR edge {node} -> {nxt} feeds the Input")
            elif nxt in ops:
                raise InteropError(f"operator node '{nxt}' is on a cycle without a neuron")
            else:
                walk(source, nxt, ops + [nxt])

    for n, v in graph.nodes.items():
        if n in junctions and _kind(v) != "Output":
            walk(f"{n}#in", n, [n])
        elif _is_area(v) or _kind(v) == "Input":
            walk(n, n, [])
    return out


def _junctions(graph) -> set[str]:
    _, pred = _adjacency(graph)
    return {n for n, v in graph.nodes.items()
            if (_kind(v) in OPS and not _is_stage(v) or _kind(v) == "Output") and len(pred[n]) > 1}


def _shape(graph, name: str, key: str = "output") -> tuple[int, ...]:
    node = graph.nodes[name]
    types = node.output_type if key == "output" else node.input_type
    shape = None if types is None else types.get(key)
    if shape is None:
        raise InteropError(f"node '{name}' has no {key} shape; build the graph with input shapes (infer_types)")
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


def _area_shape(shape: tuple[int, ...], name: str) -> tuple[int, int, int]:
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 3:
        return shape
    raise InteropError(f"node '{name}' has shape {list(shape)}; .dyn areas are [C, H, W] maps or [N] vectors")


def _split(graph, source: str, ops: list[str], target: str, relays: list[str]) -> list[_Conn]:
    """Cut a path after each channel-mapping operator that another follows (a relay area takes
    its output), since a `.dyn` pipeline maps channels once, to its target's."""
    conns, start, seg, delay = [], source, [], 0.0
    maps = [i for i, n in enumerate(ops) if _kind(graph.nodes[n]) in CHANNEL_MAPS]
    last_map = maps[-1] if maps else None
    readout_conv = target == "" and last_map is not None and _kind(graph.nodes[ops[last_map]]) == "Conv2d"
    for i, name in enumerate(ops):
        node = graph.nodes[name]
        if _kind(node) == "Delay":
            delay += _uniform(node.delay, "delay", name)
            continue
        seg.append(name)
        if i in maps and (i != last_map or readout_conv):
            if name not in relays:
                relays.append(name)
            conns.append(_Conn(start, f"{name}#out", seg, delay))
            start, seg, delay = f"{name}#out", [], 0.0
    conns.append(_Conn(start, target, seg, delay))
    return conns


def _dedupe(conns: list[_Conn]) -> list[_Conn]:
    seen, out = set(), []
    for c in conns:
        key = (c.source, c.target, tuple(c.ops), c.delay_s)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _shown(key: str) -> str:
    """A connection end as the spec names it (`NODE#in` is the relay `NODE_in`)."""
    return key.replace("#", "_") or "the Output"


def _key_shape(graph, key: str) -> tuple[int, ...]:
    """The shape at a connection end: a node's output, a junction's input (`#in`), a split relay (`#out`)."""
    name, _, part = key.partition("#")
    return _shape(graph, name, "input" if part == "in" else "output")


def _delay_steps(c: _Conn, dt_s: float) -> int:
    steps = c.delay_s / dt_s
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise InteropError(f"the delay {c.delay_s * 1e3:g} ms from {_shown(c.source)} to {_shown(c.target)} is not a "
                           f"whole number of steps of dt = {dt_s * 1e3:g} ms; choose a dt that divides it")
    return int(round(steps))


def _break_cycles(conns: list[_Conn], start: str, dt_s: float, notes: list[str]) -> None:
    """Give one step of delay to each connection that closes a cycle without delay (depth-first from
    the input), as discrete-time NIR simulators read a recurrent neuron's previous value."""
    out: dict[str, list[_Conn]] = {}
    for c in conns:
        out.setdefault(c.source, []).append(c)
    state: dict[str, int] = {}

    def visit(n):
        state[n] = 1
        for c in out.get(n, []):
            if state.get(c.target) == 1 and _delay_steps(c, dt_s) == 0:
                c.delay_s = dt_s
                notes.append(f"the cycle closed by {_shown(c.source)} -> {_shown(c.target)} has no Delay: it reads "
                             f"{_shown(c.source)} one step (dt) earlier")
            elif c.target and c.target not in state:
                visit(c.target)
        state[n] = 2

    visit(start)
    for n in list(out):
        if n not in state:
            visit(n)


def _num(x: float) -> str:
    return f"{x:.12g}"


def _pair(value, what: str, name: str) -> int:
    vals = [int(v) for v in np.asarray(value).reshape(-1)]
    if len(set(vals)) != 1:
        raise InteropError(f"node '{name}': its {what} {vals} differs between height and width; "
                           ".dyn operators are square")
    return vals[0]


def _conv_text(node, name: str, path: str, weights: dict) -> str:
    w = np.asarray(node.weight)
    k = _pair(w.shape[2:], "kernel", name)
    dilation = _pair(node.dilation, "dilation", name)
    if isinstance(node.padding, str):
        padding = 0 if node.padding == "valid" else dilation * (k - 1) // 2
        if node.padding == "same" and (dilation * (k - 1)) % 2:
            raise InteropError(f"node '{name}': padding 'same' with an even kernel pads unevenly")
    else:
        padding = _pair(node.padding, "padding", name)
    bias = np.asarray(node.bias, dtype=np.float32).reshape(-1)
    args = [str(k)]
    stride = _pair(node.stride, "stride", name)
    args += [f"stride={stride}"] if stride != 1 else []
    args += [f"padding={padding}"] if padding != dilation * (k - 1) // 2 else []
    args += [f"groups={node.groups}"] if node.groups != 1 else []
    args += [f"dilation={dilation}"] if dilation != 1 else []
    weights[f"{path}.weight"] = w.astype(np.float32)
    if not bias.any():
        args.append("bias=false")
    else:
        weights[f"{path}.bias"] = bias
    return f"conv({', '.join(args)}) as {path}"


def _pool_text(node, name: str, path: str, weights: dict) -> str:
    k = _pair(node.kernel_size, "kernel", name)
    stride = _pair(node.stride, "stride", name)
    padding = _pair(node.padding, "padding", name)
    text = f"avgpool({k}" + (f", stride={stride}" if stride != k else "") + \
        (f", padding={padding}" if padding else "") + ")"
    if _kind(node) == "SumPool2d":  # a sum is k^2 times the (zero-padded) mean
        weights[f"{path}.weight"] = np.array([float(k * k)], np.float32)
        text += f" | scale({k * k}, fixed) as {path}"
    return text


def op_text(node, name: str, path: str, weights: dict) -> str:
    """One NIR operator as `.dyn` pipeline text; fills `weights` with its state-dict entries."""
    kind = _kind(node)
    if kind == "Conv2d":
        return _conv_text(node, name, path, weights)
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float32)
        if w.ndim != 2:
            raise InteropError(f"node '{name}': a {kind} weight of {w.ndim} dimensions; linear takes a matrix")
        weights[f"{path}.weight"] = w
        bias = np.asarray(getattr(node, "bias", np.zeros(1)), dtype=np.float32).reshape(-1)
        if kind == "Linear" or not bias.any():
            return f"linear({w.shape[0]}, bias=false) as {path}"
        weights[f"{path}.bias"] = bias
        return f"linear({w.shape[0]}) as {path}"
    if kind == "Scale":
        s = _uniform(node.scale, "scale", name)
        weights[f"{path}.weight"] = np.array([s], np.float32)
        return f"scale({_num(s)}, fixed) as {path}"
    if kind == "Flatten":
        return "flatten"
    return _pool_text(node, name, path, weights)


@dataclass
class _Dyn:
    """A dynamics template the import writes, and the arguments each area passes it."""

    name: str
    text: str
    args: tuple[str, ...]


def _neuron(node, name: str) -> tuple[str, dict[str, str]]:
    """(kind, template argument values as `.dyn` text) of a neuron node."""
    kind = _kind(node)
    u = lambda field, what=None: _uniform(getattr(node, field), what or field, name)  # noqa: E731
    if kind == "LI":
        return kind, {"tau": f"{_num(u('tau') * 1e3)} ms", "gain": _num(u("r", "r")),
                      "v_leak": _num(u("v_leak"))}
    if kind == "CubaLI":
        return kind, {"tau_syn": f"{_num(u('tau_syn') * 1e3)} ms", "tau_mem": f"{_num(u('tau_mem') * 1e3)} ms",
                      "gain": _num(u("r", "r")), "v_leak": _num(u("v_leak")), "w_in": _num(u("w_in"))}
    return kind, {"gain": _num(u("r", "r"))}


def _template(kind: str, var: str, after: str, initial: str | None, simple: bool) -> tuple[tuple[str, ...], list[str]]:
    """Argument names and body lines of the dynamics for one neuron kind."""
    rest = [] if initial is None else [f"state {var} = {initial}"]
    if kind == "LI" and simple:
        args, body = ("tau",), [f"tau * d{var}/dt = -{var} + input"]
    elif kind == "LI":
        args, body = ("tau", "gain", "v_leak"), [f"tau * d{var}/dt = v_leak - {var} + gain * input"]
    elif kind == "CubaLI":
        args = ("tau_syn", "tau_mem", "gain", "v_leak", "w_in")
        body = ["tau_syn * di/dt = -i + w_in * input", f"tau_mem * d{var}/dt = v_leak - {var} + gain * i"]
    else:
        args, body = ("gain",), [f"1 s * d{var}/dt = gain * input   # NIR's I: dv/dt = R I (R per second)"]
    body += [s.strip() for s in after.split(";") if s.strip()]
    if var != "r":
        body.append(f"output {var}")
    return args, rest + body


@dataclass
class _Writer:
    """The spec's lines under construction: templates, areas, connections and the readout."""

    graph: Any
    names: _Names
    dt_s: float
    weights: dict = field(default_factory=dict)
    templates: dict = field(default_factory=dict)  # key -> _Dyn

    def dynamics(self, key: tuple, simple: bool) -> _Dyn:
        if key not in self.templates:
            kind, var, after, initial, solver = key
            base = {"LI": "li", "CubaLI": "cuba_li", "I": "integrator"}[kind] + ("_relu" if "relu" in after else "")
            taken = {d.name for d in self.templates.values()}
            name, n = base, 2
            while name in taken:
                name, n = f"{base}_{n}", n + 1
            args, body = _template(kind, var, after, initial, simple)
            body += [f"solver {solver}"] if solver != "euler" else []
            text = f"dynamics {name}({', '.join(args)}) {{\n" + "".join(f"  {b}\n" for b in body) + "}\n"
            self.templates[key] = _Dyn(name, text, args)
        return self.templates[key]

    def area(self, name: str, simple: bool) -> str:
        node = self.graph.nodes[name]
        shape = _area_shape(_shape(self.graph, name), name)
        meta = node.metadata or {}
        kind, values = _neuron(node, name)
        initial = None if int(meta.get("silent_start", 1)) else _num(float(meta.get("initial", 0.0)))
        key = (kind, str(meta.get("state", "v")), str(meta.get("after_step", "")), initial,
               str(meta.get("solver", "euler")))
        dyn = self.dynamics(key, simple and kind == "LI")
        args = ", ".join(f"{a}={values[a]}" for a in dyn.args)
        return f"area {self.names.ident(name)} [{', '.join(map(str, shape))}] : {dyn.name}({args})"

    def relay(self, key: str) -> str:
        """A relay area: the output of a split pipeline (`#out`) or the sum into a junction (`#in`)."""
        shape = _area_shape(_key_shape(self.graph, key), _shown(key))
        self.templates.setdefault(("relay",), _Dyn("relay", "dynamics relay() {   # passes its input on\n"
                                                            "  r = input\n}\n", ()))
        return f"area {self.names.ident(key)} [{', '.join(map(str, shape))}] : relay()"

    def stage(self, name: str) -> str:
        """A stateless area of our export: its assignments come back from the metadata."""
        meta = self.graph.nodes[name].metadata
        body = [a.strip() for a in str(meta.get("after_step", "r = input")).split(";") if a.strip()]
        var = str(meta.get("state", "r"))
        body += [] if var == "r" else [f"output {var}"]
        key = ("stage", tuple(body))
        if key not in self.templates:
            n = sum(1 for k in self.templates if k[0] == "stage")
            dname = "stage" + (f"_{n + 1}" if n else "")
            self.templates[key] = _Dyn(dname, f"dynamics {dname}() {{\n" + "".join(f"  {b}\n" for b in body)
                                       + "}\n", ())
        shape = _area_shape(_shape(self.graph, name), name)
        return f"area {self.names.ident(name)} [{', '.join(map(str, shape))}] : {self.templates[key].name}()"

    def pipeline(self, ops: list[str]) -> str:
        return " | ".join(op_text(self.graph.nodes[n], n, self.names.ident(n, dotted=True), self.weights)
                          for n in ops) or "identity"

    def endpoint(self, key: str) -> str:
        return self.names.ident(key)

    def delay(self, c: _Conn) -> str:
        steps = _delay_steps(c, self.dt_s)
        return f", delay {_num(steps * self.dt_s * 1e3)} ms" if steps else ""


def _readout_pipeline(w: _Writer, c: _Conn) -> str:
    shape = _key_shape(w.graph, c.ops[-1] if c.ops else c.source)
    text = w.pipeline(c.ops) if c.ops else ""
    if len(shape) > 1 and not (len(shape) == 3 and shape[1:] == (1, 1)):
        text = f"{text} | flatten" if text else "flatten"
    return text or "flatten"


def from_nir(graph, dt_ms: float | None = None, steps: int | None = None, name: str | None = None) -> Imported:
    """A readable spec (and its weights) from a NIR graph of rate primitives; cycles without a
    Delay read their source one step earlier. `dt_ms` and `steps` default to the graph's metadata."""
    _validate(graph)
    meta = graph.metadata or {}
    if dt_ms is None:
        if "dt" not in meta:
            raise InteropError("the NIR graph states no dt; pass one (dynv import FILE --dt 1ms)")
        dt_ms = float(meta["dt"]) * 1e3
    steps = int(steps if steps is not None else meta.get("steps", 10))
    notes: list[str] = []
    relays: list[str] = []
    junctions = _junctions(graph)
    (input_name,) = [n for n, v in graph.nodes.items() if _kind(v) == "Input"]
    (output_name,) = [n for n, v in graph.nodes.items() if _kind(v) == "Output"]
    conns = [_Conn(f"{output_name}#in", "", [], 0.0)] if output_name in junctions else []
    for source, ops, target in _paths(graph, junctions):
        conns += _split(graph, source, ops, "" if target == output_name else target, relays)
    conns = sorted(_dedupe(conns), key=lambda c: c.source != input_name)  # sizes come from the input
    _break_cycles(conns, input_name, dt_ms * 1e-3, notes)
    ends = [f"{n}#out" for n in relays] + sorted(f"{n}#in" for n in junctions)
    text, weights = _write(graph, conns, ends, input_name, dt_ms, steps, name, notes)
    return Imported(text, weights, notes)


def _write(graph, conns, relays: list[str], input_name, dt_ms, steps, name, notes) -> tuple[str, dict]:
    import torch

    names = _Names()
    w = _Writer(graph, names, dt_ms * 1e-3)
    meta = graph.metadata or {}
    neurons = [n for n, v in graph.nodes.items() if _kind(v) in NEURONS]
    simple = all(_kind(graph.nodes[n]) == "LI" and np.allclose(graph.nodes[n].r, 1) and
                 np.allclose(graph.nodes[n].v_leak, 0) for n in neurons)
    in_shape = _area_shape(_shape(graph, input_name), input_name)
    readouts = [c for c in conns if c.target == ""]
    if not readouts:
        raise InteropError("nothing reaches the Output node")
    model = names._segment(str(name or meta.get("model") or "Imported"), True)
    lines = [f"# Written by dynv import from a NIR graph ({len(graph.nodes)} nodes, {len(graph.edges)} edges).",
             *(f"# note: {n}" for n in notes), f"model {model}", "",
             f"time {{ dt = {_num(dt_ms)} ms  steps = {steps}" +
             (f"  idle = {int(meta['idle'])}" if int(meta.get("idle", 0) or 0) else "") + " }",
             f"input {names.ident(input_name)} [{', '.join(map(str, in_shape))}]", "", ""]
    stages = [n for n, v in graph.nodes.items() if _is_stage(v)]
    areas = [w.area(n, simple) for n in neurons] + [w.stage(n) for n in stages] + [w.relay(k) for k in relays]
    body = []
    for c in conns:
        if c.target:
            body.append(f"{w.endpoint(c.source)} -> {w.endpoint(c.target)} : "
                        f"{w.pipeline(c.ops)}{w.delay(c)}")
    ro = readouts[0]
    body.append(f"readout {w.endpoint(ro.source)} : {_readout_pipeline(w, ro)}{w.delay(ro)}")
    text = "\n".join(lines) + "".join(d.text + "\n" for d in w.templates.values()) + \
        "\n".join(areas) + "\n\n" + "\n".join(body) + "\n"
    return text, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in w.weights.items()}


def load(path: str | Path, dt_ms: float | None = None, steps: int | None = None) -> Imported:
    """Read a NIR file and translate it (see `from_nir`)."""
    nir = _nir()
    path = Path(path)
    if not path.exists():
        raise InteropError(f"no such file: {path}")
    try:
        try:
            graph = nir.read(path)
        except ValueError:  # NIR's type check rejects grouped convolutions (see to_nir)
            graph = nir.read(path, type_check=False)
    except (OSError, KeyError, ValueError, AssertionError) as exc:
        raise InteropError(f"{path} is not a readable NIR file ({type(exc).__name__}: {exc})") from exc
    return from_nir(graph, dt_ms, steps, name=None)
