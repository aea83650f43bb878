"""Segmentation datasets behind one registry: CamVid, Cityscapes, a user's folder, generated street scenes."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Callable, Sequence

from squeezenas.data.base import (
    DATASETS, IGNORE_INDEX, DataError, DatasetInfo, PairTransform, Sample, SegmentationDataset,
)
from squeezenas.data import camvid, cityscapes, folder, synthetic  # noqa: F401  (register the datasets)
from squeezenas.data.palettes import CITYSCAPES_PALETTE, default_palette
from squeezenas.data.transforms import eval_transforms, train_transforms


def build_dataset(name: str, root: str | Path | None, split: str, *, transforms: PairTransform | None = None,
                  **kwargs: Any) -> SegmentationDataset:
    """The one way to make a dataset: ``name`` from DATASETS; ``transforms`` default to ``eval_transforms()``.
    ``split`` may carry a filter on the image file names (``split_filter``), e.g. ``train:without=0006R0*``."""
    base, keep = split_filter(split)
    ds = DATASETS.get(name)(root, base, transforms=transforms, **kwargs)
    if keep is not None:
        if not ds.files:
            raise DataError(f"split {split!r}: a filter on file names needs a dataset of files, not {name!r}")
        files = tuple(f for f in ds.files if keep(f.image.name))
        if not files or len(files) == len(ds.files):
            raise DataError(f"split {split!r}: keeps {len(files)} of the {len(ds.files)} images of {base!r} "
                            "(a pattern that matches none or all of them is a mistake)")
        ds.files = files
    return ds


def split_filter(split: str) -> tuple[str, Callable[[str], bool] | None]:
    """``SPLIT``, ``SPLIT:only=GLOB`` or ``SPLIT:without=GLOB`` → the split's name and which image file names to
    keep (None: all). For held-out parts of a split that are whole recordings, e.g. CamVid's drive 0006R0
    (``train:without=0006R0*`` to train on, ``train:only=0006R0*`` to score on): frames of one drive are nearly
    alike, so a random hold-out measures a seen drive."""
    if ":" not in split:
        return split, None
    base, _, rule = split.partition(":")
    mode, _, pattern = rule.partition("=")
    if mode not in ("only", "without") or not pattern or not base:
        raise DataError(f"split {split!r}: expected SPLIT, SPLIT:only=GLOB or SPLIT:without=GLOB "
                        "(GLOB over image file names, e.g. train:without=0006R0*)")
    only = mode == "only"
    return base, lambda filename: fnmatch.fnmatchcase(filename, pattern) == only


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
    "dataset_info", "eval_transforms", "palette_for", "split_filter", "train_transforms",
]
