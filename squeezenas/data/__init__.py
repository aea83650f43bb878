"""Segmentation datasets behind one registry: CamVid, Cityscapes, a user's folder, generated street scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from squeezenas.data.base import (
    DATASETS, IGNORE_INDEX, DataError, DatasetInfo, PairTransform, Sample, SegmentationDataset,
)
from squeezenas.data import camvid, cityscapes, folder, synthetic  # noqa: F401  (register the datasets)
from squeezenas.data.transforms import eval_transforms, train_transforms


def build_dataset(name: str, root: str | Path | None, split: str, *, transforms: PairTransform | None = None,
                  **kwargs: Any) -> SegmentationDataset:
    """The one way to make a dataset: ``name`` from DATASETS; ``transforms`` default to ``eval_transforms()``."""
    return DATASETS.get(name)(root, split, transforms=transforms, **kwargs)


def dataset_info(name: str, root: str | Path | None = None) -> DatasetInfo:
    """Classes, palette and ignore label of a dataset, without loading it (``folder`` needs ``root``)."""
    return DATASETS.get(name).dataset_info(root)


__all__ = [
    "DATASETS", "IGNORE_INDEX", "DataError", "DatasetInfo", "Sample", "SegmentationDataset", "build_dataset",
    "dataset_info", "eval_transforms", "train_transforms",
]
