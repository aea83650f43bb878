"""The user's-folder dataset: classes.yaml, the three ways to split, ignore remapping, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from squeezenas.data import DataError, build_dataset, dataset_info
from squeezenas.data.palettes import default_palette
from squeezenas.utils.config import ConfigError


def test_whole_folder_serves_every_split(fake_folder: Path):
    for split in ("train", "val"):
        ds = build_dataset("folder", fake_folder, split)
        assert [f.image.name for f in ds.files] == ["s0.png", "s1.jpg", "s2.png", "s3.jpg"]
    assert ds.classes == ("road", "car", "tree") and ds.palette == default_palette(3)


def test_ignore_index_is_remapped_to_255(fake_folder: Path):
    _, mask = build_dataset("folder", fake_folder, "train")[0]
    assert mask.dtype == torch.int64 and sorted(mask.unique().tolist()) == [0, 1, 2, 255]


def test_split_list_of_stems(fake_folder: Path):
    (fake_folder / "val.txt").write_text("s3\ns1.jpg\n\n")
    ds = build_dataset("folder", fake_folder, "val")
    assert [f.image.stem for f in ds.files] == ["s3", "s1"]
    assert len(build_dataset("folder", fake_folder, "train")) == 4  # no train.txt: the whole folder
    (fake_folder / "val.txt").write_text("s9\n")
    with pytest.raises(DataError, match=r"val\.txt: no image named 's9'"):
        build_dataset("folder", fake_folder, "val")


def test_split_sub_folders(fake_folder: Path, write):
    write.rgb(fake_folder / "test" / "images" / "t0.jpg")
    write.label(fake_folder / "test" / "masks" / "t0.png", write.pattern(12, 16, [1]))
    ds = build_dataset("folder", fake_folder, "test")
    assert [f.image.name for f in ds.files] == ["t0.jpg"]
    (fake_folder / "val" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"split 'val' is empty.*mydata/val"):
        build_dataset("folder", fake_folder, "val")


def test_palette_and_dataset_info(fake_folder: Path):
    (fake_folder / "classes.yaml").write_text("classes: [a, b]\npalette: [[1, 2, 3], [4, 5, 6]]\n")
    info = dataset_info("folder", fake_folder)
    assert info.classes == ("a", "b") and info.palette == ((1, 2, 3), (4, 5, 6)) and info.ignore_index == 255
    with pytest.raises(DataError, match="--data-root"):
        dataset_info("folder")


@pytest.mark.parametrize("text,message", [
    ("classes: [a, b]\nignore: 9\n", r"unknown key 'ignore'; did you mean 'ignore_index'"),
    ("classes: [a, b]\npalette: [[1, 2, 3]]\n", "palette has 1 colours for 2 classes"),
    ("classes: [a, b]\nignore_index: 1\n", "ignore_index 1 must lie in 2..255"),
    ("classes: []\n", "expected 1 to 255 classes"),
    ("ignore_index: 9\n", "classes"),
])
def test_bad_classes_file_names_it(fake_folder: Path, text: str, message: str):
    (fake_folder / "classes.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        build_dataset("folder", fake_folder, "train")
    assert "classes.yaml" in str(err.value)


def test_missing_classes_file(fake_folder: Path):
    (fake_folder / "classes.yaml").unlink()
    with pytest.raises(DataError, match=r"class list not found: .*classes\.yaml"):
        build_dataset("folder", fake_folder, "train")


def test_missing_mask_and_duplicate_stem(fake_folder: Path, write):
    (fake_folder / "masks" / "s2.png").unlink()
    with pytest.raises(DataError, match=r"mask not found for .*s2\.png: expected .*masks/s2\.png"):
        build_dataset("folder", fake_folder, "train")
    write.rgb(fake_folder / "images" / "s0.jpg")
    with pytest.raises(DataError, match=r"two images share the stem 's0'"):
        build_dataset("folder", fake_folder, "train")


def test_missing_images_folder(fake_folder: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "classes.yaml").write_text("classes: [a]\n")
    with pytest.raises(DataError, match=r"image folder not found: .*empty/images"):
        build_dataset("folder", tmp_path / "empty", "train")


def test_values_outside_classes_name_file(fake_folder: Path, write):
    write.label(fake_folder / "masks" / "s1.png", write.pattern(12, 16, [0, 3, 255]))
    with pytest.raises(DataError, match=r"s1\.png holds values that are neither a class nor ignore: 3, 255$"):
        build_dataset("folder", fake_folder, "train")[1]
