"""Labelled images for training and experiments: scikit-learn's handwritten
digits (they ship inside the package: no download) or the user's own folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class Dataset:
    """Images (N, C, H, W) in [0, 1] with integer labels (N,) and class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor, suffix: str) -> "Dataset":
        return Dataset(self.images[index], self.labels[index], self.classes, f"{self.name}:{suffix}")


def _fit(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Resize (N, c, h, w) to the model's (C, H, W): bilinear, grey replicated to C channels."""
    c, h, w = shape
    if images.shape[-2:] != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False)
    if images.shape[1] != c:
        images = images.mean(1, keepdim=True).expand(-1, c, -1, -1)
    return images.clamp(0, 1).contiguous()


def digits(shape: tuple[int, int, int]) -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8, 10 classes), up-sampled to `shape`."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise RuntimeError("the digits need scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    return Dataset(_fit(images, shape), labels, [str(i) for i in range(10)], "digits")


def folder(path: str | Path, shape: tuple[int, int, int]) -> Dataset:
    """Images under `path`: one sub-folder per class (`cats/1.png` has label `cats`),
    or, with no sub-folders, the images themselves in one class named after the folder."""
    from .stimuli import load_image

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder at {root}; --data folder:PATH needs a directory of images "
                                f"(one sub-folder per class)")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(d.name, d) for d in subdirs] if subdirs else [(root.name, root)]
    images, labels, classes = [], [], []
    for label, (name, directory) in enumerate(groups):
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        classes.append(name)
        for file in files:
            images.append(load_image(file, *shape))
            labels.append(len(classes) - 1)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root} or its sub-folders")
    return Dataset(torch.stack(images), torch.tensor(labels), classes, root.name)


def load(source: str, shape: tuple[int, int, int]) -> Dataset:
    """`digits`, `folder:PATH`, or a plain path to a folder."""
    if source == "digits":
        return digits(shape)
    if source.startswith("folder:"):
        return folder(source[len("folder:"):], shape)
    if Path(source).is_dir():
        return folder(source, shape)
    raise ValueError(f"unknown data '{source}': use 'digits' or 'folder:PATH'")


def split(data: Dataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A stratified, seeded train/test split: the same held-out images on every run."""
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in range(len(data.classes)):
        idx = (data.labels == label).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = torch.cat(train).sort().values, torch.cat(test).sort().values
    return data.subset(train_idx, "train"), data.subset(test_idx, "test")
