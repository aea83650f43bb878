"""Cityscapes in its official layout: labelIds → the 19 train ids, plus the 7 categories for category mIoU."""

from __future__ import annotations

from pathlib import Path

from squeezenas.data.base import (
    DATASETS, DataError, DatasetInfo, FileDataset, PairTransform, Sample, make_label_map, require_dir,
    require_nonempty,
)
from squeezenas.data.palettes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE

# labelId → trainId for the 19 evaluated classes (cityscapesScripts' labels.py); every other id is ignored.
LABEL_TO_TRAIN_ID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
NUM_LABEL_IDS = 34  # ids 0..33 are defined; the license plate (-1) is stored as 255

CITYSCAPES_CATEGORIES: tuple[str, ...] = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
# category of each train id: road, sidewalk | building, wall, fence | pole, light, sign | vegetation, terrain |
# sky | person, rider | car, truck, bus, train, motorcycle, bicycle
CITYSCAPES_CLASS_TO_CATEGORY: tuple[int, ...] = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6)

CITYSCAPES_INFO = DatasetInfo(
    CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, categories=CITYSCAPES_CATEGORIES,
    class_to_category=CITYSCAPES_CLASS_TO_CATEGORY,
)
SPLITS = ("train", "val", "test")


@DATASETS.register("cityscapes")
class Cityscapes(FileDataset):
    """Fine annotations: ``leftImg8bit/{split}/{city}/*_leftImg8bit.png`` with ``gtFine/.../*_gtFine_labelIds.png``."""

    info = CITYSCAPES_INFO

    def __init__(self, root: str | Path | None, split: str = "train", transforms: PairTransform | None = None):
        self.root = require_dir(root, "Cityscapes")
        self.split = split
        files = find_pairs(self.root, split)
        require_nonempty(files, self.root / "leftImg8bit" / split, split)
        ignored = [i for i in range(NUM_LABEL_IDS) if i not in LABEL_TO_TRAIN_ID] + [255]
        super().__init__(files, make_label_map(LABEL_TO_TRAIN_ID, ignored), transforms)



def find_pairs(root: Path, split: str) -> list[Sample]:
    """Every image of the split with its labelIds file, sorted by city then name."""
    if split not in SPLITS:
        raise DataError(f"unknown Cityscapes split {split!r} (known: {', '.join(SPLITS)})")
    image_dir = root / "leftImg8bit" / split
    if not image_dir.is_dir():
        raise DataError(f"Cityscapes image folder not found: {image_dir}")
    samples = []
    for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
        stem = image.name[: -len("_leftImg8bit.png")]
        mask = root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
        if not mask.is_file():
            raise DataError(f"label file not found for {image}: {mask}")
        samples.append(Sample(image, mask))
    return samples
