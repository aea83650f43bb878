"""DataLoaders for training and evaluation: sharding over processes, per-epoch seeding, clean data errors.

A dataset error (corrupt image, mask of another size, label out of range) raised inside a DataLoader worker
would reach the user as the worker's traceback pasted into a message. Instead the dataset is wrapped so a
failing sample becomes a ``LoadFailure`` value that travels through the worker queue, and ``batches`` raises
it in the main process as a plain ``DataError`` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset, default_collate

from squeezenas.data import DataError, build_dataset, eval_transforms, train_transforms
from squeezenas.data.base import SegmentationDataset
from squeezenas.engine.distributed import DistInfo, ShardSampler


@dataclass(frozen=True)
class LoadFailure:
    """A sample that could not be loaded, and why (stands in for the batch it belongs to)."""

    message: str


class CatchDataErrors(Dataset):
    """``dataset[i]``, or a ``LoadFailure`` when it raises DataError."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except DataError as e:
            return LoadFailure(str(e))


def collate(batch: list[Any]) -> Any:
    """default_collate, unless a sample failed: then the failure is the batch."""
    for item in batch:
        if isinstance(item, LoadFailure):
            return item
    return default_collate(batch)


def batches(loader: DataLoader) -> Iterator[Any]:
    """Iterate ``loader``, raising a failed sample's DataError here, in the main process."""
    for batch in loader:
        if isinstance(batch, LoadFailure):
            raise DataError(batch.message)
        yield batch


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch on one process: resuming at ``epoch`` redraws exactly the same augmentations."""
    return ((seed * 100_003 + epoch) * 1_009 + rank) % (2**63)


def build_train_dataset(name: str, root: str | Path | None, split: str, crop: tuple[int, int],
                        scale: tuple[float, float] = (0.5, 2.0), color_jitter: float = 0.0,
                        **options: Any) -> SegmentationDataset:
    """A dataset with the training augmentation: random scale, crop (padded with ignore), flip, colour jitter."""
    transforms = train_transforms(tuple(crop), tuple(scale), color_jitter=color_jitter)
    return build_dataset(name, root, split, transforms=transforms, **options)


def build_eval_dataset(name: str, root: str | Path | None, split: str, input_size: tuple[int, int] | None = None,
                       max_images: int | None = None, **options: Any) -> Dataset:
    """A dataset at full resolution; with ``input_size`` (H, W) the images are resized but the masks are not
    (the network runs smaller, the score stays at full resolution). ``max_images`` takes that many images
    evenly strided over the split (never its first N: consecutive video frames are nearly the same picture).
    ``options`` go to the dataset."""
    transforms = eval_transforms(tuple(input_size) if input_size else None, resize_mask=False)
    ds = build_dataset(name, root, split, transforms=transforms, **options)
    return Subset(ds, strided(len(ds), max_images)) if max_images and max_images < len(ds) else ds


def strided(total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(total)``, starting at 0."""
    n = min(n, total)
    return [i * total // n for i in range(n)]


def build_train_loader(dataset: Dataset, batch_size: int, workers: int, seed: int = 0,
                       dist: DistInfo = DistInfo(), pin_memory: bool = False) -> DataLoader:
    """Shuffled batches of ``batch_size`` per process (incomplete last batch dropped: BatchNorm needs > 1).

    Each process reads its own 1/world of the shuffled split (DistributedSampler, also with one process, so
    the order depends on (seed, epoch) only). Call ``set_epoch`` before every epoch.
    """
    per_rank = len(dataset) // dist.world_size
    if per_rank < batch_size:
        raise DataError(f"the training split has {len(dataset)} samples: fewer than one batch of {batch_size} "
                        f"per process ({dist.world_size} process(es)); lower --batch-size")
    sampler = DistributedSampler(dataset, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed)
    return DataLoader(CatchDataErrors(dataset), batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate, pin_memory=pin_memory, drop_last=True, generator=torch.Generator())


def build_shuffled_loader(dataset: Dataset, batch_size: int, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Batches of ``batch_size`` in a random order drawn from the loader's own generator (incomplete last batch
    dropped), for one process: reseed ``loader.generator`` to redraw an order, the worker seeds with it.

    The search trains on these (it draws a new order at every pass, see ``search.loop``) and scoring takes its
    BatchNorm batches from one; a failing sample is raised by ``batches`` as a DataError naming the file.
    """
    if len(dataset) < batch_size:
        raise DataError(f"the training data has {len(dataset)} samples, fewer than one batch of {batch_size}; "
                        "lower --batch-size")
    g = torch.Generator()
    return DataLoader(CatchDataErrors(dataset), batch_size=batch_size, sampler=RandomSampler(dataset, generator=g),
                      num_workers=workers, collate_fn=collate, pin_memory=pin_memory, drop_last=True, generator=g)


def set_epoch(loader: DataLoader, epoch: int, seed: int, rank: int = 0) -> None:
    """Reseed the sampling order and the augmentation (worker seeds, and the main process for workers=0)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    s = epoch_seed(seed, epoch, rank)
    if loader.generator is not None:
        loader.generator.manual_seed(s)
    torch.manual_seed(s)


def build_eval_loader(dataset: Dataset, workers: int = 2, dist: DistInfo = DistInfo(),
                      pin_memory: bool = False) -> DataLoader:
    """Batch 1 in order (images may differ in size); each process scores its shard, nothing is repeated."""
    if len(dataset) == 0:
        raise DataError("the evaluation split is empty")
    return DataLoader(CatchDataErrors(dataset), batch_size=1, sampler=ShardSampler(len(dataset), dist.rank, dist.world_size),
                      num_workers=workers, collate_fn=collate, pin_memory=pin_memory)
