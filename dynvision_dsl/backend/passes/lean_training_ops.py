"""lean_training_ops: the training-memory rewrites (dynvision_dsl/ops_autograd.py says why): a
max pool that keeps no index map, the Euler step and ReLU written into their fresh drive, sums
into fresh maps, relu_ on fresh maps."""
from __future__ import annotations

import operator
import re

import torch
import torch.fx as fx
import torch.nn.functional as F

from ...ops_autograd import add_into, euler_relu_, lean_max_pool2d
from ...ops_gemm import gemm_conv
from ...ops_window import window_linear
from .match import _is

# Producers whose output their own backward never needs (sums and products save their inputs,
# lerp its weight, a convolution or window_linear its input and weight, gemm_conv's product its columns and weight):
# an op that reads such an output last may overwrite it.
_FREE_OUTPUT = (operator.add, operator.sub, operator.mul, torch.lerp, euler_relu_, add_into, window_linear, gemm_conv)
_CONV = re.compile(r"(?:\w+\()*nn\.Conv2d\(")  # a conv, maybe wrapped (fixed_weights, bound_gain)


def conv_paths(modules) -> frozenset[str]:
    """The module paths (of lower.ModuleDef rows) that are 2-d convolutions."""
    return frozenset(md.path for md in modules if _CONV.match(md.ctor))


def _fresh(node, convs: frozenset[str]) -> bool:
    """A map made in this step that only one op reads and no backward needs."""
    if not isinstance(node, fx.Node) or len(node.users) != 1 or any(u.op == "output" for u in node.users):
        return False
    if node.op == "call_module":  # lower marks its convolutions (meta["conv"])
        return node.target in convs or bool(node.meta.get("conv"))
    if node.op != "call_function" or node.target not in _FREE_OUTPUT:
        return False
    return node.target not in (operator.mul, operator.add, operator.sub) or any(
        isinstance(a, fx.Node) for a in node.args)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def lean_training_ops(graph: fx.Graph, convs: frozenset[str] = frozenset()) -> bool:
    """Rewrite max_pool2d, relu(lerp(...)), sums and relu as in the module docstring, in graph
    order (so an add written in place can itself be the fresh drive of an Euler step)."""
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.kwargs:
            continue
        args = node.args
        if node.target is F.max_pool2d:
            node.target = lean_max_pool2d
        elif node.target is operator.add and all(isinstance(a, fx.Node) for a in args) and (
                _fresh(args[0], convs) or _fresh(args[1], convs)):
            node.target = add_into  # float addition commutes exactly: write into the fresh one
            node.args = args if _fresh(args[0], convs) else args[::-1]
        elif node.target is torch.relu and _is(args[0], torch.lerp) and _is_number(args[0].args[2]) \
                and len(args[0].users) == 1 and _fresh(args[0].args[1], convs):
            lerp = args[0]
            node.target, node.args = euler_relu_, lerp.args
            node.meta.update(lerp.meta)  # the code points at the ODE line
            graph.erase_node(lerp)
        elif node.target is torch.relu and len(args) == 1 and _fresh(args[0], convs):
            node.op, node.target = "call_method", "relu_"
        else:
            continue
        changed = True
    return changed
