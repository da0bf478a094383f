"""What happens to an image between the file and the model: `augment` (a random
resized crop and a horizontal flip, training only) and `Normalization`
(`--normalize imagenet|dataset|none`), which the model applies to its input and
checkpoints record, so that `dynv run` and `dynv experiment` normalise as training did."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import ImageError
from .sets import DataError

NORMALIZE = ("none", "imagenet", "dataset")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop defaults: share of the area, aspect ratio
RATIO = (3 / 4, 4 / 3)
STATS_SAMPLE = 512  # training images that --normalize dataset averages over


# ------------------------------------------------------------------ augmentation
def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The random numbers of image `index`'s augmentation in `epoch`: set by the three alone,
    so a resumed run, a straight run and any number of workers or ranks crop alike."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_033 + index) % (1 << 63))


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def crop_box(h: int, w: int, g: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop covering SCALE of the area at an aspect ratio in RATIO,
    as torchvision's RandomResizedCrop.get_params draws it (10 tries, then a central crop)."""
    log_lo, log_hi = math.log(RATIO[0]), math.log(RATIO[1])
    for _ in range(10):
        area = h * w * _uniform(g, *SCALE)
        aspect = math.exp(_uniform(g, log_lo, log_hi))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=g))
            left = int(torch.randint(0, w - cw + 1, (), generator=g))
            return top, left, ch, cw
    ratio = w / h
    if ratio < RATIO[0]:
        cw, ch = w, round(w / RATIO[0])
    elif ratio > RATIO[1]:
        cw, ch = round(h * RATIO[1]), h
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def augment(image: torch.Tensor, size: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    """A random resized crop of `image` (C, h, w) to `size` (bilinear, antialiased), flipped
    left-right with probability 1/2."""
    top, left, ch, cw = crop_box(image.shape[-2], image.shape[-1], g)
    crop = image[:, top:top + ch, left:left + cw].unsqueeze(0)
    out = F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    if float(torch.rand((), generator=g)) < 0.5:
        out = out.flip(-1)
    return out.clamp(0, 1)


# ------------------------------------------------------------------ normalisation
@dataclass(frozen=True)
class Normalization:
    """(x - mean) / std per channel, applied by the model to every input (`DynModel.input_transform`)."""

    mode: str  # imagenet or dataset
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (-1, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return (x - mean) / std

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "mean": list(self.mean), "std": list(self.std)}

    def describe(self) -> str:
        return f"{self.mode} (mean {', '.join(f'{m:.4g}' for m in self.mean)}; " \
               f"std {', '.join(f'{s:.4g}' for s in self.std)})"


def imagenet(channels: int) -> Normalization:
    """ImageNet's channel means and deviations (their averages for a grey model)."""
    if channels == 3:
        return Normalization("imagenet", IMAGENET_MEAN, IMAGENET_STD)
    if channels == 1:
        return Normalization("imagenet", (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,))
    raise DataError(f"--normalize imagenet needs a model with 1 or 3 input channels, not {channels}; "
                    f"use --normalize dataset")


def estimate(data, seed: int, sample: int = STATS_SAMPLE) -> Normalization:
    """Channel means and deviations over the pixels of a seeded sample of `data` (decoded at the
    model's size, not augmented); DataError for a channel that is constant."""
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:sample]
    total = sq = None
    pixels = 0
    for i in pick.tolist():
        try:
            img = data.image(i).double()
        except ImageError as exc:
            raise DataError(f"{exc} (an image of {data.name}, read for --normalize dataset); remove or "
                            f"replace it") from None
        s, q = img.sum((1, 2)), (img * img).sum((1, 2))
        total, sq = (s, q) if total is None else (total + s, sq + q)
        pixels += img.shape[1] * img.shape[2]
    mean = total / pixels
    std = (sq / pixels - mean * mean).clamp_min(0).sqrt()
    flat = (std < 1e-6).nonzero().flatten().tolist()
    if flat:
        raise DataError(f"--normalize dataset: channel {flat[0]} of the training images ({data.name}) is constant "
                        f"({float(mean[flat[0]]):.4g}), so it cannot be scaled; use --normalize none")
    return Normalization("dataset", tuple(float(m) for m in mean), tuple(float(s) for s in std))


def normalization(mode: str, data, channels: int, seed: int) -> Normalization | None:
    """The normalisation `--normalize mode` asks for (None for none)."""
    if mode not in NORMALIZE:
        raise DataError(f"--normalize {mode}: use one of {', '.join(NORMALIZE)}")
    if mode == "none":
        return None
    return imagenet(channels) if mode == "imagenet" else estimate(data, seed)


def recorded(extra: dict | None) -> Normalization | None:
    """The normalisation a checkpoint's `extra` records (None when it trained without)."""
    entry = (extra or {}).get("normalize")
    if not isinstance(entry, dict) or entry.get("mode") in (None, "none"):
        return None
    return Normalization(str(entry["mode"]), tuple(float(m) for m in entry["mean"]),
                         tuple(float(s) for s in entry["std"]))
