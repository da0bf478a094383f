"""broadcast_unbatched: every value a step returns as a (B, C, H, W) map."""
from __future__ import annotations

import operator

import torch.fx as fx

from ..markers import as_map


def _batched(graph: fx.Graph) -> set[fx.Node]:
    """Nodes that depend on a batched placeholder (the frame, a read or a state)."""
    out: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "placeholder" and not node.meta.get("unbatched") or any(
                isinstance(a, fx.Node) and a in out for a in node.all_input_nodes):
            out.add(node)
    return out


def broadcast_unbatched(graph: fx.Graph) -> bool:
    """Resolve as_map markers: a value without a batch dimension (a lone bias,
    a constant) becomes `like.new_zeros((B, C, H, W)) + value`; others pass."""
    batched = _batched(graph)
    markers, pending = [], {}
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not as_map:
            continue
        value, like, shape = node.args
        if isinstance(value, fx.Node) and value in batched:
            _replace_uses(node, value, pending)
        else:
            with graph.inserting_before(node):
                size = graph.call_method("size", (like, 0))
                zeros = graph.call_method("new_zeros", (like, (size, *shape)))
                full = graph.call_function(operator.add, (zeros, value))
            for n in (size, zeros, full):
                n.meta.update(node.meta)
            _replace_uses(node, full, pending)
            batched.add(full)
        markers.append(node)
    _apply_pending(graph, pending)
    for node in markers:
        graph.erase_node(node)
    return bool(markers)


def _replace_uses(node: fx.Node, new: fx.Node, pending: dict[fx.Node, fx.Node]) -> None:
    """`node.replace_all_uses_with(new)`, except that the output's uses are noted in `pending`
    for `_apply_pending`: fx rewrites all of the output's arguments (every state and area
    output of the step) on each replacement, quadratic in the areas of a long chain."""
    node.replace_all_uses_with(new, delete_user_cb=lambda user: user.op != "output")
    if node.users:
        pending[node] = new


def _apply_pending(graph: fx.Graph, pending: dict[fx.Node, fx.Node]) -> None:
    """Rewrite the output's arguments once, following replacements of replacements."""
    if not pending:
        return

    def final(n: fx.Node) -> fx.Node:
        while n in pending:
            n = pending[n]
        return n

    output = next(n for n in reversed(graph.nodes) if n.op == "output")
    output.args = fx.node.map_arg(output.args, final)
