"""fold_constants: calls whose operands are all numbers become their value."""
from __future__ import annotations

import operator

import torch.fx as fx

from ...codenames import folded
from ...functions import TABLE as FUNCTION_TABLE, torch_function

_FOLD = {torch_function(f.torch): f.fold for f in FUNCTION_TABLE if f.torch is not None and f.torch != "torch.clamp"} | {
    operator.add: operator.add, operator.sub: operator.sub, operator.mul: operator.mul,
    operator.truediv: operator.truediv, operator.pow: operator.pow, operator.neg: operator.neg,
}


def fold_constants(graph: fx.Graph) -> bool:
    """Evaluate functions whose operands are all numbers (dt/tau, exp(-dt/tau), ...)."""
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _FOLD or node.kwargs:
            continue
        if any(isinstance(a, fx.Node) for a in node.args):
            continue
        value = folded(node.target, float(_FOLD[node.target](*node.args)), node.args)  # keeps `dt / tau`
        for user in list(node.users):
            user.args = fx.node.map_arg(user.args, lambda n: value if n is node else n)
            user.kwargs = fx.node.map_arg(user.kwargs, lambda n: value if n is node else n)
        graph.erase_node(node)
        changed = True
    return changed
