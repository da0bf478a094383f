"""drop_silent: the silence rules (LANGUAGE.md section 6) on a step graph."""
from __future__ import annotations

import operator

import torch.fx as fx

from ...middle import silence
from ..markers import keep_if_silent

_OP_NAMES = {getattr(operator, name): name for name in silence.SUMS}  # fx targets of the rules' sums
_SUMS = tuple(_OP_NAMES)


def _op(node: fx.Node) -> str:
    """The operator name the silence rules know a node by ("add", "sub"; "call" for the rest)."""
    return _OP_NAMES.get(node.target, "call") if node.op == "call_function" else node.op


def drop_silent(graph: fx.Graph) -> bool:
    """Silence rules (middle/silence.py, LANGUAGE.md section 6) on placeholders marked
    meta['silent']: silent terms leave sums, anything else on a silent value
    is silent, and silent outputs become None."""
    silent: set[fx.Node] = set()
    changed = False
    for node in list(graph.nodes):
        if node.op == "placeholder":
            if node.meta.get("silent"):
                silent.add(node)
            continue
        if node.op == "output":
            out = node.args[0]
            new = tuple(None if isinstance(a, fx.Node) and a in silent else a for a in out)
            if new != tuple(out):
                node.args = (new,)
                changed = True
            continue
        nargs = [a for a in node.args if isinstance(a, fx.Node)]
        if node.target is keep_if_silent:
            new_v, old_v = node.args
            repl = {"value": new_v, "old": old_v}[silence.assigned(new_v not in silent)]
            node.replace_all_uses_with(repl)
            graph.erase_node(node)
            changed = True
            continue
        if node.op == "call_function" and node.target in _SUMS:
            a, b = node.args
            sa, sb = a in silent if isinstance(a, fx.Node) else False, b in silent if isinstance(b, fx.Node) else False
            if not silence.present(_op(node), (not sa, not sb)):
                silent.add(node)
            elif sb:
                node.replace_all_uses_with(a)
                silent.add(node)
            elif sa:
                if node.target is operator.add:
                    node.replace_all_uses_with(b)
                else:
                    with graph.inserting_before(node):
                        neg = graph.call_function(operator.neg, (b,))
                    neg.meta.update(node.meta)
                    node.replace_all_uses_with(neg)
                silent.add(node)
            if sa or sb:
                changed = True
            continue
        if not silence.present(_op(node), (a not in silent for a in nargs)):
            silent.add(node)
            changed = True
    for node in reversed(list(graph.nodes)):
        if node in silent and not node.users:
            graph.erase_node(node)
    return changed
