"""The dataset registry: one entry point, every dataset honours the same contract, typos get suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from squeezenas.data import DATASETS, SegmentationDataset, build_dataset, dataset_info, train_transforms


@pytest.fixture
def roots(fake_camvid: Path, fake_cityscapes: Path, fake_folder: Path) -> dict[str, Path | None]:
    return {"camvid": fake_camvid, "cityscapes": fake_cityscapes, "folder": fake_folder, "synthetic": None}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_meets_the_contract(name: str, roots):
    ds = build_dataset(name, roots[name], "train", **({"num_samples": 3, "size": (32, 48)} if name == "synthetic" else {}))
    assert isinstance(ds, SegmentationDataset) and len(ds) > 0
    info = dataset_info(name, roots[name])
    assert ds.classes == info.classes and ds.palette == info.palette and ds.num_classes == len(info.classes)
    assert ds.ignore_index == info.ignore_index == 255 and len(ds.palette) == ds.num_classes
    image, mask = ds[len(ds) - 1]
    assert image.dtype == torch.float32 and image.shape[0] == 3 and mask.dtype == torch.int64
    assert image.shape[1:] == mask.shape
    valid = (mask == 255) | ((mask >= 0) & (mask < ds.num_classes))
    assert valid.all()
    raw_image, raw_mask = ds.load_raw(0)
    assert raw_mask.dtype == torch.uint8 and ds.sample_name(0)


@pytest.mark.parametrize("name", DATASETS.names())
def test_train_transforms_and_loader(name: str, roots):
    ds = build_dataset(name, roots[name], "train", transforms=train_transforms((16, 16)),
                       **({"num_samples": 4} if name == "synthetic" else {}))
    images, masks = next(iter(DataLoader(ds, batch_size=2)))
    assert images.shape == (2, 3, 16, 16) and masks.shape == (2, 16, 16) and type(images) is torch.Tensor


def test_index_out_of_range_and_negative():
    ds = build_dataset("synthetic", None, "val", num_samples=2, size=(16, 16))
    assert torch.equal(ds[-1][1], ds[1][1])
    with pytest.raises(IndexError):
        ds[2]


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(KeyError, match="unknown dataset 'camvd'; did you mean 'camvid'"):
        build_dataset("camvd", None, "train")
    with pytest.raises(KeyError, match="did you mean 'cityscapes'"):
        dataset_info("citiscapes")
