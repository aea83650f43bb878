"""Cityscapes on a fake official tree: pairing, labelIds → trainIds, categories, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from squeezenas.data import DataError, build_dataset, dataset_info
from squeezenas.data.cityscapes import CITYSCAPES_CATEGORIES, CITYSCAPES_CLASS_TO_CATEGORY, LABEL_TO_TRAIN_ID
from squeezenas.data.palettes import CITYSCAPES_CLASSES


def test_pairs_sorted_by_city(fake_cityscapes: Path):
    ds = build_dataset("cityscapes", fake_cityscapes, "train")
    assert len(ds) == 4 and ds.num_classes == 19
    assert [f.image.parent.name for f in ds.files] == ["aachen", "aachen", "bochum", "bochum"]
    for f in ds.files:
        assert f.mask.name == f.image.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
    assert len(build_dataset("cityscapes", fake_cityscapes, "val")) == 2


def test_label_ids_become_train_ids(fake_cityscapes: Path):
    ds = build_dataset("cityscapes", fake_cityscapes, "val")
    image, mask = ds[0]
    assert image.shape == (3, 8, 16) and mask.shape == (8, 16) and mask.dtype == torch.int64
    raw = np.resize(np.array(list(range(34)) + [255], np.uint8), 8 * 16).reshape(8, 16)
    expected = np.vectorize(lambda v: LABEL_TO_TRAIN_ID.get(int(v), 255))(raw)
    assert torch.equal(mask, torch.from_numpy(expected).long())
    assert sorted(set(mask.unique().tolist()) - {255}) == list(range(19))


def test_official_table_spot_checks():
    # road 7→0, building 11→2, sky 23→10, person 24→11, bicycle 33→18; caravan 29 and trailer 30 are ignored
    assert [LABEL_TO_TRAIN_ID[i] for i in (7, 11, 23, 24, 33)] == [0, 2, 10, 11, 18]
    assert 29 not in LABEL_TO_TRAIN_ID and 30 not in LABEL_TO_TRAIN_ID
    assert sorted(LABEL_TO_TRAIN_ID.values()) == list(range(19))


def test_categories():
    info = dataset_info("cityscapes")
    assert info.classes == CITYSCAPES_CLASSES and info.categories == CITYSCAPES_CATEGORIES
    by_category = {c: [info.classes[i] for i, k in enumerate(CITYSCAPES_CLASS_TO_CATEGORY) if k == j]
                   for j, c in enumerate(CITYSCAPES_CATEGORIES)}
    assert by_category["flat"] == ["road", "sidewalk"]
    assert by_category["object"] == ["pole", "traffic light", "traffic sign"]
    assert by_category["human"] == ["person", "rider"]
    assert by_category["vehicle"] == ["car", "truck", "bus", "train", "motorcycle", "bicycle"]


def test_missing_label_file_names_it(fake_cityscapes: Path):
    next((fake_cityscapes / "gtFine" / "val").rglob("*_labelIds.png")).unlink()
    with pytest.raises(DataError, match=r"label file not found for .*_leftImg8bit\.png: .*_gtFine_labelIds\.png"):
        build_dataset("cityscapes", fake_cityscapes, "val")


def test_missing_split_folder_and_empty_split(fake_cityscapes: Path):
    with pytest.raises(DataError, match=r"image folder not found: .*leftImg8bit/test"):
        build_dataset("cityscapes", fake_cityscapes, "test")
    (fake_cityscapes / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)
    with pytest.raises(DataError, match=r"split 'test' is empty.*leftImg8bit/test"):
        build_dataset("cityscapes", fake_cityscapes, "test")
    with pytest.raises(DataError, match="unknown Cityscapes split 'tran'"):
        build_dataset("cityscapes", fake_cityscapes, "tran")


def test_bad_label_id_names_file_and_value(fake_cityscapes: Path, write):
    mask = next((fake_cityscapes / "gtFine" / "val").rglob("*_labelIds.png"))
    write.label(mask, np.full((8, 16), 34))
    with pytest.raises(DataError, match=rf"{mask.name} holds values that are neither a class nor ignore: 34$"):
        build_dataset("cityscapes", fake_cityscapes, "val")[0]
