"""Stimuli for `dynv run`: a built-in procedural image, or the user's image file."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F


def builtin_image(channels: int, height: int, width: int) -> torch.Tensor:
    """A deterministic test image (C, H, W) in [0, 1]: an oriented grating under
    a Gaussian aperture, with a colour tint per channel. No download, no data."""
    ys = torch.linspace(-1, 1, height).view(-1, 1)
    xs = torch.linspace(-1, 1, width).view(1, -1)
    theta = math.pi / 6
    u = xs * math.cos(theta) + ys * math.sin(theta)
    grating = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * u)
    aperture = torch.exp(-(xs ** 2 + ys ** 2) / (2 * 0.45 ** 2))
    base = grating * aperture
    tints = [1.0, 0.7, 0.4, 0.85, 0.55]
    return torch.stack([base * tints[c % len(tints)] for c in range(channels)])


def load_image(path: str | Path, channels: int, height: int, width: int) -> torch.Tensor:
    """Read an image file as (C, H, W) in [0, 1], converted and resized to the model's input."""
    from PIL import Image  # pillow ships with matplotlib

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image at {path}")
    img = Image.open(path).convert("L" if channels == 1 else "RGB")
    data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float() / 255.0
    data = data.view(img.height, img.width, -1).permute(2, 0, 1)
    if channels not in (1, 3):
        data = data.mean(0, keepdim=True).expand(channels, -1, -1)
    data = F.interpolate(data.unsqueeze(0), size=(height, width), mode="bilinear", align_corners=False)[0]
    return data.clamp(0, 1)
