"""The model as training runs it: the images shown in the presentation pattern, truncated
backpropagation through time, bf16 autocast with states kept in fp32, and the recording of
the area outputs the activity penalty needs. It is an nn.Module so DistributedDataParallel wraps it.

fp32 states under bf16: autocast runs convolutions and linear layers in bf16, but the Euler
step's `torch.lerp(state, input, dt/tau)` needs both in one dtype. A forward hook on every leaf
module casts its bf16 output back to fp32, so every equation (the leak, the nonlinearity, the
sums of inputs) and every stored state and delay buffer stays fp32; only the matrix products
run in bf16. The generated module is unchanged (the hooks exist only inside `forward`)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

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


def _to_fp32(module: nn.Module, inputs, output):
    if isinstance(output, torch.Tensor) and output.is_floating_point() and output.dtype != torch.float32:
        return output.float()
    return None


@contextmanager
def autocast(model: nn.Module, precision: str, device_type: str) -> Iterator[None]:
    """bf16 autocast with every leaf module's output cast back to fp32 (see the module's
    docstring); nothing for precision '32'."""
    if precision == "32":
        yield
        return
    handles = [m.register_forward_hook(_to_fp32) for m in model.modules() if not any(True for _ in m.children())]
    try:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
    finally:
        for handle in handles:
            handle.remove()
