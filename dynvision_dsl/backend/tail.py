"""Tail variants: the last steps of a run without the work no later output needs.

A run returns its logits; the states and delayed outputs its last steps make are read by no
later step. So the last step needs only its readouts' cone, the one before it only that and
what the last step reads of it, and so on back until a step needs all the steady step
computes. Each tail step is the steady graph with its other outputs set to None and its dead
code removed. The runtime uses them only when nothing is recorded and the steps draw no random
numbers and update no batch statistics (templates/runtime.py.j2, `_simulate`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch.fx as fx

from .passes.dead_code import dead_code
from .runtime_ops import IMPURE


@dataclass(frozen=True)
class Wiring:
    """How a step's outputs reach later steps, by the steady step's placeholder names: a state
    is output `states[name]` of the step before, a delayed read is output `reads[name][0]` of
    the step `reads[name][1]` steps before; `logits` are the outputs every step must give."""

    logits: frozenset[int]
    states: dict[str, int]
    reads: dict[str, tuple[int, int]]


def tail_graphs(steady: fx.Graph, wiring: Wiring, limit: int) -> list[fx.Graph]:
    """The tail variants, last step first: entry d runs d steps before the end. Empty when the
    steady step draws random numbers (pruning a draw would change the others) or saves nothing."""
    if any(n.target in IMPURE for n in steady.nodes):
        return []
    tails: list[fx.Graph] = []
    reads: list[set[str]] = []  # the placeholders each tail reads
    while len(tails) < limit:
        graph = _pruned(steady, _needed(reads, wiring))
        if _work(graph) == _work(steady):
            break
        tails.append(graph)
        reads.append(_read(graph))
    return tails


def _needed(reads: list[set[str]], wiring: Wiring) -> set[int]:
    """The outputs the step before the tails that read `reads` (last step first) must give."""
    d = len(reads)
    keep = set(wiring.logits)
    if d:
        keep |= {wiring.states[p] for p in reads[d - 1] if p in wiring.states}
    for name, (index, delay) in wiring.reads.items():
        if delay <= d and name in reads[d - delay]:
            keep.add(index)
    return keep


def _pruned(steady: fx.Graph, keep: set[int]) -> fx.Graph:
    """A copy of `steady` that gives only the outputs in `keep` (the rest None), dead code removed."""
    graph = fx.Graph()
    outputs = graph.graph_copy(steady, {})
    graph.output(tuple(v if i in keep else None for i, v in enumerate(outputs)))
    dead_code(graph)
    return graph


def _read(graph: fx.Graph) -> set[str]:
    """The placeholders a graph reads."""
    return {n.target for n in graph.nodes if n.op == "placeholder" and n.users}


def _work(graph: fx.Graph) -> int:
    return sum(n.op not in ("placeholder", "output") for n in graph.nodes)
