"""`dynv train`: fit a spec to labelled images (cross-entropy at every labelled step, Adam by
default), evaluate on held-out images after every epoch, and keep a resumable checkpoint, a CSV
of metrics and a learning curve. DynVision's training regimes (presentation pattern, reaction
time, activity loss, per-kind learning rates, truncated BPTT, clipping, schedules, optimisers,
bf16) are the fields of `Regime`.

    result = train("specs/dyrcnn_x4.dyn", {"size": "32", "steps": "10"}, data="digits", epochs=10)

Batches: every epoch shuffles the training images with a generator seeded by
(seed, epoch) alone and drops the last incomplete batch, so a resumed run, a
straight run and a run under `torchrun` (where rank r takes every world-th
image of each global batch and DistributedDataParallel averages the shards'
gradients) see the same batches and make the same updates.

Modules: api (train), options (Regime, TrainError), loop (_Run: epochs, evaluation, checkpoints),
presentation (pattern, onsets, labelled steps), losses, groups (parameter groups by connection
kind), optim (optimisers, schedules), unroll (TBPTT, bf16 with fp32 states), folder (run folder,
resume), dist (torchrun, device), report (metrics.csv, learning curve)."""
from __future__ import annotations

from .api import TrainResult, train
from .options import Regime, TrainError, parse_duration, parse_lr_scale, parse_recompute
from .report import EpochMetrics, plot_learning_curve

__all__ = ["train", "TrainResult", "Regime", "TrainError", "EpochMetrics", "plot_learning_curve", "parse_duration",
           "parse_lr_scale", "parse_recompute"]
