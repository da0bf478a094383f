"""Calls a step graph keeps and the printer writes out inline: noise samples and phi1."""
from __future__ import annotations

import torch


def noise_sample(like, shape):
    """A fresh standard-normal sample of shape (B, *shape), B, dtype and device taken from
    `like` (noise(), LANGUAGE.md §9.5). Impure: never folded or merged with another sample."""
    return torch.randn((like.size(0), *shape), dtype=like.dtype, device=like.device)


PHI1_SMALL = 1e-4  # below this |z|, (e^z - 1) / z is 1 + z/2 to float32 precision


def phi1(z):
    """(e^z - 1) / z, with its limit 1 at z = 0 and no 0/0 (nor a NaN gradient) near it: the
    exponential solver's input gain when a leak coefficient is zero at run time."""
    small = z.abs() < PHI1_SMALL
    return torch.where(small, 1.0 + 0.5 * z, torch.expm1(z) / torch.where(small, 1.0, z))


IMPURE = (noise_sample,)  # calls whose every evaluation differs: no pass may merge them
