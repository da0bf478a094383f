"""The model as training runs it: the images shown in the presentation pattern, truncated
backpropagation through time, bf16 autocast with states kept in fp32 (runtime/precision.py),
and the recording of the area outputs the activity penalty needs. It is an nn.Module so
DistributedDataParallel wraps it."""
from __future__ import annotations

import torch
from torch import nn

from ...runtime.precision import autocast
from .losses import activity
from .presentation import show


class Unroll(nn.Module):
    """forward(images) -> (logits (B, T, classes) in fp32, activity penalty (a scalar, 0 when off))."""

    def __init__(self, model: nn.Module, shown: torch.Tensor, tbptt: int = 0, precision: str = "32",
                 record_activity: bool = False):
        super().__init__()
        self.model = model
        self.shown = shown
        self.tbptt = tbptt
        self.precision = precision
        self.record = tuple(model.areas) if record_activity else ()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = show(images, self.shown)
        if getattr(self.model, "input_transform", None) is not None:  # --normalize, on every frame as `run` does
            x = self.model.input_transform(x)
        with autocast(self.model, self.precision, x.device.type):
            logits, responses = self.model.simulate(x, record=self.record, detach_every=self.tbptt)
        penalty = activity(responses) if self.record else logits.new_zeros((), dtype=torch.float32)
        return logits.float(), penalty
