"""State links (LANGUAGE.md 9.3): `V1.a -> V2.inh` reads state or variable `a` of V1, buffered
and delayed like an output. This resolves the `.a` of a connection's source."""
from __future__ import annotations

from ...frontend import ir
from ...frontend import syntax as S
from ...diagnostics import Sink, did_you_mean


def readable(area: ir.Area) -> list[str]:
    """The names of an area that a connection or a recording may read: its states, then its variables."""
    return list(dict.fromkeys([*area.states, *(a.var for a in area.assigns)]))


def source_var(src: S.Endpoint, areas: dict[str, ir.Area], inputs, sink: Sink) -> str | None | bool:
    """The state or variable a connection reads (None: the area's output, as `V1` alone);
    False after reporting an error at the `.name`."""
    name, where = src.port.name, src.port.span
    if src.area.name not in areas:
        sink.error(f"the input '{src.area.name}' has no states to read ('{src.area.name}.{name}')", where,
                   f"write '{src.area.name}'", code="E152")
        return False
    area = areas[src.area.name]
    if name == area.output:
        return None
    if name in readable(area):
        return name
    if name in area.ports:
        sink.error(f"'{name}' is a port of {area.name}: a connection reads an area's output, a state or a "
                   f"variable, not a port", where, f"write '{area.name}' for its output", code="E152")
        return False
    guess = did_you_mean(name, readable(area))
    sink.error(f"{area.name} has no state or variable '{name}'" + (f" (did you mean '{guess}'?)" if guess else ""),
               where, "it has " + (", ".join(readable(area)) or "no states or variables"), code="E153")
    return False
