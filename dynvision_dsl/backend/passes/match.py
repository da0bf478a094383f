"""Node patterns the passes share."""
from __future__ import annotations

import torch.fx as fx


def _is(node, target) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and node.target is target
