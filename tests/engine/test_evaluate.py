"""Evaluation: scores agree with an independent computation, full-resolution scoring, the JSON report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezenas.data import DatasetInfo, build_dataset, dataset_info
from squeezenas.data.cityscapes import CITYSCAPES_INFO
from squeezenas.engine.config import EvalConfig, TrainConfig
from squeezenas.engine.evaluate import evaluate, evaluate_checkpoint, make_report
from squeezenas.engine.loaders import build_eval_dataset, build_eval_loader
from squeezenas.engine.train import train
from squeezenas.models import get_model
from squeezenas.models.weights import CheckpointError

TINY = {"num_samples": 5, "size": [32, 64]}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("eval") / "run"
    train(TrainConfig(model="squeezenas_lat_small", dataset="synthetic", data_options=dict(TINY), out=str(out),
                      epochs=1, batch_size=4, crop=(32, 64), workers=0, device="cpu", progress=False))
    return out


def reference_scores(model: torch.nn.Module, dataset, n: int) -> tuple[np.ndarray, float, float]:
    """Per-class IoU, mIoU and pixel accuracy with numpy, image by image (independent of ConfusionMatrix)."""
    model.eval()
    conf = np.zeros((n, n), np.int64)
    with torch.no_grad():
        for i in range(len(dataset)):
            image, mask = dataset[i]
            logits = model(image[None])
            if logits.shape[-2:] != mask.shape:
                logits = torch.nn.functional.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)
            pred, gt = logits.argmax(1)[0].numpy().ravel(), mask.numpy().ravel()
            keep = gt != 255
            np.add.at(conf, (gt[keep], pred[keep]), 1)
    tp = np.diag(conf).astype(float)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return iou, float(np.nanmean(iou)), float(tp.sum() / conf.sum())


@pytest.mark.parametrize("input_size", [None, (16, 32)])
def test_evaluate_agrees_with_numpy(input_size):
    torch.manual_seed(0)
    model = get_model("squeezenas_lat_small", num_classes=8)
    dataset = build_eval_dataset("synthetic", None, "val", input_size, **TINY)
    metrics = evaluate(model, build_eval_loader(dataset, workers=0), 8, "cpu")
    iou, miou, acc = reference_scores(model, dataset, 8)
    assert metrics["num_images"] == 5 and metrics["pixels"] == 5 * 32 * 64  # scored at full resolution
    np.testing.assert_allclose(np.array(metrics["per_class_iou"], float), iou, rtol=1e-6, equal_nan=True)
    assert metrics["miou"] == pytest.approx(miou) and metrics["pixel_accuracy"] == pytest.approx(acc)


def test_report_of_a_trained_checkpoint(run_dir: Path, tmp_path: Path):
    report_path = tmp_path / "report.json"
    report = evaluate_checkpoint(EvalConfig(checkpoint=str(run_dir / "best.pt"), report=str(report_path),
                                            workers=0, device="cpu", progress=False))
    # dataset, options and root default to the training run's
    assert report["dataset"] == "synthetic" and report["num_images"] == 5 and report["model"] == "squeezenas_lat_small"
    saved = json.loads(report_path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert set(saved["per_class_iou"]) == set(dataset_info("synthetic").classes)
    assert 0 <= saved["miou"] <= 1 and 0 <= saved["pixel_accuracy"] <= 1
    assert np.array(saved["confusion_matrix"]).sum() == saved["pixels"] == 5 * 32 * 64
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    assert saved["miou"] == pytest.approx(ckpt["best_miou"])  # the same number training validation reported

    model = get_model("squeezenas_lat_small", num_classes=8)
    model.load_state_dict(ckpt["model"])
    ds = build_dataset("synthetic", None, "val", **TINY)
    iou, miou, acc = reference_scores(model, ds, 8)
    assert saved["miou"] == pytest.approx(miou) and saved["pixel_accuracy"] == pytest.approx(acc)
    for name, v in zip(ds.classes, iou):
        assert (saved["per_class_iou"][name] is None) if math.isnan(v) else saved["per_class_iou"][name] == pytest.approx(v)


def test_max_images_and_size(run_dir: Path):
    report = evaluate_checkpoint(EvalConfig(checkpoint=str(run_dir / "last.pt"), max_images=2, size=(16, 32),
                                            workers=0, device="cpu", progress=False))
    assert report["num_images"] == 2 and report["pixels"] == 2 * 32 * 64 and report["size"] == [16, 32]


def test_category_miou_for_cityscapes():
    """Category mIoU folds the confusion matrix: confusing road with sidewalk (both 'flat') costs nothing."""
    conf = torch.zeros(19, 19, dtype=torch.int64)
    conf[0, 1] = 10  # road predicted as sidewalk
    conf[1, 1] = 10
    conf[13, 13] = 5  # car right
    metrics = {"miou": 0.0, "per_class_iou": [math.nan] * 19, "pixel_accuracy": 0.0, "mean_accuracy": 0.0,
               "pixels": 25, "confusion": conf, "num_images": 1}
    report = make_report(metrics, CITYSCAPES_INFO)
    assert report["category_miou"] == pytest.approx(1.0)
    assert report["per_category_iou"]["flat"] == 1.0 and report["per_category_iou"]["sky"] is None
    assert "category_miou" not in make_report(metrics | {"confusion": conf[:8, :8], "per_class_iou": [0.0] * 8},
                                              DatasetInfo(tuple("abcdefgh"), ((0, 0, 0),) * 8))


def test_checkpoint_for_other_classes_is_an_error(run_dir: Path, tmp_path: Path):
    root = tmp_path / "three"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text("classes: [a, b, c]\n")
    with pytest.raises(CheckpointError, match=r"8-class network \('decoder\.\w+\.weight' has shape \(8,.*3 classes"):
        evaluate_checkpoint(EvalConfig(checkpoint=str(run_dir / "best.pt"), dataset="folder", data_root=str(root),
                                       workers=0, device="cpu", progress=False))


def test_released_weights_on_wrong_classes(released_dir: Path):
    with pytest.raises(CheckpointError, match=r"decoder\.\w+\.weight.*shape \(19,"):
        evaluate_checkpoint(EvalConfig(checkpoint=str(released_dir / "lat_small.pth"), model="squeezenas_lat_small",
                                       dataset="synthetic", workers=0, device="cpu", progress=False))


def test_a_class_map_scores_a_network_on_another_datasets_classes():
    from squeezenas.engine.evaluate import MappedClasses

    from squeezenas.data.palettes import CAMVID_CLASSES, CITYSCAPES_CLASSES

    class Fixed(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(1, 19, 1, 1)
            logits[0, CITYSCAPES_CLASSES.index("bus"), 0, 0] = 5.0  # a bus is a car in CamVid
            return logits

    mapped = MappedClasses(Fixed(), "cityscapes-camvid", 19, CAMVID_CLASSES)
    out = mapped(torch.zeros(1, 3, 1, 1))
    assert out.shape == (1, 11, 1, 1) and CAMVID_CLASSES[int(out.argmax(1))] == "Car"
    with pytest.raises(ValueError, match="unknown map"):
        MappedClasses(Fixed(), "voc-camvid", 19, CAMVID_CLASSES)


def test_released_weights_zero_shot_on_camvid(released_dir, camvid_root):
    """The Cityscapes network sees CamVid's street scenes: far above chance (1/11) without any training on them."""
    report = evaluate_checkpoint(EvalConfig(checkpoint=str(released_dir / "lat_small.pth"), model="squeezenas_lat_small",
                                            dataset="camvid", data_root=str(camvid_root), split="val", max_images=4,
                                            class_map="cityscapes-camvid", device="cpu", workers=0, progress=False))
    assert report["pixel_accuracy"] > 0.6 and report["miou"] > 0.25
