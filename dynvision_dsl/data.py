"""The old home of the image sets, kept so `from dynvision_dsl import data` works;
they live in `dynvision_dsl.science.data` (sets, streaming loaders, transforms)."""
from .science.data.sets import IMAGE_SUFFIXES, Dataset, DataError, ImageFolder, digits, folder, load, split  # noqa: F401
