"""The one networkx graph of a model's connections: nodes are the input and the areas (in
declaration order), edges the connections (key: the connection's index, attribute `conn`).
Built once from the checked connections; check's cycle and reachability rules, the schedule's
evaluation order and the drawn graph all read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

import networkx as nx


class ConnLike(Protocol):
    index: int
    source: str
    target: str
    delay_steps: int


@dataclass(frozen=True)
class ConnGraph:
    """A MultiDiGraph of connections with the questions the stages ask of it."""

    g: nx.MultiDiGraph

    @classmethod
    def build(cls, nodes: Iterable[str], conns: Iterable[ConnLike]) -> "ConnGraph":
        g = nx.MultiDiGraph()
        g.add_nodes_from(nodes)
        for c in conns:
            g.add_edge(c.source, c.target, key=c.index, conn=c)
        return cls(g)

    def downstream(self, starts: Iterable[str]) -> set[str]:
        """`starts` and every node a connection path leads to from them."""
        out = set(starts)
        for name in list(out):
            if name in self.g:
                out |= nx.descendants(self.g, name)
        return out

    def zero_delay(self) -> nx.MultiDiGraph:
        """A view of the connections without delay (they must not form a cycle)."""
        return nx.subgraph_view(self.g, filter_edge=lambda u, v, k: self.g.edges[u, v, k]["conn"].delay_steps == 0)

    def zero_delay_cycles(self) -> list[list[ConnLike]]:
        """Each cycle of delay-free connections, as its connections (the earliest of parallel ones)."""
        view = self.zero_delay()
        out = []
        for cycle in sorted(nx.simple_cycles(view), key=lambda cyc: sorted(cyc)):
            out.append([min((d["conn"] for d in view.get_edge_data(a, b).values()), key=lambda c: c.index)
                        for a, b in zip(cycle, cycle[1:] + cycle[:1])])
        return out

    def evaluation_order(self, names: list[str]) -> list[str]:
        """`names` in topological order over the delay-free connections among them; declaration
        order breaks ties."""
        dag = nx.DiGraph()
        dag.add_nodes_from(names)
        dag.add_edges_from((u, v) for u, v in self.zero_delay().edges() if u in dag and v in dag)
        pos = {n: i for i, n in enumerate(names)}
        return list(nx.lexicographical_topological_sort(dag, key=lambda n: pos[n]))
