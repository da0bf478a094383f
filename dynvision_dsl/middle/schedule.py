"""Stage 4: when things happen. Silence analysis (LANGUAGE.md section 6)
resolved statically per step, the evaluation order within a step, the delay
buffers, and the grouping of steps into step variants that share one graph."""
from __future__ import annotations

from dataclasses import dataclass, field


from ..frontend import ir
from ..diagnostics import Diagnostic, Sink
from . import silence

StateKey = tuple[str, str]  # (area, variable)


@dataclass(frozen=True)
class Read:
    """A term that reads `source`'s output `delay` steps ago (delay >= 1) from a buffer."""

    source: str
    delay: int


@dataclass(frozen=True)
class StepKey:
    """What a step sees: which buffered reads and which previous states are present."""

    reads: tuple[bool, ...]
    states: tuple[bool, ...]


@dataclass
class Schedule:
    order: list[str]
    reads: list[Read]
    state_keys: list[StateKey]
    buffer_len: dict[str, int]
    present_from: dict[str, int | None]  # internal step (idle included) from which each area's output is present;
    # users see it through `recorded`
    term_present_from: dict[int, int | None]  # per connection index; -1 for the readout
    variants: list[StepKey]
    variant_of: list[int]  # per internal step up to the warm-up's end
    steady: int  # the variant of every later step
    idle: int
    steps: int
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def variant(self, t: int) -> int:
        return self.variant_of[t] if t < len(self.variant_of) else self.steady

    def steady_from(self) -> int:
        """The first step from which every step runs the steady variant (variant_of's last
        entries repeat it): where the tail variants may start."""
        t = len(self.variant_of)
        while t and self.variant_of[t - 1] == self.steady:
            t -= 1
        return t

    def present(self, area: str, t: int) -> bool:
        p = self.present_from[area]
        return p is not None and t >= p


def recorded(step: int | None, idle: int) -> int | None:
    """An internal step (idle steps first) as the user counts it: recorded steps from 0, idle
    steps negative, None for never. The one convention of `model.present_from`,
    `model.readout_from` and the graph's `present_from`."""
    return None if step is None else step - idle


def presence(expr: ir.EqExpr, env: dict[tuple[str, str], bool]) -> bool:
    """Silence rules (middle/silence.py): a sum is present if any term is; anything else needs all operands."""
    return ir.fold(expr, lambda e, args: _present(e, args, env))


def _present(e: ir.EqExpr, args: list[bool], env: dict[tuple[str, str], bool]) -> bool:
    if isinstance(e, (ir.Const, ir.ParamRef)):
        return True
    if isinstance(e, ir.Ref):
        return e.kind == "time" or env[(e.kind, e.name)]  # the time is present at every step
    return silence.present(e.fn, args)


def variables_presence(area: ir.Area, env: dict) -> None:
    """Presence of the variables above the ODEs (§9.2), in order, from `env`'s states and ports."""
    for a in area.before_odes:
        env[("var", a.var)] = presence(a.value, env)


def integrate_presence(area: ir.Area, env: dict) -> dict[str, bool]:
    """Presence of each state after the solver step (before assignments); `env` gains the
    variables above the ODEs as the step's first evaluation sees them."""
    prev = {v: env[("state", v)] for v in area.states}
    stages = 4 if area.solver == "rk4" else 1
    out = dict(prev)
    variables_presence(area, env)
    cur = dict(env)
    for _ in range(stages):
        variables_presence(area, cur)
        rates = {o.var: presence(o.rhs, cur) for o in area.odes}
        for v, p in rates.items():
            out[v] = silence.integrated_present(out[v], p)
            cur[("state", v)] = silence.integrated_present(prev[v], p)
    return out


def area_step_presence(area: ir.Area, ports: dict[str, bool], prev: dict[str, bool]) -> dict[str, bool]:
    """Presence of every state and variable of an area after one step."""
    env = {("port", p): ports.get(p, False) for p in area.ports}
    env.update({("state", v): prev[v] for v in area.states})
    new = integrate_presence(area, env)
    for v, p in new.items():
        env[("state", v)] = p
    for a in area.assigns:
        kind = "state" if a.var in area.states else "var"
        p = presence(a.value, env)
        env[(kind, a.var)] = silence.assigned_present(p, env[(kind, a.var)]) if kind == "state" else p
    return {name: p for (kind, name), p in env.items() if kind in ("state", "var")}


def evaluation_order(model: ir.Model) -> list[str]:
    """Topological over zero-delay connections; declaration order breaks ties."""
    return model.connection_graph().evaluation_order(list(model.areas))


