"""fold_zero_products: a term that is a product with the number zero leaves its sum, and a factor
exp(0 * v) leaves its product (LANGUAGE.md, "Silence": such a term counts for presence only).

`a + 0 * v`, `0 * v + a`, `a - 0 * v` (either factor order, products of products too) and
`a * exp(0 * v)`, `exp(0 * v) * a` become `a`, so `v` is no longer read there (dead code can
drop it where nothing else reads it). Only where that is provably the same value: the result
has `a`'s shape and dtype (backend/shapes.py; `1 + 0 * gate` has the gate's shape, not a
number's) and nothing that would leave the graph with the product is impure (noise, or a module
call: a batch norm's running statistics, dropout's draw, a gain bound's power iteration).
It differs from the plain arithmetic only where `v` is inf or NaN (0 * inf is NaN) and in
the sign of a zero sum (-0 + 0 is +0): the product with the number zero is zero, as in sympy.
A lone product (`0 * v` with nothing to add it to) stays as it is."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from ..runtime_ops import IMPURE
from ..shapes import Info, infer
from .dead_code import dead_code
from .match import _is


def fold_zero_products(graph: fx.Graph) -> bool:
    """Replace each sum with a zero product and each product with exp(zero product) by its
    other operand, where shapes.infer proves the result is that operand's shape and dtype."""
    known = infer(graph)  # a fold keeps the shapes it proves, so the inference stays true
    changed = False
    for node in list(graph.nodes):
        pair = _foldable(node)
        if pair is None:
            continue
        keep, drop = pair
        if _same_value(node, keep, drop, known) and node.users and _pure_when_gone(graph, node, keep):
            node.replace_all_uses_with(keep)
            changed = True
    return changed | dead_code(graph)


def _is_zero(value) -> bool:
    """The number zero, or a product with it as a factor (`0 * gate * w`)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0.0
    return _is(value, operator.mul) and not value.kwargs and len(value.args) == 2 and any(
        _is_zero(a) for a in value.args)


def _zero_term(value) -> bool:
    """A product with the number zero (a node: a bare 0 term is simplify's)."""
    return isinstance(value, fx.Node) and _is_zero(value)


def _one_factor(value) -> bool:
    """exp(a zero product), which is 1."""
    return _is(value, torch.exp) and not value.kwargs and len(value.args) == 1 and _is_zero(value.args[0])


def _foldable(node: fx.Node) -> tuple[fx.Node, fx.Node] | None:
    """(kept operand, dropped operand) of a sum with a zero product or a product with
    exp(zero product); None for anything else (the kept one must be a tensor: a node)."""
    if node.op != "call_function" or node.kwargs or len(node.args) != 2:
        return None
    a, b = node.args
    if node.target is operator.add:
        pair = (a, b) if _zero_term(b) else (b, a) if _zero_term(a) else None
    elif node.target is operator.sub:
        pair = (a, b) if _zero_term(b) else None
    elif node.target is operator.mul:
        pair = (a, b) if _one_factor(b) else (b, a) if _one_factor(a) else None
    else:
        return None
    return pair if pair is not None and isinstance(pair[0], fx.Node) and pair[0] is not pair[1] else None


def _same_value(node: fx.Node, keep: fx.Node, drop: fx.Node, known: dict[fx.Node, Info]) -> bool:
    """Whether `node` is `keep` in shape and dtype: both operands in the model's dtype, and
    `node`'s shape (their broadcast) known and `keep`'s."""
    k, d, n = known.get(keep), known.get(drop), known.get(node)
    return (None not in (k, d, n) and k.model_dtype and d.model_dtype and n.shape is not None
            and n.shape == k.shape)


def _pure_when_gone(graph: fx.Graph, node: fx.Node, keep: fx.Node) -> bool:
    """Whether every node that nothing would read once `node` reads as `keep` may go: no impure
    call (a noise draw) and no module call (its side effects in training)."""
    gone = {node}
    for n in reversed(list(graph.nodes)[:_index(graph, node)]):
        if n is keep or n.op == "placeholder" or not n.users or not all(u in gone for u in n.users):
            continue
        if n.op == "call_module" or n.target in IMPURE or n.op not in ("call_function", "call_method", "get_attr"):
            return False
        gone.add(n)
    return True


def _index(graph: fx.Graph, node: fx.Node) -> int:
    return next(i for i, n in enumerate(graph.nodes) if n is node)

