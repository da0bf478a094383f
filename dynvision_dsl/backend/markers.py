"""Marker calls the lowering leaves in a step graph for a pass to resolve; they never run."""
from __future__ import annotations


def keep_if_silent(new, old):
    """Marker for `x = value` on a state: the value, or the old state while the
    value is silent. `drop_silent` resolves every use; it never runs."""
    return new


def as_map(value, like, shape):
    """Marker: `value` as a (B, *shape) map, B taken from `like`.
    `broadcast_unbatched` resolves every use; it never runs."""
    return value
