"""A user's own data: ``images/`` and ``masks/`` paired by file stem, classes named in ``classes.yaml``.

Splits come from ``root/{split}/images|masks`` sub-folders if present, else from a list of stems in
``root/{split}.txt``, else the whole folder serves every split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from squeezenas.data.base import (
    DATASETS, IGNORE_INDEX, DataError, DatasetInfo, FileDataset, PairTransform, Sample, make_label_map,
    require_dir, require_nonempty,
)
from squeezenas.data.palettes import default_palette
from squeezenas.utils.config import ConfigError, from_dict, load_mapping

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CLASSES_FILE = "classes.yaml"


@dataclass(frozen=True)
class FolderClasses:
    """The contents of ``classes.yaml``."""

    classes: tuple[str, ...]  # class names; label value i in the masks is class i
    ignore_index: int = IGNORE_INDEX  # label value that marks unlabelled pixels (remapped to 255)
    palette: tuple[tuple[int, int, int], ...] | None = None  # RGB per class; a generated one if absent


@DATASETS.register("folder")
class FolderDataset(FileDataset):
    """Images and masks from a folder tree described in the module docstring."""

    def __init__(self, root: str | Path | None, split: str = "train", transforms: PairTransform | None = None):
        self.root = require_dir(root, "folder dataset")
        self.split = split
        spec = read_classes(self.root / CLASSES_FILE)
        self.info = info_from(spec)
        files, where = find_split(self.root, split)
        require_nonempty(files, where, split)
        label_map = make_label_map({i: i for i in range(len(spec.classes))}, ignored=(spec.ignore_index,))
        super().__init__(files, label_map, transforms)

    @classmethod
    def dataset_info(cls, root: str | Path | None = None) -> DatasetInfo:
        return info_from(read_classes(require_dir(root, "folder dataset") / CLASSES_FILE))


def read_classes(path: Path) -> FolderClasses:
    """Load and check ``classes.yaml``; unknown keys and bad values are errors naming the file."""
    try:
        spec = from_dict(FolderClasses, load_mapping(path), where=str(path))
    except FileNotFoundError:
        raise DataError(f"class list not found: {path} (write 'classes: [name, ...]' there)") from None
    n = len(spec.classes)
    if not 1 <= n <= 255:
        raise ConfigError(f"{path}: expected 1 to 255 classes, got {n}")
    repeated = sorted({c for c in spec.classes if spec.classes.count(c) > 1})
    if repeated:
        raise ConfigError(f"{path}: class names must be distinct; repeated: {', '.join(map(repr, repeated))}")
    if not n <= spec.ignore_index <= 255:
        raise ConfigError(f"{path}: ignore_index {spec.ignore_index} must lie in {n}..255, outside the class ids 0..{n - 1}")
    if spec.palette is not None:
        if len(spec.palette) != n:
            raise ConfigError(f"{path}: palette has {len(spec.palette)} colours for {n} classes")
        if any(not 0 <= c <= 255 for rgb in spec.palette for c in rgb):
            raise ConfigError(f"{path}: palette values must lie in 0..255")
    return spec


def info_from(spec: FolderClasses) -> DatasetInfo:
    return DatasetInfo(tuple(spec.classes), spec.palette or default_palette(len(spec.classes)))


def find_split(root: Path, split: str) -> tuple[list[Sample], Path]:
    """The split's samples and where they were looked for (for error messages)."""
    split_dir = root / split
    if split_dir.is_dir():
        return pair_by_stem(split_dir / "images", split_dir / "masks"), split_dir
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        return pair_by_stem(root / "images", root / "masks", read_stems(list_file), list_file), list_file
    return pair_by_stem(root / "images", root / "masks"), root / "images"


def read_stems(list_file: Path) -> list[str]:
    """One file stem per line (a name with a suffix is accepted; blank lines are skipped)."""
    return [Path(line.strip()).stem for line in list_file.read_text().splitlines() if line.strip()]


def pair_by_stem(image_dir: Path, mask_dir: Path, stems: list[str] | None = None, list_file: Path | None = None) -> list[Sample]:
    """Pair every image (or the listed stems) with ``mask_dir/<stem>.png``."""
    images = index_images(image_dir)
    if stems is None:
        stems = sorted(images)
    samples = []
    for stem in stems:
        if stem not in images:
            raise DataError(f"{list_file}: no image named {stem!r} in {image_dir}")
        mask = mask_dir / f"{stem}.png"
        if not mask.is_file():
            raise DataError(f"mask not found for {images[stem]}: expected {mask}")
        samples.append(Sample(images[stem], mask))
    return samples


def index_images(image_dir: Path) -> dict[str, Path]:
    """Stem → image path; two images with one stem are ambiguous and an error."""
    if not image_dir.is_dir():
        raise DataError(f"image folder not found: {image_dir}")
    images: dict[str, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in images:
            raise DataError(f"two images share the stem {path.stem!r}: {images[path.stem]} and {path}")
        images[path.stem] = path
    return images
