"""The passes over a step's torch.fx graph, one module each. Each pass rewrites in place and
returns whether it changed anything (numba and torch.fx style)."""
from __future__ import annotations

import torch.fx as fx

from .broadcast_unbatched import broadcast_unbatched
from .common_subexpressions import common_subexpressions
from .dead_code import dead_code
from .drop_silent import drop_silent
from .fold_constants import fold_constants
from .fuse_leaky_update import fuse_leaky_update
from .simplify import simplify

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