def build_schedule(model: ir.Model) -> Schedule:
    order = evaluation_order(model)
    position = {name: i for i, name in enumerate(order)}
    links = [c for c in model.conns if c.source_var is not None]  # V1.a -> ...: a state or variable's own signal
    reads = sorted({Read(c.signal, c.delay_steps) for c in [*model.conns, *model.readouts] if c.delay_steps > 0},
                   key=lambda r: (position.get(r.source.split(".")[0], -1), r.source, r.delay))
    state_keys = [(a, v) for a in order for v in model.areas[a].states]
    buffer_len: dict[str, int] = {}
    for r in reads:
        buffer_len[r.source] = max(buffer_len.get(r.source, 0), r.delay)
    max_delay = max([r.delay for r in reads], default=0)

    # Presence only ever switches on (sums of present terms stay present, states keep it), so
    # each output and state has a first present step, and a step's key changes only when a state
    # switched on in the step before or a buffered read reaches its first present output.
    # Only those steps are analysed: their number is bounded by the reads and states, never by
    # the delays (a 1e9-step delay is one jump, not a loop).
    first: dict[str, int | None] = {a: None for a in order}  # first present step of each output
    first.update({i.name: 0 for i in model.inputs})
    for a in order:
        if model.areas[a].states.get(model.areas[a].output) is not None:
            first[a] = -1  # an initialised output state is present "at step -1"
    for c in links:
        first[c.signal] = -1 if model.areas[c.source].states.get(c.source_var) is not None else None
    state_now = {(a, v): model.areas[a].states[v] is not None for a, v in state_keys}
    present_from: dict[str, int | None] = {a: None for a in order}
    term_from: dict[int, int | None] = {c.index: None for c in model.conns}
    term_from.update({r.index: None for r in model.readouts})

    def out_at(src: str, when: int) -> bool:
        return first[src] is not None and when >= first[src]

    changes: list[tuple[int, StepKey]] = []  # (first step, key) of each run of equal keys
    t = 0
    while True:
        key = StepKey(tuple(out_at(r.source, t - r.delay) for r in reads), tuple(state_now[k] for k in state_keys))
        changes.append((t, key))
        before = dict(state_now)
        for name in order:
            area = model.areas[name]
            ports: dict[str, bool] = {}
            for c in model.conns_into(name):
                p = out_at(c.signal, t - c.delay_steps)
                ports[c.port] = silence.port_present((ports.get(c.port, False), p))
                if p and term_from[c.index] is None:
                    term_from[c.index] = t
            values = area_step_presence(area, ports, {v: state_now[(name, v)] for v in area.states})
            for v in area.states:
                state_now[(name, v)] = values[v]
            if values.get(area.output, False) and present_from[name] is None:
                present_from[name] = t
                first[name] = t if first[name] is None else first[name]
            for c in links:
                if c.source == name and values.get(c.source_var, False) and first[c.signal] is None:
                    first[c.signal] = t
        for r in model.readouts:
            if term_from[r.index] is None and out_at(r.source, t - r.delay_steps):
                term_from[r.index] = t
        t = _next_change(t, state_now != before, reads, first)
        if t is None:
            break
    steady_from = changes[-1][0]
    number: dict[StepKey, int] = {}  # each distinct key's variant, numbered in order of appearance
    for _, k in changes:
        number.setdefault(k, len(number))
    variants = list(number)
    # one entry per step up to max_delay + 1 steps past the last change (as long as any read reaches back)
    variant_of: list[int] = []
    for (start, k), (stop, _) in zip(changes, changes[1:] + [(steady_from + max_delay + 2, None)]):
        variant_of.extend([number[k]] * (stop - start))
    sched = Schedule(order, reads, state_keys, buffer_len, present_from, term_from, variants, variant_of,
                     variant_of[-1], model.idle, model.steps)
    sched.diagnostics = _warnings(model, sched)
    return sched


def _next_change(t: int, states_changed: bool, reads: list[Read], first: dict[str, int | None]) -> int | None:
    """The next step whose key may differ from step t's, or None once it never will."""
    if states_changed:
        return t + 1
    flips = [first[r.source] + r.delay for r in reads if first[r.source] is not None]
    later = [f for f in flips if f > t]
    return min(later) if later else None


def _warnings(model: ir.Model, s: Schedule) -> list[Diagnostic]:
    sink = Sink()
    end = model.idle + model.steps
    for name, p in s.present_from.items():
        if p is None or p >= end:
            area = model.areas[name]
            sink.warning(f"area {name} is silent for the whole run", area.name_span or area.span,
                         "check that a connection path reaches it within the run's steps", code="W002")
    for readout in model.readouts:
        r = s.term_present_from[readout.index]
        if r is None or r >= end:
            which = f"readout '{readout.name}'" if len(model.readouts) > 1 else "readout"
            sink.warning(f"the {which} is silent for the whole run ({model.steps} steps): its logits are all zero",
                         readout.span, "run more steps or shorten the delays on the way to the readout", code="W003")
    return sink.items
