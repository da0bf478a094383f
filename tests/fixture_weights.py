"""Deterministic weights and inputs for the compact reference-parity fixtures.

Pure torch: used both by ``benchmarks/reference/make_fixtures.py`` (run with
the reference venv, which imports this file by path) and by
``tests/test_zoo_parity.py``. A fixture stores only the drawn keys with their
shapes and the seed, so both sides must draw exactly the same tensors.

Scheme (benchmarks/reference/NOTES.md §5), one ``torch.Generator`` seeded with
``seed``, walking the keys in sorted order (so the result depends only on the
set of keys and shapes, never on dict order):

* ``>= 2`` dims (conv/linear weights, weight-norm g and v, spatial biases):
  ``N(0, 1) / sqrt(numel / shape[0])``
* shape ``(1,)`` (self-recurrence weight and bias): ``U[0.3, 0.75]``
* other 1-D tensors whose key ends in ``weight`` (GroupNorm weights; no other
  1-D weights occur in the zoo): ``1 + N(0, 0.1^2)``
* other 1-D tensors (biases, GroupNorm biases): ``N(0, 0.1^2)``

Every value is rounded through float16, so it is exactly representable there.
0-d tensors (tau, supralinearity) and integer buffers are not drawn.
"""
from __future__ import annotations

import math

import torch


def _one(key: str, shape: tuple, g: torch.Generator) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    if len(shape) >= 2:
        fan_in = math.prod(shape) // shape[0]
        v = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    elif shape == (1,):
        v = 0.3 + 0.45 * torch.rand(shape, generator=g)
    elif len(shape) == 1 and key.endswith("weight"):
        v = 1.0 + 0.1 * torch.randn(shape, generator=g)
    elif len(shape) == 1:
        v = 0.1 * torch.randn(shape, generator=g)
    else:
        raise ValueError(f"{key}: 0-d tensors are not drawn (shape {shape})")
    return v.half().float()


def draw(shapes: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """Draw float32, float16-representable tensors for ``{key: shape}``."""
    g = torch.Generator().manual_seed(int(seed))
    return {key: _one(key, shapes[key], g) for key in sorted(shapes)}


def make_input(shape: tuple, seed: int) -> torch.Tensor:
    """The seeded float32 input (B, T, C, H, W): N(0, 1), generator ``seed + 1``."""
    g = torch.Generator().manual_seed(int(seed) + 1)
    return torch.randn(tuple(int(s) for s in shape), generator=g)
