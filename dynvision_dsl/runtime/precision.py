"""bf16 autocast with every state and delay buffer kept in fp32, for `dynv train --precision
bf16` and `Execution(precision="bf16")` (`dynv run --precision bf16`).

Autocast runs convolutions and linear layers in bf16, but the Euler step's `torch.lerp(state,
input, dt/tau)` needs both in one dtype. A forward hook on every leaf module casts its bf16
output back to fp32, so every equation (the leak, the nonlinearity, the sums of inputs) and
every stored state and delay buffer stays fp32; only the matrix products run in bf16. The
generated module is unchanged (the hooks exist only inside the context)."""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Iterator

import torch
from torch import nn

from . import PRECISIONS



def check_precision(precision: str) -> None:
    """ValueError unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def _to_fp32(module: nn.Module, inputs, output):
    if isinstance(output, torch.Tensor) and output.is_floating_point() and output.dtype != torch.float32:
        return output.float()
    return None


@contextmanager
def fp32_outputs(model: nn.Module) -> Iterator[None]:
    """A forward hook on every leaf module that casts its low-precision output back to fp32."""
    handles = [m.register_forward_hook(_to_fp32) for m in model.modules() if not any(True for _ in m.children())]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def autocast(model: nn.Module, precision: str, device_type: str, cache: bool = True) -> Iterator[None]:
    """bf16 autocast with every leaf module's output cast back to fp32 (see the module's docstring);
    nothing for precision '32'. `cache=False` for CUDA-graph capture (torch's autocast weight
    cache must not outlive the capture). A checkpointed segment (`recompute`) recomputed in
    backward, after this context has ended, puts the casts back (`_recompute_context`); torch's
    checkpoint restores the autocast state itself."""
    if precision == "32":
        yield
        return
    check_precision(precision)
    model.__dict__["_recompute_context"] = partial(fp32_outputs, model)
    try:
        with fp32_outputs(model), torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=cache):
            yield
    finally:
        del model.__dict__["_recompute_context"]
