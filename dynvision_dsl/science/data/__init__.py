"""Data for training and experiments: image sets (`sets`: digits in memory, a folder
streamed), batches (`loader`), augmentation and normalisation (`transforms`), and
`prepare`, which turns the `dynv train` data flags into training and held-out sets.

    options = DataOptions("folder:imagenet100/train", val_data="folder:imagenet100/val",
                          workers=4, augment=True, normalize="dataset")
    prepared = prepare(options, (3, 224, 224), test_fraction=0.2, seed=0)
"""
from __future__ import annotations

from dataclasses import dataclass

from .loader import Batch, EpochSampler, Loader, epoch_generator, eval_loader, train_loader  # noqa: F401
from .sets import IMAGE_SUFFIXES, Dataset, DataError, ImageFolder, digits, folder, load, split  # noqa: F401
from .transforms import NORMALIZE, Normalization, normalization, recorded  # noqa: F401


@dataclass(frozen=True)
class DataOptions:
    """The data flags of `dynv train`."""

    data: str = "digits"
    val_data: str | None = None  # a separate held-out folder; None: split `data` by test_fraction
    workers: int = 0  # DataLoader processes decoding images (0: in the training process)
    augment: bool = False  # random resized crop + horizontal flip of training images
    normalize: str = "none"  # none, imagenet or dataset

    def check(self) -> None:
        """DataError for a flag value that cannot work, before anything is read."""
        if self.workers < 0:
            raise DataError(f"--workers must be 0 or more, got {self.workers}")
        if self.normalize not in NORMALIZE:
            raise DataError(f"--normalize {self.normalize}: use one of {', '.join(NORMALIZE)}")


@dataclass
class Prepared:
    """Training and held-out images, the normalisation the model applies, and the data's name."""

    train: Dataset | ImageFolder
    test: Dataset | ImageFolder
    classes: list[str]
    name: str
    normalization: Normalization | None


def prepare(options: DataOptions, shape: tuple[int, int, int], test_fraction: float, seed: int) -> Prepared:
    """Load `options.data` (and `val_data`), split it unless a held-out folder is given,
    and settle the normalisation; DataError for data that cannot train a model."""
    options.check()
    data = load(options.data, shape)
    if len(data.classes) < 2:
        raise DataError(f"the data ({data.name}) has one class ({data.classes[0]}); training needs one "
                        f"sub-folder per class, at least two")
    if options.val_data is None:
        train, test = split(data, test_fraction, seed)
    else:
        train, test = data, load(options.val_data, shape, flag="--val-data")
        if test.classes != data.classes:
            raise DataError(f"--val-data {options.val_data} has classes {_names(test.classes)} but --data "
                            f"{options.data} has {_names(data.classes)}; give both the same class sub-folders")
    norm = normalization(options.normalize, train, shape[0], seed)
    return Prepared(train, test, list(data.classes), data.name, norm)


def _names(classes: list[str], shown: int = 5) -> str:
    return ", ".join(classes[:shown]) + (", ..." if len(classes) > shown else "")
