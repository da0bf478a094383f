"""The optimiser (adam, adamw, sgd) over the parameter groups, and the learning-rate
schedule (none, cosine, step; linear warmup first), stepped once per optimiser step."""
from __future__ import annotations

import math

import torch
from torch import nn

from .groups import param_groups
from .options import Regime

SGD_MOMENTUM = 0.9
STEP_GAMMA = 0.1  # --schedule step: lr × 0.1 at half and again at three quarters of the training
STEP_AT = (0.5, 0.75)


def make_optimizer(model: nn.Module, graph, lr: float, regime: Regime) -> torch.optim.Optimizer:
    """The optimiser over the groups of groups.param_groups, with the regime's weight decay."""
    # without --lr-scale one group in model order, as before the groups existed (old runs resume)
    groups = param_groups(model, graph, lr, dict(regime.lr_scale)) if regime.lr_scale else model.parameters()
    if regime.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=SGD_MOMENTUM, weight_decay=regime.decay)
    kind = torch.optim.AdamW if regime.optimizer == "adamw" else torch.optim.Adam
    return kind(groups, lr=lr, weight_decay=regime.decay)


def lr_factor(step: int, total: int, regime: Regime) -> float:
    """The factor on every group's lr before optimiser step `step` (0-based) of `total`:
    linear warmup over the first `warmup` steps, then the schedule over the rest."""
    if step < regime.warmup:
        return (step + 1) / regime.warmup
    progress = (step - regime.warmup) / max(1, total - regime.warmup)
    if regime.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if regime.schedule == "step":
        return STEP_GAMMA ** sum(progress >= at for at in STEP_AT)
    return 1.0


def make_schedule(optimizer: torch.optim.Optimizer, total: int, regime: Regime) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR of lr_factor; its state (the step count) is checkpointed with the optimiser's."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, regime))
