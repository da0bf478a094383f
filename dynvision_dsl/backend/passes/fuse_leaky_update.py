"""fuse_leaky_update: the Euler step of a leaky integrator as one torch.lerp."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from .dead_code import dead_code
from .match import _is


def fuse_leaky_update(graph: fx.Graph) -> bool:
    """r + c * (I - r)  ->  torch.lerp(r, I, c): the Euler step of a leaky
    integrator as one fused kernel."""
    changed = False
    for node in list(graph.nodes):
        if not _is(node, operator.add):
            continue
        r, m = node.args
        if not _is(m, operator.mul) or len(m.users) != 1:
            continue
        c, d = m.args if _is(m.args[1], operator.sub) else (m.args[1], m.args[0])
        if not _is(d, operator.sub) or len(d.users) != 1 or d.args[1] is not r or isinstance(c, fx.Node) and c.op != "get_attr":
            continue
        with graph.inserting_before(node):
            fused = graph.call_function(torch.lerp, (r, d.args[0], c))
        fused.meta.update(node.meta)
        node.replace_all_uses_with(fused)
        changed = True
    return changed | dead_code(graph)
