"""simplify: algebra that keeps results exact."""
from __future__ import annotations

import operator

import torch.fx as fx

from .dead_code import dead_code
from .match import _is


def simplify(graph: fx.Graph) -> bool:
    """Algebra that keeps results exact: x*1, x+0, -(-x), (-a)+b -> b-a, a+(-b) -> a-b."""
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.kwargs:
            continue
        args = node.args
        repl = None
        if node.target is operator.mul and len(args) == 2:
            if args[0] == 1.0 and not isinstance(args[0], fx.Node):
                repl = args[1]
            elif args[1] == 1.0 and not isinstance(args[1], fx.Node):
                repl = args[0]
        elif node.target in (operator.add, operator.sub) and not isinstance(args[1], fx.Node) and args[1] == 0.0:
            repl = args[0]
        elif node.target is operator.neg and _is(args[0], operator.neg):
            repl = args[0].args[0]
        elif node.target is operator.add and _is(args[0], operator.neg) and len(args[0].users) == 1:
            node.target, node.args = operator.sub, (args[1], args[0].args[0])
            changed = True
        elif node.target is operator.add and _is(args[1], operator.neg) and len(args[1].users) == 1:
            node.target, node.args = operator.sub, (args[0], args[1].args[0])
            changed = True
        if repl is not None and isinstance(repl, fx.Node):
            node.replace_all_uses_with(repl)
            changed = True
    return changed | dead_code(graph)
