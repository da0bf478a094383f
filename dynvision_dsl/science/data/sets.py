"""Labelled image sets: scikit-learn's handwritten digits, held in memory (they ship
inside the package and are tiny), or the user's folder, streamed: an `ImageFolder`
holds file paths and labels only and decodes an image when it is asked for it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ... import stimuli
from ...errors import DataError  # noqa: F401 (re-exported: sets.DataError)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}




@dataclass
class Dataset:
    """Images (N, C, H, W) in [0, 1] held in memory, integer labels (N,) and class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor, suffix: str) -> "Dataset":
        return Dataset(self.images[index], self.labels[index], self.classes, f"{self.name}:{suffix}")

    def image(self, i: int, native: bool = False) -> torch.Tensor:
        """Image `i` (C, H, W); held at the model's size, so `native` changes nothing."""
        return self.images[i]

    def stack(self, index: torch.Tensor) -> torch.Tensor:
        """Images `index` as one (n, C, H, W) tensor."""
        return self.images[index]


@dataclass
class ImageFolder:
    """Images under `root` read one at a time: `paths` (relative to root, a numpy array of str, so
    DataLoader workers share it without copying) and `labels` (N,), decoded at `shape` on demand."""

    root: Path
    paths: np.ndarray
    labels: torch.Tensor
    classes: list[str]
    name: str
    shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor, suffix: str) -> "ImageFolder":
        return ImageFolder(self.root, self.paths[index.numpy()], self.labels[index], self.classes,
                           f"{self.name}:{suffix}", self.shape)

    def image(self, i: int, native: bool = False) -> torch.Tensor:
        """Decode image `i`: at the model's (C, H, W), or with `native` at its own size
        (C, h, w). ImageError (stimuli) for a file that cannot be read."""
        path = self.root / str(self.paths[i])
        return stimuli.read_image(path, self.shape[0]) if native else stimuli.load_image(path, *self.shape)

    def stack(self, index: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.image(int(i)) for i in index]) if len(index) else torch.empty(0, *self.shape)


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


def folder(path: str | Path, shape: tuple[int, int, int], flag: str = "--data") -> ImageFolder:
    """Images under `path`: one sub-folder per class (`cats/1.png` has label `cats`), or, with
    no sub-folders, the images themselves in one class named after the folder. Only the file
    names are read here; DataError for a missing folder or one without images."""
    root = Path(path)
    if not root.is_dir():
        what = "a file" if root.exists() else "no folder"
        raise DataError(f"{flag} folder:{root}: {what} there; {flag} folder:PATH needs a directory of images "
                        f"(one sub-folder per class)")
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        groups = [(d.name, d) for d in subdirs] if subdirs else [(root.name, root)]
        paths, labels, classes = [], [], []
        for name, directory in groups:
            files = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                           and not p.name.startswith("."))
            if files:
                prefix = "" if directory == root else f"{directory.name}/"
                paths += [prefix + f for f in files]
                labels += [len(classes)] * len(files)
                classes.append(name)
    except OSError as exc:
        raise DataError(f"{flag} folder:{root}: cannot list {exc.filename or root}: {exc.strerror or exc}") from None
    if not paths:
        raise DataError(f"{flag} folder:{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder "
                        f"or its sub-folders")
    return ImageFolder(root, np.array(paths), torch.tensor(labels), classes, root.name, tuple(shape))


def load(source: str, shape: tuple[int, int, int], flag: str = "--data") -> Dataset | ImageFolder:
    """`digits`, `folder:PATH`, or a plain path to a folder."""
    if source == "digits":
        return digits(shape)
    if source.startswith("folder:"):
        return folder(source[len("folder:"):], shape, flag)
    if Path(source).is_dir():
        return folder(source, shape, flag)
    raise DataError(f"unknown data '{source}' for {flag}: use 'digits' or 'folder:PATH'")


def split(data, test_fraction: float = 0.2, seed: int = 0):
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
