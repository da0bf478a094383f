"""A step graph as readable text for `dynv compile --dump-after`: one line per fx node, in
order, with the spec line it came from."""
from __future__ import annotations

import torch.fx as fx

from ..diagnostics.span import Span


def node_line(node: fx.Node) -> str:
    """`%name = op[target](args)`, as fx formats it, and `# file:line` where the node has a span."""
    text = node.format_node() or f"%{node.name} = {node.op}"
    span = node.meta.get("span")
    return f"{text}  # {span.file}:{span.line}" if isinstance(span, Span) and span.line > 0 else text


def format_graph(name: str, graph: fx.Graph, after: str) -> str:
    """The header `# NAME after PASS (N nodes)` and the graph's nodes, indented."""
    lines = [f"# {name} after {after} ({len(graph.nodes)} nodes)"]
    lines += ["    " + node_line(n) for n in graph.nodes]
    return "\n".join(lines)
