"""Repeated structure as one box: a ResNet or CordsNet stage (`l1_0a`, `l1_0`,
... or `layer2_in`, `layer2`) collapses into a group named by the shared
prefix before the first `_`; `--group V1,V2` makes a group of any areas."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ...diagnostics import did_you_mean
from ...graph import _classify
from . import labels as L


class GroupError(ValueError):
    """A --group or --expand that names no area or group; the message says which and the fix."""


@dataclass(frozen=True)
class Group:
    name: str
    members: tuple[str, ...]


def _areas(graph) -> list[str]:
    return [n for n in L.sorted_nodes(graph) if L.role(graph.nodes[n]) == "area"]


def auto_groups(graph: nx.MultiDiGraph) -> list[Group]:
    """Areas sharing the name prefix before the first `_`, two or more of them."""
    by_prefix: dict[str, list[str]] = {}
    for n in _areas(graph):
        by_prefix.setdefault(str(n).split("_", 1)[0], []).append(n)
    return [Group(p, tuple(ms)) for p, ms in by_prefix.items() if len(ms) > 1 and p]


def parse_group(text: str, graph: nx.MultiDiGraph) -> Group:
    """`V1,V2` (named `V1+V2`) or `early=V1,V2`."""
    name, eq, rest = text.partition("=")
    members = [m.strip() for m in (rest if eq else text).split(",") if m.strip()]
    if len(members) < 2:
        raise GroupError(f"--group {text!r}: name at least two areas, as in --group V1,V2 or --group early=V1,V2")
    areas = _areas(graph)
    for m in members:
        if m not in areas:
            guess = did_you_mean(m, areas)
            raise GroupError(f"--group {text!r}: no area '{m}'" + (f" (did you mean '{guess}'?)" if guess else
                                                                    f"; areas: {', '.join(areas)}"))
    return Group(name.strip() if eq else "+".join(members), tuple(members))


def aliases(graph: nx.MultiDiGraph, g: Group) -> set[str]:
    """Names that pick a group for --expand: its name, its areas, and the first part of
    the module names on connections into it (`layer1` for `layer1.0.conv1`)."""
    out = {g.name, *g.members}
    for u, v, _, d in graph.edges(keys=True, data=True):
        if v in g.members:
            out |= {op.path.split(".", 1)[0] for op in d.get("ops") or [] if "." in (getattr(op, "path", "") or "")}
    return out


def choose(graph: nx.MultiDiGraph, collapse: bool = False, expand=(), group=()) -> list[Group]:
    """The groups to draw as boxes: the explicit ones, then (with `collapse` or
    `expand`) the automatic ones not expanded and not overlapping."""
    chosen = [parse_group(t, graph) for t in group]
    taken = {m for g in chosen for m in g.members}
    if len(taken) < sum(len(g.members) for g in chosen):
        raise GroupError("an area is in two --group options; give each area to one group")
    if not (collapse or expand):
        return chosen
    autos = auto_groups(graph)
    names = {a: g for g in autos for a in aliases(graph, g)}
    names.update({a: g for g in autos for a in (g.name, *g.members)})  # exact names win over module prefixes
    for e in expand:
        if e not in names and e not in _areas(graph):  # an area outside every stage is drawn anyway
            known = [g.name for g in autos]
            guess = did_you_mean(e, known)
            raise GroupError(f"--expand {e}: no collapsible group of that name" +
                             (f" (did you mean '{guess}'?)" if guess else f"; groups: {', '.join(known) or 'none'}"))
    dropped = {names[e].name for e in expand if e in names}
    return chosen + [g for g in autos if g.name not in dropped and not taken & set(g.members)]


def collapse(graph: nx.MultiDiGraph, groups: list[Group]) -> nx.MultiDiGraph:
    """A copy of `graph` with each group as one node (role `group`): connections
    inside a group are listed in its tooltip, parallel ones between two boxes are
    merged, and kinds and ranks are recomputed."""
    if not groups:
        return graph
    owner = {m: g.name for g in groups for m in g.members}
    h = nx.MultiDiGraph(**graph.graph)
    for n in L.sorted_nodes(graph):
        if n not in owner:
            h.add_node(n, **graph.nodes[n])
    for g in groups:
        h.add_node(g.name, **_group_node(graph, g))
    buckets: dict[tuple, list] = {}
    for u, v, k, d in L.sorted_edges(graph):
        a, b = owner.get(u, u), owner.get(v, v)
        if a == b and a in owner.values() and u != v:
            h.nodes[a]["internal"].append(f"{u} → {v}: {' | '.join(L.canvas_pipeline(d.get('pipeline') or ''))}")
            continue
        buckets.setdefault((a, b), []).append((u, v, d))
    for (a, b), items in buckets.items():
        data = _merged(items)
        h.add_edge(a, b, key=data["index"], **data)
    inputs = [n for n in h.nodes if L.role(h.nodes[n]) == "input"]
    _classify(h, inputs[0] if inputs else next(iter(h.nodes)))
    return h


def _group_node(graph, g: Group) -> dict:
    members = sorted(g.members, key=lambda m: (L.rank(graph.nodes[m]), L.natural_key(m)))
    present = [graph.nodes[m].get("present_from") for m in members if graph.nodes[m].get("present_from") is not None]
    data = {"role": "group", "members": members, "shape": graph.nodes[members[-1]].get("shape"), "internal": [],
            "rank": L.rank(graph.nodes[members[0]])}
    if any("present_from" in graph.nodes[m] for m in members):
        data["present_from"] = min(present) if present else None
    return data


def _merged(items: list) -> dict:
    """One edge for the connections between two boxes (a copy when there is one)."""
    keep_kind = lambda d: "readout" if d.get("kind") == "readout" else ""  # noqa: E731
    if len(items) == 1:
        u, v, d = items[0]
        return {**d, "kind": keep_kind(d), "via": (u, v)}
    present = [d["present_from"] for *_, d in items if d.get("present_from") is not None]
    delays = {float(d.get("delay_ms") or 0) for *_, d in items}
    first = min((d for *_, d in items), key=lambda d: (d.get("present_from") is None, d.get("present_from") or 0,
                                                       d["index"]))
    data = {"index": min(d["index"] for *_, d in items), "kind": keep_kind(items[0][2]), "merged": len(items),
            "port": "input", "pipeline": "", "ops": [],
            "merged_label": _merged_label(items),
            "delay_ms": delays.pop() if len(delays) == 1 else 0.0,
            "delay_steps": int(first.get("delay_steps") or 0),  # of the first to arrive, for the timeline
            "members_text": [L.edge_tooltip(u, v, d).splitlines()[0] + ": " + (d.get("pipeline") or "identity")
                             for u, v, d in items]}
    if any("present_from" in d for *_, d in items):
        data["present_from"] = min(present) if present else None
    return data


def _merged_label(items: list) -> list[str]:
    """`conv 3 + identity` when short, else `3 connections`."""
    parts = []
    for *_, d in items:
        text = " | ".join(L.canvas_pipeline(d.get("pipeline") or "identity", width=200))
        if text not in parts:
            parts.append(text)
    joined = " + ".join(parts)
    return [joined] if len(joined) <= 26 else [f"{len(items)} connections"]
