"""lean_training_ops: the training-memory rewrites of ops_autograd (a max pool that keeps no
index map, the Euler step and ReLU written into their fresh drive, sums into fresh maps)."""
from __future__ import annotations

from ...ops_autograd import lean_training_ops

__all__ = ["lean_training_ops"]
