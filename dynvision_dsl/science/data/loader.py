"""Batches for training and evaluation. A folder streams through a
`torch.utils.data.DataLoader` (`workers` processes decode images on the fly, pinned
memory on a GPU); held-in-memory data without augmentation is indexed directly.

Every epoch's order comes from (seed, epoch) alone and the last incomplete batch is
dropped; under torchrun rank r takes every world-th image of each global batch
(`EpochSampler`, a DistributedSampler), so one process and a DDP job, a straight run
and a resumed one, see the same batches; with `augment` each image's crop depends on
(seed, epoch, index) alone, so the number of workers changes nothing either."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from ...errors import ImageError
from .sets import Dataset, DataError
from .transforms import augment, item_generator


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling of epoch `epoch` (1-based) depends on (seed, epoch) only."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (1 << 63))


def unreadable(message: str, data_name: str) -> DataError:
    """A DataError for an image that failed to decode while training or evaluating."""
    return DataError(f"{message} (an image of {data_name}); remove or replace it")


class EpochSampler(DistributedSampler):
    """This rank's share of every full global batch of an epoch: (index, epoch) keys, rank r
    taking every world-th key of each batch of `batch`, in an order set by (seed, epoch)."""

    def __init__(self, data, batch: int, world: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(data, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch = batch
        self.batches = len(data) // batch

    def __len__(self) -> int:
        return self.batches * (self.batch // self.num_replicas)

    def order(self) -> torch.Tensor:
        return torch.randperm(len(self.dataset), generator=epoch_generator(self.seed, self.epoch))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order()
        for b in range(self.batches):
            for i in order[b * self.batch + self.rank:(b + 1) * self.batch:self.num_replicas].tolist():
                yield i, self.epoch


class Items(torch.utils.data.Dataset):
    """What a DataLoader worker reads: (image, label, error) for a key, the image at the model's
    size (augmented when the key carries an epoch and `augment` is on), the error '' or the
    one line saying why the file could not be decoded (raised in the main process, see Loader)."""

    def __init__(self, data, augment: bool = False, seed: int = 0) -> None:
        self.data, self.augment, self.seed = data, augment, seed
        self.shape = tuple(data.shape) if hasattr(data, "shape") else tuple(data.images.shape[1:])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key) -> tuple[torch.Tensor, int, str]:
        index, epoch = key if isinstance(key, tuple) else (key, None)
        label = int(self.data.labels[index])
        try:
            if self.augment and epoch is not None:
                image = augment(self.data.image(index, native=True), self.shape[1:],
                                item_generator(self.seed, epoch, index))
            else:
                image = self.data.image(index)
        except ImageError as exc:
            return torch.zeros(self.shape), label, str(exc)
        return image, label, ""


class Batch(NamedTuple):
    """One batch on the device: its images' indices in the dataset, images and labels."""

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor


@dataclass
class Loader:
    """Batches of one dataset: shuffled shards for training (`sampler` set) or in order for evaluation."""

    data: object
    batch: int
    device: torch.device
    workers: int = 0
    sampler: EpochSampler | None = None
    augment: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.direct = isinstance(self.data, Dataset) and not self.augment
        self.images = self.data.images.to(self.device) if self.direct else None
        self.labels = self.data.labels.to(self.device) if self.direct else None
        self.loader = None if self.direct else self._data_loader()

    def _data_loader(self) -> DataLoader:
        cuda = self.device.type == "cuda"
        items = Items(self.data, self.augment, self.seed)
        if self.sampler is not None:
            keys = dict(batch_sampler=BatchSampler(self.sampler, self.batch // self.sampler.num_replicas, True))
        else:
            keys = dict(batch_size=self.batch, shuffle=False)
        return DataLoader(items, num_workers=self.workers, pin_memory=cuda, persistent_workers=self.workers > 0,
                          **keys)

    def __len__(self) -> int:
        return self.sampler.batches if self.sampler is not None else -(-len(self.data) // self.batch)

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """The epoch's batches (this rank's shard of each, for training)."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        if self.direct:
            yield from self._direct()
            return
        keys = iter(self.loader.batch_sampler)  # the keys of each batch, in the order the loader yields them
        for x, y, errors in self.loader:
            index = torch.tensor([k[0] if isinstance(k, tuple) else k for k in next(keys)])
            bad = next((e for e in errors if e), None)
            if bad is not None:
                raise unreadable(bad, self.data.name)
            yield Batch(index, x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))

    def _direct(self) -> Iterator[Batch]:
        if self.sampler is None:
            for start in range(0, len(self.data), self.batch):
                index = torch.arange(start, min(start + self.batch, len(self.data)))
                yield Batch(index, self.images[start:start + self.batch], self.labels[start:start + self.batch])
            return
        for keys in BatchSampler(self.sampler, self.batch // self.sampler.num_replicas, True):
            index = torch.tensor([k[0] for k in keys])
            on = index.to(self.device)
            yield Batch(index, self.images[on], self.labels[on])

    def global_batch(self, b: int) -> torch.Tensor:
        """Indices of global batch `b` (0-based) of the current epoch, every rank's share."""
        return self.sampler.order()[b * self.batch:(b + 1) * self.batch]


def train_loader(data, batch: int, device: torch.device, *, world: int = 1, rank: int = 0, seed: int = 0,
                 workers: int = 0, augment: bool = False) -> Loader:
    """Shuffled batches of `batch` images over all ranks (this rank's shard of each)."""
    return Loader(data, batch, device, workers, EpochSampler(data, batch, world, rank, seed), augment, seed)


def eval_loader(data, batch: int, device: torch.device, workers: int = 0) -> Loader:
    """Every image of `data` once, in order, in batches of `batch`, never augmented."""
    return Loader(data, batch, device, workers)
