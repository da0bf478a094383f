"""The passes over a step's torch.fx graph, one module each, in PIPELINE order. Each pass
rewrites in place and returns whether it changed anything (numba and torch.fx style); the
PassManager (backend/passmanager.py) times them, lints after each and names them in errors.
A new pass: a module here with one function, and one row in PIPELINE."""
from __future__ import annotations

import torch.fx as fx

from ..passmanager import Pass, PassManager, changed
from .broadcast_unbatched import broadcast_unbatched
from .common_subexpressions import common_subexpressions
from .dead_code import dead_code
from .drop_silent import drop_silent
from .fold_constants import fold_constants
from .fold_zero_products import fold_zero_products
from .fuse_leaky_update import fuse_leaky_update
from .lean_training_ops import lean_training_ops
from .simplify import simplify

PIPELINE: tuple[Pass, ...] = (
    Pass("drop_silent", drop_silent, required=True),  # the printer needs both markers resolved
    Pass("broadcast_unbatched", broadcast_unbatched, required=True),
    Pass("fold_constants", fold_constants),
    Pass("fold_zero_products", fold_zero_products),  # after fold_constants: (1 - 1) * gate is 0 * gate
    Pass("simplify", simplify),
    Pass("common_subexpressions", common_subexpressions),
    Pass("fuse_leaky_update", fuse_leaky_update),
    Pass("dead_code", dead_code),
    Pass("lean_training_ops", lean_training_ops),  # last: it reads which maps are still fresh
)
REQUIRED: tuple[Pass, ...] = tuple(p for p in PIPELINE if p.required)
NAMES: tuple[str, ...] = tuple(p.name for p in PIPELINE)


def pipeline(optimize: bool = True) -> tuple[Pass, ...]:
    """The passes a build runs: all of them, or only the required ones (optimize=False)."""
    return PIPELINE if optimize else REQUIRED


def optimise(graph: fx.Graph, passes=PIPELINE) -> dict[str, bool]:
    """Run the passes in order (timed, linted after each); report which changed the graph."""
    return changed(PassManager(tuple(passes)).run(graph))
