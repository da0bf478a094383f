"""common_subexpressions: each distinct pure call computed once."""
from __future__ import annotations

import torch.fx as fx

from ..runtime_ops import IMPURE


def common_subexpressions(graph: fx.Graph) -> bool:
    """Compute each distinct call once (RK4 stages re-read their held inputs)."""
    seen: dict[tuple, fx.Node] = {}
    changed = False
    for node in list(graph.nodes):
        if node.op not in ("call_function", "call_module", "call_method", "get_attr") or node.target in IMPURE:
            continue
        key = (node.op, node.target, _hashable(node.args), _hashable(tuple(sorted(node.kwargs.items()))))
        if key in seen:
            node.replace_all_uses_with(seen[key])
            graph.erase_node(node)
            changed = True
        else:
            seen[key] = node
    return changed


def _hashable(x):
    if isinstance(x, (tuple, list)):
        return tuple(_hashable(i) for i in x)
    return x
