"""Tiny fake dataset trees written into tmp_path, and helpers to write images and labels."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def save_rgb(path: Path, h: int = 12, w: int = 16, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(pixels).save(path)
    return path


def save_label(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(labels, dtype=np.uint8), mode="L").save(path)
    return path


def pattern(h: int, w: int, values: list[int]) -> np.ndarray:
    """A label map cycling through ``values`` (so every value occurs)."""
    return np.resize(np.array(values, np.uint8), h * w).reshape(h, w)


@pytest.fixture
def write() -> SimpleNamespace:
    """The helpers above, for tests (a fixture, so no test imports this conftest by name)."""
    return SimpleNamespace(rgb=save_rgb, label=save_label, pattern=pattern)


@pytest.fixture
def fake_camvid(tmp_path: Path) -> Path:
    """SegNet layout: train (2 images, one .png), val (1), test (1); labels use all of 0..11."""
    root = tmp_path / "camvid"
    for split, names in {"train": ["a", "b"], "val": ["c"], "test": ["d"]}.items():
        lines = []
        for i, name in enumerate(names):
            suffix = ".png" if name == "b" else ".jpg"
            save_rgb(root / split / f"{name}{suffix}", seed=i)
            save_label(root / f"{split}annot" / f"{name}.png", pattern(12, 16, list(range(12))))
            lines.append(f"{split}/{name}{suffix} {split}annot/{name}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def fake_cityscapes(tmp_path: Path) -> Path:
    """Official layout: two cities in train, one in val; labelIds cover 0..33 and 255."""
    root = tmp_path / "cityscapes"
    for split, cities in {"train": ["aachen", "bochum"], "val": ["frankfurt"]}.items():
        for city in cities:
            for k in range(2):
                stem = f"{city}_000000_00001{k}"
                save_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", h=8, w=16, seed=k)
                save_label(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
                           pattern(8, 16, list(range(34)) + [255]))
    return root


@pytest.fixture
def fake_folder(tmp_path: Path) -> Path:
    """A user's folder: three classes, ignore label 9, four samples (mixed .png/.jpg), no splits."""
    root = tmp_path / "mydata"
    for i, stem in enumerate(["s0", "s1", "s2", "s3"]):
        save_rgb(root / "images" / f"{stem}{'.jpg' if i % 2 else '.png'}", seed=i)
        save_label(root / "masks" / f"{stem}.png", pattern(12, 16, [0, 1, 2, 9]))
    (root / "classes.yaml").write_text("classes: [road, car, tree]\nignore_index: 9\n")
    return root
