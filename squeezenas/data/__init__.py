"""Segmentation datasets behind one registry: CamVid, Cityscapes, a user's folder, generated street scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from squeezenas.data.base import (
    DATASETS, IGNORE_INDEX, DataError, DatasetInfo, PairTransform, Sample, SegmentationDataset,
)
from squeezenas.data import camvid, cityscapes, folder, synthetic  # noqa: F401  (register the datasets)
from squeezenas.data.palettes import CITYSCAPES_PALETTE, default_palette
from squeezenas.data.transforms import eval_transforms, train_transforms


def build_dataset(name: str, root: str | Path | None, split: str, *, transforms: PairTransform | None = None,
                  **kwargs: Any) -> SegmentationDataset:
    """The one way to make a dataset: ``name`` from DATASETS; ``transforms`` default to ``eval_transforms()``."""
    return DATASETS.get(name)(root, split, transforms=transforms, **kwargs)


def dataset_info(name: str, root: str | Path | None = None) -> DatasetInfo:
    """Classes, palette and ignore label of a dataset, without loading it (``folder`` needs ``root``)."""
    return DATASETS.get(name).dataset_info(root)


def palette_for(meta: dict, num_classes: int) -> Sequence[tuple[int, int, int]]:
    """Colours for a network's classes: its checkpoint's palette, else its dataset's (Cityscapes for the
    released networks), else a generated one."""
    if meta.get("palette"):
        return [tuple(c) for c in meta["palette"]]
    dataset = meta.get("dataset")
    if dataset == "cityscapes" and num_classes == len(CITYSCAPES_PALETTE):
        return CITYSCAPES_PALETTE
    if dataset in DATASETS:
        try:
            palette = dataset_info(dataset).palette
        except (ValueError, OSError, TypeError):  # a folder dataset needs its root to know its classes
            palette = ()
        if len(palette) >= num_classes:
            return palette
    return default_palette(num_classes)


__all__ = [
    "DATASETS", "IGNORE_INDEX", "DataError", "DatasetInfo", "Sample", "SegmentationDataset", "build_dataset",
    "dataset_info", "eval_transforms", "palette_for", "train_transforms",
]
