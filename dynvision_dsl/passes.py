"""Compatibility: the passes live in `backend/passes/` (one module each), the markers in
`backend/markers.py`, noise and phi1 in `backend/runtime_ops.py`; old imports keep working."""
from __future__ import annotations

from .backend.markers import as_map, keep_if_silent
from .backend.passes import PIPELINE, REQUIRED, optimise
from .backend.passes.broadcast_unbatched import _apply_pending, _batched, _replace_uses, broadcast_unbatched
from .backend.passes.common_subexpressions import _hashable, common_subexpressions
from .backend.passes.dead_code import dead_code
from .backend.passes.drop_silent import _SUMS, drop_silent
from .backend.passes.fold_constants import _FOLD, fold_constants
from .backend.passes.fuse_leaky_update import fuse_leaky_update
from .backend.passes.match import _is
from .backend.passes.simplify import simplify
from .backend.runtime_ops import IMPURE, PHI1_SMALL, noise_sample, phi1

__all__ = ["IMPURE", "PHI1_SMALL", "PIPELINE", "REQUIRED", "as_map", "broadcast_unbatched", "common_subexpressions",
           "dead_code", "drop_silent", "fold_constants", "fuse_leaky_update", "keep_if_silent", "noise_sample",
           "optimise", "phi1", "simplify", "_FOLD", "_SUMS", "_apply_pending", "_batched", "_hashable", "_is",
           "_replace_uses"]
