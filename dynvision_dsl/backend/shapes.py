"""What a step graph's values are, where it can be proved: each node's shape (the batch as BATCH)
and whether its dtype is the model's, for passes that may only replace a value by another of the
same shape and dtype (fold_zero_products). The lowering records what only it knows (`record`):
the placeholders' shapes, each connection operator's output shape, the trainables', and which
area functions keep their argument's shape; `infer` derives the rest from the ops and answers
None (shape) or False (dtype) wherever it is unsure.

The model's dtype is that of its parameters. A trainable is in it, and so is a convolution's
output (a convolution of another dtype fails); under the runtime's bf16 autocast every module's
output is (runtime/precision.py casts them back to fp32, the dtype of an fp32 model). A
normalisation's output is taken to be in it too: outside autocast it has its input's dtype,
which differs only for a half or bf16 input to an fp32 model, i.e. frames passed in another
dtype than the model's that reach the normalisation through no convolution (the one case this
takes on trust: the values still agree, in the frames' precision). Frames, delayed reads,
states and `t` are not known to be in it: they hold whatever the caller passed (a uint8 frame
stays uint8 through an identity connection)."""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx as fx

from ..functions import TABLE as FUNCTION_TABLE, torch_function
from .runtime_ops import noise_sample, phi1

BATCH = "B"  # the batch dimension: one size for every batched value of a step
SAME = "same"  # a module whose output has its argument's shape (a normalisation)
SHAPE_KEEPING = frozenset({"groupnorm", "batchnorm", "layernorm"})  # area functions (ops.function_module)

Shape = tuple  # of int and BATCH


@dataclass(frozen=True)
class Fact:
    """What the lowering knows of one node: its shape (or SAME) and whether it is in the model's
    dtype. It names the node's op and target: meta is copied on rewrites, and a fact copied
    onto another node (a `size` made from an as_map marker) does not hold there."""

    op: str
    target: object
    shape: Shape | str
    model_dtype: bool = False


@dataclass(frozen=True)
class Info:
    """A value's shape (None: unknown) and whether its dtype is provably the model's."""

    shape: Shape | None
    model_dtype: bool = False


UNKNOWN = Info(None)
NUMBER = Info(())  # a Python number: no dimensions, no dtype of its own (it never promotes a float tensor)


def record(node: fx.Node, shape, batched: bool = True, model_dtype: bool = False) -> fx.Node:
    """Note on `node` (meta["shape"]) that it is (B, *shape) (`shape` unbatched), or SAME; returns it."""
    dims = shape if shape == SAME else ((BATCH, *shape) if batched else tuple(shape))
    node.meta["shape"] = Fact(node.op, node.target, dims, model_dtype)
    return node


def record_function(node: fx.Node, fn: str | None) -> fx.Node:
    """Note on an area function's call that it keeps its argument's shape, where it does."""
    return record(node, SAME, model_dtype=True) if fn in SHAPE_KEEPING else node


