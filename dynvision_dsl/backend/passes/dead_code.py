"""dead_code: computations nobody reads leave the graph."""
from __future__ import annotations

import torch.fx as fx


def dead_code(graph: fx.Graph) -> bool:
    """Remove computations nobody reads (placeholders stay: they are the signature)."""
    changed = False
    for node in reversed(list(graph.nodes)):
        if node.op in ("placeholder", "output") or node.users:
            continue
        graph.erase_node(node)
        changed = True
    return changed
