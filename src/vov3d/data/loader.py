"""DataLoader construction (spec §8.1): samplers, worker seeding, epochs.

* Shuffling uses a DistributedSampler in every case (one replica without a process group), so
  the order depends only on (seed, epoch) and multi-process training needs no other code path.
* The sampler yields ``(epoch, index)`` pairs, so the dataset knows the epoch inside workers even
  with ``persistent_workers=True`` (a ``dataset.set_epoch`` in the main process would not reach
  them).
* Worker processes: PyTorch (>= 1.9) seeds each one's ``random``, NumPy and torch generators from
  a base seed drawn from the loader's generator every epoch, plus the worker id, so third-party code
  that uses them gets new streams per worker and epoch. The original's streams repeated on the
  PyTorch 1.6 it used (§11.17); no worker_init_fn is needed for this any more, and our datasets use
  no global generator.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class EpochSampler(Sampler):
    """Wraps a sampler with ``set_epoch`` and yields ``(epoch, index)`` pairs."""

    def __init__(self, sampler: DistributedSampler) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sampler.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in self.sampler:
            yield epoch, index

    def __len__(self) -> int:
        return len(self.sampler)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    drop_last: bool,
    num_workers: int = 0,
    seed: int = 0,
    distributed: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """A DataLoader over `dataset` whose batches depend only on (seed, epoch).

    `batch_size` is per process (the original's BATCH_SIZE / NUM_GPUS). train: shuffle=True,
    drop_last=True; val/test: shuffle=False, drop_last=False (§8.1). With `distributed`, the
    process group gives the replica count and rank unless passed; without, there is one replica.
    Call :func:`set_epoch` before each epoch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not distributed:
        num_replicas, rank = 1, 0
    sampler = DistributedSampler(
        dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    generator = torch.Generator()
    generator.manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(sampler),
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        collate_fn=collate_fn,
        **kwargs,
    )
    set_epoch(loader, 0)
    return loader


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Select the epoch of a loader from :func:`build_loader` (shuffle order and augmentation)."""
    sampler = loader.sampler
    if isinstance(sampler, EpochSampler) or hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)


def count_failures(meta: dict[str, Any]) -> int:
    """Bad samples behind a collated batch's meta (each was logged, then replaced or reported)."""
    failures = meta.get("failures", 0)
    if isinstance(failures, torch.Tensor):
        return int(failures.sum())
    if isinstance(failures, (list, tuple)):
        return int(sum(failures))
    return int(failures)
