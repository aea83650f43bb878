"""The confusion matrix and its scores, checked by hand and against a plain-Python recomputation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from squeezenas.engine.metrics import ConfusionMatrix, category_miou, fold_confusion, scores


def reference_scores(preds: list[np.ndarray], targets: list[np.ndarray], n: int, ignore: int = 255) -> dict:
    """IoU and accuracies counted pixel by pixel in plain Python loops, independent of the implementation."""
    tp, fp, fn = [0] * n, [0] * n, [0] * n
    correct = total = 0
    for pred, target in zip(preds, targets):
        for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
            if t == ignore:
                continue
            total += 1
            if p == t:
                tp[t] += 1
                correct += 1
            else:
                fp[p] += 1
                fn[t] += 1
    ious = [tp[c] / (tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else math.nan for c in range(n)]
    recalls = [tp[c] / (tp[c] + fn[c]) for c in range(n) if tp[c] + fn[c]]
    present = [v for v in ious if not math.isnan(v)]
    return {"miou": sum(present) / len(present), "per_class_iou": ious, "pixel_accuracy": correct / total,
            "mean_accuracy": sum(recalls) / len(recalls)}


def assert_matches(got: dict, want: dict) -> None:
    for key in ("miou", "pixel_accuracy", "mean_accuracy"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    assert np.allclose(got["per_class_iou"], want["per_class_iou"], equal_nan=True)


def test_hand_checked_small_case():
    # target  [0 0 1 1 255]   pred [0 1 1 1 2]  (the 255 pixel is ignored whatever the prediction)
    m = ConfusionMatrix(3)
    m.update(torch.tensor([0, 1, 1, 1, 2]), torch.tensor([0, 0, 1, 1, 255]))
    s = m.compute()
    assert s["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    # IoU: class 0 = 1/2, class 1 = 2/3, class 2 absent from both → NaN, excluded
    assert s["per_class_iou"][:2] == pytest.approx([0.5, 2 / 3]) and math.isnan(s["per_class_iou"][2])
    assert s["miou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s["pixel_accuracy"] == pytest.approx(3 / 4)
    assert s["mean_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert s["pixels"] == 4


def test_class_only_predicted_counts_with_iou_zero():
    m = ConfusionMatrix(3)
    m.update(torch.tensor([[2, 1]]), torch.tensor([[0, 1]]))
    s = m.compute()
    assert s["per_class_iou"] == [0.0, 1.0, 0.0] and s["miou"] == pytest.approx(1 / 3)
    assert s["mean_accuracy"] == pytest.approx(0.5)  # recall only over classes in the ground truth


def test_perfect_and_empty():
    m = ConfusionMatrix(4)
    assert math.isnan(m.compute()["miou"]) and math.isnan(m.compute()["pixel_accuracy"])
    labels = torch.tensor([[0, 3], [3, 255]])
    m.update(labels, labels)
    s = m.compute()
    assert s["miou"] == 1.0 and s["pixel_accuracy"] == 1.0 and math.isnan(s["per_class_iou"][1])
    m.reset()
    assert m.compute()["pixels"] == 0


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_match_reference(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    preds, targets = [], []
    m = ConfusionMatrix(n)
    for _ in range(int(rng.integers(1, 5))):  # several batches of several images
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        target = rng.integers(0, n, shape)
        target[rng.random(shape) < 0.2] = 255
        target[target == n - 1] = 0  # the last class never occurs in the ground truth...
        pred = np.where(rng.random(shape) < 0.6, np.where(target == 255, 0, target), rng.integers(0, n, shape))
        m.update(torch.from_numpy(pred), torch.from_numpy(target))
        preds.append(pred)
        targets.append(target)
    assert_matches(m.compute(), reference_scores(preds, targets, n))


def test_logits_are_reduced_with_argmax():
    target = torch.tensor([[[0, 1], [2, 255]]])
    logits = torch.nn.functional.one_hot(torch.tensor([[[0, 1], [1, 0]]]), 3).permute(0, 3, 1, 2).float()
    m = ConfusionMatrix(3)
    m.update(logits, target)
    assert m.compute()["confusion"].tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    m.update(logits[0], target[0])  # one image: (C, H, W) logits for an (H, W) target
    assert m.compute()["confusion"].tolist() == [[2, 0, 0], [0, 2, 0], [0, 2, 0]]


def test_other_ignore_index_and_dtypes():
    m = ConfusionMatrix(2, ignore_index=-1)
    m.update(torch.tensor([0, 1, 1], dtype=torch.uint8), torch.tensor([0, 1, -1], dtype=torch.int32))
    assert m.compute()["pixels"] == 2


def test_bad_inputs_are_errors():
    m = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        m.update(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"predicted values \[3\]"):
        m.update(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"target values \[7\]"):
        m.update(torch.tensor([0]), torch.tensor([7]))


def test_category_miou():
    # classes 0,1 → category 0; class 2 → category 1.  Confusing 0 with 1 is right at category level.
    confusion = torch.tensor([[5, 3, 0], [2, 4, 1], [0, 0, 6]])
    folded = fold_confusion(confusion, [0, 0, 1])
    assert folded.tolist() == [[14, 1], [0, 6]]
    assert category_miou(confusion, [0, 0, 1]) == pytest.approx((14 / 15 + 6 / 7) / 2)
    assert scores(folded)["miou"] == category_miou(confusion, [0, 0, 1])
    with pytest.raises(ValueError, match="3 classes"):
        fold_confusion(confusion, [0, 1])


def test_category_miou_against_reference():
    rng = np.random.default_rng(7)
    groups = [0, 0, 1, 2, 2, 2]
    target = rng.integers(0, 6, (2, 10, 10))
    pred = rng.integers(0, 6, (2, 10, 10))
    m = ConfusionMatrix(6)
    m.update(torch.from_numpy(pred), torch.from_numpy(target))
    to_group = np.array(groups)
    want = reference_scores([to_group[pred]], [to_group[target]], 3)["miou"]
    assert category_miou(m.compute()["confusion"], groups) == pytest.approx(want)


def test_reduce_is_a_no_op_without_distributed():
    m = ConfusionMatrix(2)
    m.update(torch.tensor([1]), torch.tensor([1]))
    m.reduce_from_all_processes()
    assert m.compute()["confusion"].tolist() == [[0, 0], [0, 1]]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_counts_on_cuda():
    m = ConfusionMatrix(3)
    m.update(torch.tensor([0, 1, 2], device="cuda"), torch.tensor([0, 2, 2], device="cuda"))
    assert m.mat.device.type == "cuda"
    assert m.compute()["confusion"].tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]


def test_reduce_with_an_initialised_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        m = ConfusionMatrix(2)
        m.update(torch.tensor([1, 0]), torch.tensor([1, 1]))
        m.reduce_from_all_processes()
        assert m.compute()["confusion"].tolist() == [[0, 0], [1, 1]]
    finally:
        dist.destroy_process_group()
