"""The training recipe's options: median-frequency class weights, a class-weighted loss, colour jitter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from squeezenas.data.statistics import class_pixels, median_frequency_weights
from squeezenas.data.transforms import train_transforms
from squeezenas.engine.schedule import segmentation_loss
from squeezenas.engine.train import train
from squeezenas.utils.io import safe_torch_load

from test_train import make_folder_dataset, tiny_config


def test_median_frequency_weights():
    w = median_frequency_weights(np.array([100, 10, 0]), np.array([200, 100, 0]))
    np.testing.assert_allclose(w, [0.6, 3.0, 0.0])  # freq 0.5 and 0.1, median 0.3; an unseen class gets 0
    np.testing.assert_allclose(median_frequency_weights(np.array([100, 10, 0]), np.array([200, 100, 0]), 0.5),
                               [0.6 ** 0.5, 3.0 ** 0.5, 0.0])  # "sqrt": milder


def test_class_pixels_of_a_folder_dataset(tmp_path):
    from squeezenas.data import build_dataset

    root = make_folder_dataset(tmp_path / "data", n=2, size=(8, 16), classes=3)
    pixels, present = class_pixels(build_dataset("folder", root, "train"), 3)
    # stripes of 8 columns: classes 0 and 1, 64 pixels each per image; class 2 absent at width 16
    assert pixels.tolist() == [128, 128, 0] and present.tolist() == [256, 256, 0]


def test_the_weighted_loss_is_pytorchs_weighted_mean():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    target[0, 0] = 255
    w = torch.tensor([0.5, 2.0, 1.0])
    torch.testing.assert_close(segmentation_loss(logits, target, weight=w),
                               F.cross_entropy(logits, target, weight=w, ignore_index=255))
    torch.testing.assert_close(segmentation_loss(logits, target), F.cross_entropy(logits, target, ignore_index=255))


def test_colour_jitter_changes_the_picture_not_the_labels():
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    mask = torch.randint(0, 3, (16, 16))
    torch.manual_seed(1)
    plain = train_transforms((16, 16), (1.0, 1.0), hflip=False)(image, mask)
    torch.manual_seed(1)
    jittered = train_transforms((16, 16), (1.0, 1.0), hflip=False, color_jitter=0.5)(image, mask)
    assert torch.equal(plain[1], jittered[1]) and not torch.allclose(plain[0], jittered[0])


def test_a_run_with_class_weights_saves_and_resumes_them(tmp_path, monkeypatch):
    root = make_folder_dataset(tmp_path / "data", classes=3)
    out = tmp_path / "run"
    cfg = tiny_config(out, dataset="folder", data_root=str(root), data_options={}, epochs=1, class_weights="auto")
    train(cfg)
    saved = json.loads((out / "class_weights.json").read_text())
    assert saved["method"] == "median_frequency" and len(saved["weights"]) == 3 and saved["classes"] == ["c0", "c1", "c2"]
    assert safe_torch_load(out / "last.pt")["class_weights"]["weights"] == saved["weights"]

    def recount(*args, **kwargs):
        raise AssertionError("a resumed run uses the weights it started with")

    monkeypatch.setattr("squeezenas.data.statistics.class_pixels", recount)
    from dataclasses import replace

    train(replace(cfg, resume=True, epochs=2))
    with pytest.raises(Exception, match="class_weights"):
        tiny_config(out, class_weights="inverse")


def test_sqrt_class_weights_are_the_square_roots_of_median_frequency(tmp_path):
    root = make_folder_dataset(tmp_path / "data", classes=3)
    records = {}
    for kind in ("auto", "sqrt"):
        out = tmp_path / kind
        train(tiny_config(out, dataset="folder", data_root=str(root), data_options={}, epochs=1, class_weights=kind))
        records[kind] = json.loads((out / "class_weights.json").read_text())
    assert records["sqrt"]["method"] == "median_frequency_sqrt"
    np.testing.assert_allclose(records["sqrt"]["weights"], np.sqrt(records["auto"]["weights"]))
