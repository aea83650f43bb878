"""CamVid: the real SegNet copy (when present), list parsing on a fake tree, and every bad-input error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from squeezenas.data import DataError, build_dataset, dataset_info
from squeezenas.data.palettes import CAMVID_CLASSES


@pytest.mark.parametrize("split,count", [("train", 367), ("val", 101), ("test", 233)])
def test_real_camvid_splits(camvid_root: Path, split: str, count: int):
    ds = build_dataset("camvid", camvid_root, split)
    assert len(ds) == len(ds.files) == count
    assert ds.num_classes == 11 and ds.classes == CAMVID_CLASSES and ds.ignore_index == 255
    assert all(f.image.is_file() and f.mask.is_file() for f in ds.files)


def test_real_camvid_sample(camvid_root: Path):
    ds = build_dataset("camvid", camvid_root, "val")
    image, mask = ds[0]
    assert image.shape == (3, 360, 480) and image.dtype == torch.float32
    assert mask.shape == (360, 480) and mask.dtype == torch.int64
    values = set(mask.unique().tolist())
    assert values <= set(range(11)) | {255} and 255 in values  # void (11) became ignore
    assert ds.image_path(0).suffix == ".jpg" and ds.sample_name(0) == ds.image_path(0).stem


def test_fake_camvid_maps_void_and_reads_png_and_jpg(fake_camvid: Path):
    ds = build_dataset("camvid", fake_camvid, "train")
    assert [f.image.suffix for f in ds.files] == [".jpg", ".png"]
    _, mask = ds.load_raw(0)
    assert mask.dtype == torch.uint8
    assert sorted(mask.unique().tolist()) == list(range(11)) + [255]


def test_list_with_absolute_segnet_paths_and_other_suffix(fake_camvid: Path):
    # the original SegNet lists: absolute paths into /SegNet/CamVid and .png images (ours are .jpg)
    (fake_camvid / "val.txt").write_text("/SegNet/CamVid/val/c.png /SegNet/CamVid/valannot/c.png\n")
    ds = build_dataset("camvid", fake_camvid, "val")
    assert ds.files[0].image == fake_camvid / "val" / "c.jpg"
    absolute = f"{fake_camvid / 'val' / 'c.jpg'} {fake_camvid / 'valannot' / 'c.png'}\n"
    (fake_camvid / "val.txt").write_text(absolute)
    assert build_dataset("camvid", fake_camvid, "val").files[0].mask == fake_camvid / "valannot" / "c.png"


def test_dataset_info_needs_no_data():
    info = dataset_info("camvid")
    assert info.classes == CAMVID_CLASSES and len(info.palette) == 11 and info.ignore_index == 255


def test_missing_root_says_how_to_point_at_it(tmp_path: Path):
    with pytest.raises(DataError, match=r"not found: .*nowhere.*--data-root"):
        build_dataset("camvid", tmp_path / "nowhere", "train")
    with pytest.raises(DataError, match="--data-root"):
        build_dataset("camvid", None, "train")


def test_missing_list_file_names_it(fake_camvid: Path):
    with pytest.raises(DataError, match=r"split list not found: .*trainval\.txt"):
        build_dataset("camvid", fake_camvid, "trainval")


def test_empty_split_names_the_list(fake_camvid: Path):
    (fake_camvid / "test.txt").write_text("\n")
    with pytest.raises(DataError, match=r"split 'test' is empty.*test\.txt"):
        build_dataset("camvid", fake_camvid, "test")


def test_listed_file_missing_names_line_and_file(fake_camvid: Path):
    (fake_camvid / "val.txt").write_text("val/c.jpg valannot/zzz.png\n")
    with pytest.raises(DataError, match=r"val\.txt:1: file not found: valannot/zzz\.png"):
        build_dataset("camvid", fake_camvid, "val")


def test_malformed_line(fake_camvid: Path):
    (fake_camvid / "val.txt").write_text("val/c.jpg\n")
    with pytest.raises(DataError, match=r"val\.txt:1: expected 'IMAGE LABEL'"):
        build_dataset("camvid", fake_camvid, "val")


def test_corrupt_image_names_file(fake_camvid: Path):
    (fake_camvid / "val" / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    ds = build_dataset("camvid", fake_camvid, "val")
    with pytest.raises(DataError, match=r"cannot read image .*c\.jpg"):
        ds[0]


def test_truncated_image_names_file(fake_camvid: Path, write):
    path = write.rgb(fake_camvid / "val" / "c.jpg", h=64, w=64)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cannot read image .*c\.jpg"):
        build_dataset("camvid", fake_camvid, "val")[0]


def test_size_mismatch_names_both_files_and_sizes(fake_camvid: Path, write):
    write.label(fake_camvid / "valannot" / "c.png", np.zeros((10, 16)))
    with pytest.raises(DataError, match=r"image .*c\.jpg is 12×16 .* label .*c\.png is 10×16"):
        build_dataset("camvid", fake_camvid, "val")[0]


def test_label_values_above_void_name_file_and_values(fake_camvid: Path, write):
    labels = np.zeros((12, 16), np.uint8)
    labels[0, :3] = [12, 40, 11]
    write.label(fake_camvid / "valannot" / "c.png", labels)
    with pytest.raises(DataError, match=r"c\.png holds values that are neither a class nor ignore: 12, 40$"):
        build_dataset("camvid", fake_camvid, "val")[0]


def test_rgb_label_image_is_an_error(fake_camvid: Path, write):
    write.rgb(fake_camvid / "valannot" / "c.png")
    with pytest.raises(DataError, match=r"c\.png has mode RGB"):
        build_dataset("camvid", fake_camvid, "val")[0]


def test_real_camvid_split_by_drive(camvid_root: Path):
    """Training drive 0006R0 held out: the search trains on the rest and scores on it (bench/ranking_fidelity.py)."""
    rest = build_dataset("camvid", camvid_root, "train:without=0006R0*")
    drive = build_dataset("camvid", camvid_root, "train:only=0006R0*")
    assert (len(rest), len(drive)) == (266, 101)
    assert all(f.image.name.startswith("0006R0") for f in drive.files)
    assert not {f.image for f in rest.files} & {f.image for f in drive.files}


def test_split_filter_on_file_names(fake_camvid: Path):
    only = build_dataset("camvid", fake_camvid, "train:only=b*")
    without = build_dataset("camvid", fake_camvid, "train:without=b*")
    assert [f.image.name for f in only.files] == ["b.png"] and len(only) == 1
    assert [f.image.name for f in without.files] == ["a.jpg"]
    image, mask = only[0]  # the kept file loads as before
    assert image.shape[0] == 3 and mask.shape == image.shape[1:]


@pytest.mark.parametrize("split,message", [
    ("train:only=z*", r"keeps 0 of the 2 images of 'train'"),
    ("train:without=*", r"keeps 0 of the 2 images"),
    ("train:only=*", r"keeps 2 of the 2 images"),
    ("train:keep=a*", r"expected SPLIT, SPLIT:only=GLOB or SPLIT:without=GLOB"),
    ("train:only=", r"expected SPLIT"),
    (":only=a*", r"expected SPLIT"),
])
def test_split_filter_mistakes_are_data_errors(fake_camvid: Path, split: str, message: str):
    with pytest.raises(DataError, match=message):
        build_dataset("camvid", fake_camvid, split)


def test_split_filter_needs_files():
    with pytest.raises(DataError, match="needs a dataset of files, not 'synthetic'"):
        build_dataset("synthetic", None, "train:only=a*")