def broadcast(*shapes: Shape | None) -> Shape | None:
    """torch's broadcast of `shapes`, or None where a shape is unknown or the result depends on
    the batch size (BATCH against a size other than 1) or would fail."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for dims in zip(*((1,) * (rank - len(s)) + tuple(s) for s in shapes)):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


_UNARY = tuple(torch_function(f.torch) for f in FUNCTION_TABLE if f.arity == 1)  # relu, exp, ...: elementwise
_ELEMENTWISE = frozenset({operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.neg,
                          torch.minimum, torch.maximum, torch.clamp, torch.lerp, phi1, *_UNARY})
_COMPARE = frozenset({torch.lt, torch.gt, torch.le, torch.ge, torch.eq, torch.ne})  # bool: not the model's dtype
_REDUCE = frozenset({torch.mean, torch.sum, torch.amax})


def infer(graph: fx.Graph) -> dict[fx.Node, Info]:
    """Every node's Info, in graph order (each from its operands')."""
    known: dict[fx.Node, Info] = {}
    for node in graph.nodes:
        known[node] = _info(node, known)
    return known


def _operand(a, known: dict[fx.Node, Info]) -> Info:
    if isinstance(a, fx.Node):
        return known.get(a, UNKNOWN)
    if isinstance(a, (int, float)):  # bool is an int: True as a factor is 1
        return NUMBER
    return UNKNOWN


def _info(node: fx.Node, known: dict[fx.Node, Info]) -> Info:
    fact = node.meta.get("shape")
    if isinstance(fact, Fact) and fact.op == node.op and fact.target == node.target:
        if fact.shape != SAME:
            return Info(fact.shape, fact.model_dtype)
        arg = _operand(node.args[0], known) if len(node.args) == 1 and not node.kwargs else UNKNOWN
        return Info(arg.shape, fact.model_dtype and arg.shape is not None)
    if node.kwargs or node.op not in ("call_function", "call_method"):
        return UNKNOWN
    args = [_operand(a, known) for a in node.args]
    rule = _FUNCTIONS.get(node.target) if node.op == "call_function" else _METHODS.get(node.target)
    return rule(node, args, known) if rule is not None else UNKNOWN


def _elementwise(node, args: list[Info], known) -> Info:
    operands = [i for a, i in zip(node.args, args) if a is not None]  # clamp(x, None, hi)
    nodes = [i for a, i in zip(node.args, args) if isinstance(a, fx.Node)]
    return Info(broadcast(*(i.shape for i in operands)), bool(nodes) and all(i.model_dtype for i in nodes))


def _compare(node, args: list[Info], known) -> Info:
    return Info(broadcast(*(i.shape for i in args)))


def _reduce(node, args: list[Info], known) -> Info:
    """mean/sum/amax(v, dims, True) (lower._reduce): v's shape with those dimensions 1."""
    if len(node.args) != 3 or node.args[2] is not True or args[0].shape is None:
        return UNKNOWN
    shape, dims = list(args[0].shape), node.args[1]
    if not all(isinstance(d, int) and -len(shape) <= d < len(shape) for d in dims):
        return UNKNOWN
    for d in dims:
        shape[d] = 1
    return Info(tuple(shape), args[0].model_dtype)


def _unflatten(node, args: list[Info], known) -> Info:
    shape = args[0].shape
    if shape is None or len(node.args) != 3 or not isinstance(node.args[1], int) or not 0 <= node.args[1] < len(shape):
        return UNKNOWN
    d, sizes = node.args[1], tuple(node.args[2])
    if not all(isinstance(s, int) for s in sizes):
        return UNKNOWN
    return Info(shape[:d] + sizes + shape[d + 1:], args[0].model_dtype)


def _noise(node, args: list[Info], known) -> Info:
    """noise_sample(like, shape): (B, *shape), in `like`'s dtype."""
    like = args[0]
    if like.shape is None or not like.shape or like.shape[0] != BATCH:
        return UNKNOWN
    return Info((BATCH, *node.args[1]), like.model_dtype)


def _new_zeros(node, args: list[Info], known) -> Info:
    """like.new_zeros((like2.size(0), *rest)) (broadcast_unbatched): (B, *rest), in `like`'s dtype."""
    if len(node.args) != 2 or not isinstance(node.args[1], tuple) or not node.args[1]:
        return UNKNOWN
    size, *rest = node.args[1]
    batch = isinstance(size, fx.Node) and size.op == "call_method" and size.target == "size" and not size.kwargs
    if not (batch and len(size.args) == 2 and size.args[1] == 0 and all(isinstance(r, int) for r in rest)):
        return UNKNOWN
    of = _operand(size.args[0], known).shape
    return Info((BATCH, *rest), args[0].model_dtype) if of and of[0] == BATCH else UNKNOWN


def _first(node, args: list[Info], known) -> Info:
    return args[0] if len(args) == 1 else UNKNOWN  # contiguous()


def _expand_as(node, args: list[Info], known) -> Info:
    return Info(args[1].shape, args[0].model_dtype) if len(args) == 2 else UNKNOWN


def _type_as(node, args: list[Info], known) -> Info:
    return Info(args[0].shape, args[1].model_dtype) if len(args) == 2 else UNKNOWN


_FUNCTIONS = {**{f: _elementwise for f in _ELEMENTWISE}, **{f: _compare for f in _COMPARE},
              **{f: _reduce for f in _REDUCE}, torch.unflatten: _unflatten, noise_sample: _noise}
_METHODS = {"contiguous": _first, "expand_as": _expand_as, "type_as": _type_as, "new_zeros": _new_zeros}
