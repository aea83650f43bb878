"""CamVid in the SegNet layout: ``{split}.txt`` lists of ``IMAGE LABEL`` paths, 11 classes, 11 = void."""

from __future__ import annotations

from pathlib import Path

from squeezenas.data.base import (
    DATASETS, DataError, DatasetInfo, FileDataset, PairTransform, Sample, make_label_map, require_dir,
    require_nonempty,
)
from squeezenas.data.palettes import CAMVID_CLASSES, CAMVID_PALETTE

CAMVID_INFO = DatasetInfo(CAMVID_CLASSES, CAMVID_PALETTE)
CAMVID_VOID = 11
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@DATASETS.register("camvid")
class CamVid(FileDataset):
    """CamVid (SegNet's 480×360 version): splits train/val/test; label 11 (void) and 255 become ignore."""

    info = CAMVID_INFO

    def __init__(self, root: str | Path | None, split: str = "train", transforms: PairTransform | None = None):
        self.root = require_dir(root, "CamVid")
        self.split = split
        files = read_split_list(self.root, self.root / f"{split}.txt")
        require_nonempty(files, self.root / f"{split}.txt", split)
        label_map = make_label_map({i: i for i in range(len(CAMVID_CLASSES))}, ignored=(CAMVID_VOID, 255))
        super().__init__(files, label_map, transforms)



def read_split_list(root: Path, list_file: Path) -> list[Sample]:
    """Parse a SegNet list file; every listed file must exist (see ``resolve_listed``)."""
    if not list_file.is_file():
        raise DataError(f"split list not found: {list_file}")
    samples = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{list_file}:{lineno}: expected 'IMAGE LABEL', got {line.strip()!r}")
        image = resolve_listed(root, parts[0], IMAGE_SUFFIXES)
        mask = resolve_listed(root, parts[1], (".png",))
        if image is None or mask is None:
            missing = parts[0] if image is None else parts[1]
            raise DataError(f"{list_file}:{lineno}: file not found: {missing} (looked under {root})")
        samples.append(Sample(image, mask))
    return samples


def resolve_listed(root: Path, listed: str, suffixes: tuple[str, ...]) -> Path | None:
    """Find a listed file: as given (absolute or relative to root), else ``root/<folder>/<name>``; any suffix.

    The original SegNet lists use absolute paths like ``/SegNet/CamVid/train/X.png``, and our copy holds
    the images as JPEG, so both the folder and the image suffix may differ from what the list says.
    """
    path = Path(listed)
    bases = [path if path.is_absolute() else root / path, root / path.parent.name / path.name]
    for base in bases:
        for candidate in [base] + [base.with_suffix(s) for s in suffixes if s != base.suffix]:
            if candidate.is_file():
                return candidate
    return None
