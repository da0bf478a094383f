"""The checked model: params resolved, conditionals chosen, templates expanded,
shapes inferred. `check` produces it; `graph`, `schedule` and `lower` read it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

from ..diagnostics import Span
from ..ops import OpSpec


# ----------------------------------------------------- equation expressions
@dataclass(frozen=True)
class Const:
    value: float
    span: Span


@dataclass(frozen=True)
class Ref:
    """A state, variable or port of the area, by name."""

    kind: str  # "state" | "var" | "port" | "time" (`t`, the step's time in ms)
    name: str
    span: Span


@dataclass(frozen=True)
class ParamRef:
    """A trainable area parameter, stored as a module parameter at `path`."""

    path: str
    span: Span


@dataclass(frozen=True)
class Apply:
    """fn(args): arithmetic (add sub mul div pow neg), math functions and
    learnable functions (which own the module at `module`)."""

    fn: str
    args: tuple["EqExpr", ...]
    span: Span
    module: str | None = None
    options: tuple[tuple[str, object], ...] = ()


EqExpr = Union[Const, Ref, ParamRef, Apply]


def walk(expr: EqExpr):
    """`expr` and every sub-expression, depth first (a loop: a 5000-term sum is fine)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, Apply):
            stack.extend(reversed(e.args))


def fold(expr: EqExpr, combine: Callable[[EqExpr, list], Any]) -> Any:
    """`combine(node, results of its args)` for every node, children first and left
    to right, as a recursive walk would, but in a loop (no recursion limit)."""
    results: list = []
    stack: list[tuple[EqExpr, bool]] = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        if ready or not isinstance(e, Apply) or not e.args:
            n = len(e.args) if ready else 0
            args = results[len(results) - n:]
            del results[len(results) - n:]
            results.append(combine(e, args))
        else:
            stack.append((e, True))
            stack.extend((a, False) for a in reversed(e.args))
    return results[0]


@dataclass(frozen=True)
class OdeEq:
    var: str
    coef: EqExpr | None  # tau in `tau * dX/dt = rhs`
    rhs: EqExpr
    span: Span


@dataclass(frozen=True)
class AssignEq:
    var: str
    value: EqExpr
    span: Span


@dataclass
class Area:
    name: str
    channels: int
    size: tuple[int, int] | None
    span: Span
    states: dict[str, EqExpr | None] = field(default_factory=dict)  # init value or None: silent start
    odes: list[OdeEq] = field(default_factory=list)
    assigns: list[AssignEq] = field(default_factory=list)  # below the ODEs: run after the step
    # above the ODEs (LANGUAGE.md §9.2): algebraic variables the ODEs read, re-evaluated
    # wherever the right-hand sides are (each RK4 stage), from the stage's states and held ports
    before_odes: list[AssignEq] = field(default_factory=list)
    output: str = "r"
    solver: str = "euler"
    ports: list[str] = field(default_factory=list)  # ports its equations read
    optional_ports: tuple[str, ...] = ()  # `port NAME`: silent while unfed
    trainables: dict[str, float] = field(default_factory=dict)  # module path -> initial value
    bounds: dict[str, "TrainableBounds"] = field(default_factory=dict)  # module path -> bounds, per channel
    functions: dict[str, str] = field(default_factory=dict)  # module path -> constructor source
    template: str | None = None
    incomplete: bool = False  # a statement failed its checks; skip follow-up port checks
    name_span: Span | None = None  # the area's name where it is declared

    @property
    def shape(self) -> tuple[int, int, int]:
        assert self.size is not None
        return (self.channels, *self.size)


@dataclass(frozen=True)
class TrainableBounds:
    """`trainable(min = lo, max = hi, per = channel)`: bounds (ms for times; None: open) kept by
    a reparametrisation, and whether the area holds one value per channel."""

    lo: float | None = None
    hi: float | None = None
    per_channel: bool = False


def signal_name(area: str, var: str | None) -> str:
    """What a connection or a recording reads: `V1` (the area's output) or `V1.a` (a state or variable)."""
    return area if var is None else f"{area}.{var}"


@dataclass
class Conn:
    index: int
    source: str
    target: str
    port: str
    ops: list[OpSpec]
    delay_ms: float
    delay_steps: int
    span: Span
    label: str
    text: str = ""
    source_var: str | None = None  # `V1.a -> ...`: the state or variable read; None: the output
    port_span: Span | None = None  # the port's name in the connection (`fb` of `V2 -> V1.fb`)

    @property
    def signal(self) -> str:
        return signal_name(self.source, self.source_var)


@dataclass
class ReadoutSpec:
    source: str
    ops: list[OpSpec]
    delay_ms: float
    delay_steps: int
    classes: int
    span: Span
    text: str = ""
    name: str = ""  # the `as` name of its last operator, else its area (LANGUAGE.md 9.8)
    index: int = -1  # its key among connection terms: -1, -2, ... in declaration order

    @property
    def signal(self) -> str:
        return self.source


@dataclass
class InputSpec:
    name: str
    shape: tuple[int, int, int]
    span: Span


@dataclass
class Model:
    name: str
    file: str
    source: str
    dt: float  # ms
    steps: int
    idle: int
    inputs: list[InputSpec]  # in declaration order: `model(x, c)` takes them so
    areas: dict[str, Area]
    conns: list[Conn]
    readouts: list[ReadoutSpec]  # in declaration order; several make `forward` return a dict
    params: dict[str, object]  # final param values (numbers in ms for times)
    param_units: dict[str, str] = field(default_factory=dict)  # 'ms', '1/ms': the params that are not plain numbers
    _into: dict[str, list[Conn]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _into_key: tuple[int, int] = field(default=(0, -1), init=False, repr=False, compare=False)
    _graph: Any = field(default=None, init=False, repr=False, compare=False)
    _graph_key: tuple[int, int] = field(default=(0, -1), init=False, repr=False, compare=False)

    def connection_graph(self):
        """The one connection graph (middle/conngraph.py), built once per list of connections."""
        if self._graph_key != (id(self.conns), len(self.conns)):
            from ..middle.conngraph import ConnGraph

            self._graph = ConnGraph.build([*(i.name for i in self.inputs), *self.areas], self.conns)
            self._graph_key = (id(self.conns), len(self.conns))
        return self._graph

    def use_graph(self, graph) -> None:
        """Take `graph` (built from these connections) as the connection graph."""
        self._graph, self._graph_key = graph, (id(self.conns), len(self.conns))

    @property
    def input(self) -> InputSpec:
        """The first input (the only one in most specs)."""
        return self.inputs[0]

    @property
    def readout(self) -> ReadoutSpec:
        """The first readout (the only one in most specs)."""
        return self.readouts[0]

    def input_named(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)

    def conns_into(self, area: str) -> list[Conn]:
        """The connections into `area`, in declaration order: indexed once (again when `conns`
        is replaced or grows), not a scan of every connection per call."""
        if self._into_key != (id(self.conns), len(self.conns)):
            self._into = {}
            for c in self.conns:
                self._into.setdefault(c.target, []).append(c)
            self._into_key = (id(self.conns), len(self.conns))
        return list(self._into.get(area, ()))
