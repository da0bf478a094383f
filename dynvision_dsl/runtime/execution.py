"""How an in-process model runs its steps (`model.execution`, set by `dd.compile(...,
cuda_graphs=, precision=)`): the generated loop as it is, or with the steady step replayed from
a CUDA graph (runtime/cudagraph.py), under bf16 autocast with fp32 states
(runtime/precision.py), or both. `compile_steps` wraps each step function in torch.compile
(never the unrolled loop, whose length would be baked into one huge graph)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import cudagraph
from .precision import autocast, check_precision


@dataclass(frozen=True)
class Execution:
    """cuda_graphs: replay the steady step from a CUDA graph (inference on CUDA; otherwise the
    loop runs eagerly with a RuntimeWarning saying why); precision: '32' or 'bf16' (autocast,
    states and delay buffers kept fp32)."""

    cuda_graphs: bool = False
    precision: str = "32"

    def __post_init__(self) -> None:
        check_precision(self.precision)

    @property
    def plain(self) -> bool:
        return not self.cuda_graphs and self.precision == "32"


def simulate(model, eager: Callable, x, record=(), seed=None, detach_every=0, **more):
    """`model.simulate` as `model.execution` says; `eager` is the generated simulate (`more`:
    its further options, which the graph replay leaves to it)."""
    execution = getattr(model, "execution", None) or Execution()
    if execution.plain:
        return eager(model, x, record, seed, detach_every, **more)
    like = next(iter(x.values())) if isinstance(x, dict) else x
    with autocast(model, execution.precision, like.device.type, cache=not execution.cuda_graphs):
        if execution.cuda_graphs and not any(more.values()):
            return cudagraph.simulate(model, x, record, seed, eager=eager, detach_every=detach_every)
        return eager(model, x, record, seed, detach_every, **more)


def compile_steps(model, example=None, **options) -> float | None:
    """Wrap every step function of `model` in torch.compile (`options` go to it); with an
    `example` input, run it once under no_grad so every variant compiles now, and return the
    seconds that took (the compile time), else None (they compile at their first call)."""
    for name in model.step_names:
        step = getattr(type(model), name).__get__(model)
        setattr(model, name, torch.compile(step, **options))
    if example is None:
        return None
    start = time.perf_counter()
    with torch.no_grad():
        model.simulate(example)
    return time.perf_counter() - start


def eager_steps(model) -> None:
    """Undo compile_steps: the step functions are the generated ones again."""
    for name in model.step_names:
        model.__dict__.pop(name, None)
