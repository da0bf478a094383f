"""Optimisation passes over a step's torch.fx graph. Each pass rewrites in
place and returns whether it changed anything (numba and torch.fx style)."""
from __future__ import annotations

import math
import operator

import torch
import torch.fx as fx

from .codenames import folded
from .functions import TABLE as FUNCTION_TABLE, torch_function


def keep_if_silent(new, old):
    """Marker for `x = value` on a state: the value, or the old state while the
    value is silent. `drop_silent` resolves every use; it never runs."""
    return new


def noise_sample(like, shape):
    """A fresh standard-normal sample of shape (B, *shape), B, dtype and device taken from
    `like` (noise(), LANGUAGE.md §9.5). Impure: never folded or merged with another sample."""
    return torch.randn((like.size(0), *shape), dtype=like.dtype, device=like.device)


PHI1_SMALL = 1e-4  # below this |z|, (e^z - 1) / z is 1 + z/2 to float32 precision


def phi1(z):
    """(e^z - 1) / z, with its limit 1 at z = 0 and no 0/0 (nor a NaN gradient) near it: the
    exponential solver's input gain when a leak coefficient is zero at run time."""
    small = z.abs() < PHI1_SMALL
    return torch.where(small, 1.0 + 0.5 * z, torch.expm1(z) / torch.where(small, 1.0, z))


IMPURE = (noise_sample,)  # calls whose every evaluation differs: no pass may merge them
_SUMS = (operator.add, operator.sub)


def drop_silent(graph: fx.Graph) -> bool:
    """Silence rules (LANGUAGE.md section 6) on placeholders marked
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
            repl = old_v if new_v in silent else new_v
            node.replace_all_uses_with(repl)
            graph.erase_node(node)
            changed = True
            continue
        if node.op == "call_function" and node.target in _SUMS:
            a, b = node.args
            sa, sb = a in silent if isinstance(a, fx.Node) else False, b in silent if isinstance(b, fx.Node) else False
            if sa and sb:
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
        if any(a in silent for a in nargs):
            silent.add(node)
            changed = True
    for node in reversed(list(graph.nodes)):
        if node in silent and not node.users:
            graph.erase_node(node)
    return changed


def as_map(value, like, shape):
    """Marker: `value` as a (B, *shape) map, B taken from `like`.
    `broadcast_unbatched` resolves every use; it never runs."""
    return value


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


def _is(node, target) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and node.target is target


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


def common_subexpressions(graph: fx.Graph) -> bool:
    """Compute each distinct call once (RK4 stages re-read their held inputs)."""
    seen: dict[tuple, fx.Node] = {}
    changed = False
    for node in list(graph.nodes):
        if node.op not in ("call_function", "call_module", "call_method", "get_attr") or node.target in IMPURE:
            continue
        key = (node.op, node.target, _hashable(node.args), _hashable(tuple(sorted(node.kwargs.items()))))
        if key in seen:
            node.replace_all_uses_with(seen[key])
            graph.erase_node(node)
            changed = True
        else:
            seen[key] = node
    return changed


def _hashable(x):
    if isinstance(x, (tuple, list)):
        return tuple(_hashable(i) for i in x)
    return x


def dead_code(graph: fx.Graph) -> bool:
    """Remove computations nobody reads (placeholders stay: they are the signature)."""
    changed = False
    for node in reversed(list(graph.nodes)):
        if node.op in ("placeholder", "output") or node.users:
            continue
        graph.erase_node(node)
        changed = True
    return changed


REQUIRED = (("drop_silent", drop_silent), ("broadcast_unbatched", broadcast_unbatched))
PIPELINE = REQUIRED + (("fold_constants", fold_constants), ("simplify", simplify),
            ("common_subexpressions", common_subexpressions), ("fuse_leaky_update", fuse_leaky_update),
            ("dead_code", dead_code))


def optimise(graph: fx.Graph, passes=PIPELINE) -> dict[str, bool]:
    """Run the passes in order; report which changed the graph."""
    report = {}
    for name, fn in passes:
        report[name] = fn(graph)
    graph.lint()
    return report
