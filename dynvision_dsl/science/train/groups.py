"""Parameter groups by connection kind, read off the compiled graph (the kinds of
`graph._classify`, by the hierarchy's feedforward order), never off parameter names."""
from __future__ import annotations

from torch import nn

from .options import KINDS

_GRAPH_KIND = {"lateral": "recurrence", "feedback": "feedback", "feedforward": "feedforward", "skip": "feedforward",
               "readout": "readout"}


def module_kinds(graph) -> dict[str, str]:
    """Module path (an op's `as` name or generated path) -> connection kind: recurrence (self and
    lateral loops), feedback (against the feedforward order), feedforward (skips too), readout."""
    out: dict[str, str] = {}
    for _, _, data in sorted(graph.edges(data=True), key=lambda e: e[2]["index"]):
        for op in data["ops"]:
            if getattr(op, "path", None):
                out.setdefault(op.path, _GRAPH_KIND.get(data["kind"], "feedforward"))
    return out


def kind_of(name: str, kinds: dict[str, str]) -> str:
    """A parameter's group: that of the connection whose module holds it (longest matching
    dotted prefix), else 'area' (time constants, norms and biases of the areas' equations)."""
    parts = name.split(".")
    for n in range(len(parts) - 1, 0, -1):
        kind = kinds.get(".".join(parts[:n]))
        if kind is not None:
            return kind
    return "area"


def param_groups(model: nn.Module, graph, lr: float, scales: dict[str, float]) -> list[dict]:
    """One optimiser group per kind that has trainable parameters, in KINDS order, with
    lr × its --lr-scale factor (1 when not given); every parameter is in exactly one group."""
    kinds = module_kinds(graph)
    members: dict[str, list] = {kind: [] for kind in KINDS}
    for name, p in model.named_parameters():
        if p.requires_grad:
            members[kind_of(name, kinds)].append((name, p))
    return [{"params": [p for _, p in ps], "names": [n for n, _ in ps], "kind": kind,
             "lr": lr * scales.get(kind, 1.0)} for kind, ps in members.items() if ps]
