"""The dataset contract, the dataset registry, and image/label reading with errors that name the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from squeezenas.data.constants import IGNORE_INDEX
from squeezenas.utils.registry import Registry

Palette = tuple[tuple[int, int, int], ...]
PairTransform = Callable[[Any, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class DataError(ValueError):
    """A dataset file or folder is missing, unreadable or holds values it should not."""


@dataclass(frozen=True)
class DatasetInfo:
    """What predict/eval need to know about a dataset without reading its images."""

    classes: tuple[str, ...]
    palette: Palette
    ignore_index: int = IGNORE_INDEX
    categories: tuple[str, ...] | None = None  # coarse groups of classes (Cityscapes: 7), if any
    class_to_category: tuple[int, ...] | None = None  # category index of every class

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Sample:
    """One image file and its label file."""

    image: Path
    mask: Path


class SegmentationDataset(Dataset):
    """Base of every dataset: ``ds[i]`` is ``(image, mask)`` after ``transforms``.

    Subclasses set ``info`` and implement ``__len__``, ``load_raw`` and ``image_path``. ``load_raw`` gives the
    untransformed picture (for prediction pictures and full-resolution evaluation) and its mask with labels
    already mapped to ``0..num_classes-1`` and ``IGNORE_INDEX``.
    """

    info: DatasetInfo
    files: tuple[Sample, ...] = ()  # the image/label files, empty for generated data

    def __init__(self, transforms: PairTransform | None = None):
        if transforms is None:
            from squeezenas.data.transforms import eval_transforms

            transforms = eval_transforms()
        self.transforms = transforms

    @classmethod
    def dataset_info(cls, root: str | Path | None = None) -> DatasetInfo:
        """Classes, palette and ignore label, without reading any data (``root`` matters for user datasets)."""
        return cls.info

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def palette(self) -> Palette:
        return self.info.palette

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def ignore_index(self) -> int:
        return self.info.ignore_index

    def __len__(self) -> int:
        return len(self.files)

    def load_raw(self, index: int) -> tuple[Image.Image | torch.Tensor, torch.Tensor]:
        """The RGB picture (PIL image or uint8 (3,H,W) tensor) and its uint8 (H,W) train-id mask."""
        raise NotImplementedError

    def image_path(self, index: int) -> Path | None:
        """The image file behind ``index`` (None for generated data)."""
        return self.files[index].image if self.files else None

    def sample_name(self, index: int) -> str:
        """A short unique name for output files (the image file's stem)."""
        path = self.image_path(index)
        return path.stem if path is not None else f"{index:06d}"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        image, mask = self.load_raw(index % len(self))
        return self.transforms(image, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(samples={len(self)}, classes={self.num_classes})"


class FileDataset(SegmentationDataset):
    """A dataset of image/label file pairs whose raw label values go through a 256-entry lookup table."""

    def __init__(self, files: Sequence[Sample], label_map: np.ndarray, transforms: PairTransform | None = None):
        super().__init__(transforms)
        self.files = tuple(files)
        self.label_map = label_map  # raw value → train id, or -1 for values that must not occur

    def load_raw(self, index: int) -> tuple[Image.Image, torch.Tensor]:
        sample = self.files[index]
        image = read_image(sample.image)
        raw = read_label(sample.mask)
        check_same_size(sample.image, image.size[::-1], sample.mask, raw.shape)
        return image, torch.from_numpy(remap_labels(raw, self.label_map, sample.mask))


DATASETS: Registry[type[SegmentationDataset]] = Registry("dataset")


def read_image(path: Path) -> Image.Image:
    """Open an image fully as 8-bit RGB; a corrupt or unreadable file, or a mode that cannot be shown as 8-bit
    RGB, is a DataError naming it. 16-bit greyscale (PNG mode I;16 and its kin) is scaled to 8 bits."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not inside a transform
            return _as_rgb8(img, path)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot read image {path}: {e}") from None


def _as_rgb8(img: Image.Image, path: Path) -> Image.Image:
    """``convert("RGB")`` clips 16-bit values to 255 (an all-white picture): scale them instead."""
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img).astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(f"image {path}: mode {img.mode} with values outside 0..65535; save it as 8- or 16-bit")
        return Image.fromarray(((arr + 128) // 257).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        raise DataError(f"image {path}: mode F (32-bit float) is not an image format the networks read; "
                        "save it as 8- or 16-bit")
    return img.convert("RGB")


def read_label(path: Path) -> np.ndarray:
    """A single-channel label image as a uint8 (H,W) array of raw label values."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except FileNotFoundError:
        raise DataError(f"label image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read label image {path}: {e}") from None
    if arr.ndim != 2:
        raise DataError(f"label image {path} has mode {mode} with {arr.shape[-1]} channels; "
                        "expected a single-channel (L or P) image of class indices")
    if arr.dtype != np.uint8:
        if arr.min() < 0 or arr.max() > 255:
            bad = np.unique(arr[(arr < 0) | (arr > 255)])
            raise DataError(f"label image {path} holds values outside 0..255: {_show(bad)}")
        arr = arr.astype(np.uint8)
    return arr


def check_same_size(image_path: Path, image_hw: tuple[int, int], mask_path: Path, mask_hw: tuple[int, ...]) -> None:
    """Images and labels must align pixel for pixel."""
    if tuple(image_hw) != tuple(mask_hw):
        raise DataError(f"size mismatch: image {image_path} is {_hw(image_hw)} but label {mask_path} is {_hw(mask_hw)}")


def make_label_map(valid: dict[int, int], ignored: Sequence[int] = (IGNORE_INDEX,)) -> np.ndarray:
    """A lookup table raw value → train id; ``ignored`` values map to IGNORE_INDEX, all others are invalid (-1)."""
    table = np.full(256, -1, dtype=np.int16)
    for raw in ignored:
        table[raw] = IGNORE_INDEX
    for raw, train_id in valid.items():
        table[raw] = train_id
    return table


def remap_labels(raw: np.ndarray, label_map: np.ndarray, path: Path) -> np.ndarray:
    """Apply ``label_map``; values it marks invalid are a DataError naming the file and the values."""
    mapped = label_map[raw]
    if (mapped < 0).any():
        bad = np.unique(raw[mapped < 0])
        raise DataError(f"label image {path} holds values that are neither a class nor ignore: {_show(bad)}")
    return mapped.astype(np.uint8)


def require_dir(path: str | Path | None, what: str) -> Path:
    """A data root that must exist; the error says how to point at it."""
    if path is None:
        raise DataError(f"no data root given for {what}; pass --data-root PATH (or data.root in the config)")
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{what} data root not found: {path}; pass --data-root PATH (or data.root in the config)")
    return path


def require_nonempty(files: Sequence[Any], where: Path | str, split: str) -> None:
    if not files:
        raise DataError(f"split {split!r} is empty: no samples found in {where}")


def _show(values: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _hw(hw: Sequence[int]) -> str:
    return f"{hw[0]}×{hw[1]} (H×W)"
