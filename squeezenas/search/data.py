"""The search's batches: the training split (or a custom dataset) as shuffled global batches, with ``alternate``
a held-out part for θ, shared out over the processes of a torchrun search (``search.parallel``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from squeezenas.engine.distributed import DistInfo
from squeezenas.engine.loaders import batches, build_shuffled_loader
from squeezenas.search.config import SearchConfig
from squeezenas.utils.config import ConfigError


@dataclass
class SearchData:
    """The weights' loader and, with ``alternate``, the held-out loader for θ (this rank's slices of the global
    batches under torchrun: ``Replicas.shard``)."""

    loader: DataLoader
    theta_loader: DataLoader | None
    num_classes: int
    steps_per_epoch: int


def check_world(cfg: SearchConfig, info: DistInfo) -> None:
    """``batch_size`` is the global batch: it must split into equal per-process batches of at least 2."""
    n = info.world_size
    if n > 1 and (cfg.batch_size % n or cfg.batch_size // n < 2):
        raise ConfigError(f"batch_size {cfg.batch_size} is the global batch of the {n} processes: it must be a "
                          f"multiple of {n} with at least 2 images per process (BatchNorm), e.g. {2 * n}")


def build_data(cfg: SearchConfig, train_set: Dataset | None, num_classes: int | None) -> SearchData:
    """The loaders of one process over the whole global batch (``Replicas.shard`` cuts them for a rank)."""
    if train_set is None:
        from squeezenas.data import dataset_info
        from squeezenas.engine.loaders import build_train_dataset

        train_set = build_train_dataset(cfg.dataset, cfg.data_root, cfg.train_split, tuple(cfg.crop),
                                        tuple(cfg.scale), **cfg.data_options)
        num_classes = num_classes or dataset_info(cfg.dataset, cfg.data_root).num_classes
    num_classes = num_classes or getattr(train_set, "num_classes", None)
    if num_classes is None:
        raise ValueError("pass num_classes with a custom train_set")
    if cfg.limit_train is not None:
        train_set = Subset(train_set, range(min(cfg.limit_train, len(train_set))))
    pin = torch.cuda.is_available()
    theta_loader = None
    if cfg.alternate:  # a fixed random split: θ never sees the images the weights are trained on
        perm = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_hold = max(cfg.batch_size, int(round(cfg.holdout * len(train_set))))
        theta_loader = build_shuffled_loader(Subset(train_set, perm[:n_hold]), cfg.batch_size, cfg.workers, pin)
        train_set = Subset(train_set, perm[n_hold:])
    loader = build_shuffled_loader(train_set, cfg.batch_size, cfg.workers, pin)
    return SearchData(loader, theta_loader, int(num_classes), min(len(loader), cfg.steps_per_epoch or len(loader)))


def cycle(loader: DataLoader, seed: int) -> Iterator[Any]:
    """Endless batches from ``loader``, reseeded deterministically at every pass."""
    k = 0
    while True:
        loader.generator.manual_seed(seed + k)
        yield from batches(loader)
        k += 1
