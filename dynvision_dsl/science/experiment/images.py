"""Where experiment images come from: the held-out digits, a seeded sample of a folder, or one file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import data as data_mod
from .protocol import ExperimentError


@dataclass
class Images:
    """Where experiment images come from; `get(shape)` loads them (cached) for a model's input."""

    source: str
    n: int
    seed: int = 0
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def get(self, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (N, C, H, W) and labels (N,) or None for a single file."""
        shape = tuple(shape)
        if shape not in self._cache:
            self._cache[shape] = self._load(shape)
        return self._cache[shape]

    def _load(self, shape):
        from ...stimuli import load_image

        src = self.source
        if src == "digits" or src.startswith("folder:") or Path(src).is_dir():
            data = data_mod.load(src, shape)
            if src == "digits":
                data = data_mod.split(data, 0.2, seed=0)[1]
            pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))[:self.n]
            return data.stack(pick), data.labels[pick]
        if not Path(src).is_file():
            raise ExperimentError(f"no image at '{src}'; --images takes digits, folder:PATH or an image file")
        return load_image(src, *shape).unsqueeze(0), None
