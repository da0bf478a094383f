"""Stage 3: the model as a networkx graph. Nodes are the input, the areas and
the readout; edges are connections with their delays, pipelines and kinds."""
from __future__ import annotations

import networkx as nx

from .frontend import ir
from .diagnostics import source_lines
from .frontend.values import fmt_quantity

READOUT = "readout"


def readout_node(model: ir.Model, r: ir.ReadoutSpec) -> str:
    """A readout's node: `readout`, or `readout:NAME` when the spec has several."""
    return READOUT if len(model.readouts) == 1 else f"{READOUT}:{r.name}"


def pipeline_text(ops) -> str:
    """`maxpool(k=3, stride=2, padding=1) | conv(k=3)`: unset arguments and zero padding left out."""
    parts = []
    for o in ops:
        args = ", ".join(f"{k}={v}" for k, v in o.args if v is not None and not (k == "padding" and v == 0))
        parts.append(f"{o.kind}({args})" if args else o.kind)
    return " | ".join(parts)


def build_graph(model: ir.Model) -> nx.MultiDiGraph:
    """Nodes carry shape, dynamics and spans; edges carry delay, pipeline, port and kind."""
    g = model.connection_graph().g.copy()  # the one connection graph, with what drawings show added
    g.graph.update(name=model.name, dt=model.dt, steps=model.steps, idle=model.idle)
    for inp in model.inputs:
        g.add_node(inp.name, role="input", shape=inp.shape, span=inp.span, rank=0)
    for a in model.areas.values():
        g.add_node(a.name, role="area", shape=a.shape, solver=a.solver, template=a.template,
                   states={k: (v.value if isinstance(v, ir.Const) else None) for k, v in a.states.items()},
                   equations=_equations(model, a), tau=_tau(a), span=a.span)
    for c in model.conns:
        g.edges[c.source, c.target, c.index].update(
            index=c.index, port=c.port, delay_ms=c.delay_ms, delay_steps=c.delay_steps, pipeline=pipeline_text(c.ops),
            ops=c.ops, span=c.span, label=c.label, kind="", source_var=c.source_var)
    for r in model.readouts:
        node = readout_node(model, r)
        g.add_node(node, role="readout", shape=(r.classes,), span=r.span, name=r.name)
        g.add_edge(r.source, node, key=r.index, index=r.index, port="input", delay_ms=r.delay_ms,
                   delay_steps=r.delay_steps, pipeline=pipeline_text(r.ops), ops=r.ops, span=r.span,
                   label=f"{r.source} -> {node}", kind="readout")
    _classify(g, model.inputs[0].name)
    return g


def _equations(model: ir.Model, a: ir.Area) -> list[str]:
    lines = source_lines(model.source)
    spans = [s.span for s in a.before_odes] + [o.span for o in a.odes] + [s.span for s in a.assigns]
    return [lines[s.line - 1].strip() for s in spans if 0 < s.line <= len(lines)]


def _tau(a: ir.Area) -> str | None:
    for o in a.odes:
        if isinstance(o.coef, ir.Const):
            return fmt_quantity(o.coef.value, 1)
        if isinstance(o.coef, ir.ParamRef):
            return f"{fmt_quantity(a.trainables[o.coef.path], 1)} (trainable)"
    return None


def _classify(g: nx.MultiDiGraph, source: str) -> None:
    """Kinds by hierarchy: edges that close a cycle in a depth-first walk from the
    input (in declaration order) are feedback; the rest form a DAG whose longest
    paths rank the areas; +1 rank is feedforward, more is skip, equal is lateral."""
    back = _back_edges(g, source)
    dag = nx.DiGraph()
    dag.add_nodes_from(g.nodes)
    dag.add_edges_from((u, v) for u, v, k, d in g.edges(keys=True, data=True)
                       if k not in back and u != v and d["kind"] != "readout")
    rank = {n: 0 for n in dag}
    for n in nx.topological_sort(dag):
        for m in dag.successors(n):
            rank[m] = max(rank[m], rank[n] + 1)
    for n in g.nodes:
        g.nodes[n]["rank"] = rank.get(n, 0)
    top = max(rank.values(), default=0)
    for u, v, k, d in g.edges(keys=True, data=True):
        if d["kind"] == "readout":
            g.nodes[v]["rank"] = top + 1
            continue
        if u == v:
            d["kind"] = "lateral"
        elif k in back or rank[v] < rank[u]:
            d["kind"] = "feedback"
        elif rank[v] == rank[u]:
            d["kind"] = "lateral"
        else:
            d["kind"] = "feedforward" if rank[v] - rank[u] == 1 else "skip"


def _back_edges(g: nx.MultiDiGraph, source: str) -> set[int]:
    """Keys of the edges that close a cycle in a depth-first walk from `source`, then from
    every node not yet reached (declaration order); a loop with an explicit stack, so a
    chain of thousands of areas does not hit the recursion limit."""
    back: set[int] = set()
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done

    def out_edges(n: str):
        return iter(sorted(g.out_edges(n, keys=True, data=True), key=lambda e: e[3]["index"] % 10**9))

    for root in [source, *g.nodes]:
        if root in state:
            continue
        state[root] = 1
        path = [(root, out_edges(root))]
        while path:
            n, edges = path[-1]
            for _, m, k, d in edges:
                if d["kind"] == "readout" or m == n:
                    continue
                if state.get(m) == 1:
                    back.add(k)
                elif m not in state:
                    state[m] = 1
                    path.append((m, out_edges(m)))
                    break
            else:
                state[n] = 2
                path.pop()
    return back
