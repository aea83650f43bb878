"""Segmentation scores from a confusion matrix that accumulates on any device and reduces across processes."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.distributed as dist


class ConfusionMatrix:
    """Counts (ground truth, prediction) pixel pairs; rows are the ground truth, columns the prediction.

    ``update`` takes class maps (or logits with a class dimension) and targets of any batch shape; pixels
    whose target is ``ignore_index`` are not counted. Counting is one ``torch.bincount`` on the input's
    device, so evaluation on CUDA never copies masks to the host.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def reset(self) -> None:
        self.mat.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch; ``pred`` holds class ids shaped like ``target``, or logits with a class dimension.

        Logits are (B, C, H, W) for (B, H, W) targets, or (C, H, W) for a single (H, W) target.
        """
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(0 if target.dim() == 2 else 1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")
        n = self.num_classes
        target, pred = target.flatten().long(), pred.flatten().long()
        keep = target != self.ignore_index
        target, pred = target[keep], pred[keep]
        if ((target < 0) | (target >= n) | (pred < 0) | (pred >= n)).any():  # else bincount would mix up cells
            raise ValueError(f"labels must lie in 0..{n - 1} or be {self.ignore_index}; got target values "
                             f"{_outside(target, n)} and predicted values {_outside(pred, n)} outside")
        counts = torch.bincount(target * n + pred, minlength=n * n).view(n, n)
        if self.mat.device != counts.device:
            self.mat = self.mat.to(counts.device)
        self.mat += counts

    def reduce_from_all_processes(self) -> None:
        """Sum the matrices of all processes (a no-op unless torch.distributed is initialised)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        device = self.mat.device
        if dist.get_backend() == "nccl" and device.type != "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
        mat = self.mat.to(device)
        dist.barrier()
        dist.all_reduce(mat)
        self.mat = mat

    def compute(self) -> dict[str, Any]:
        """mIoU, per-class IoU, pixel and mean accuracy, and the matrix itself (see ``scores``)."""
        return scores(self.mat)

    def __repr__(self) -> str:
        s = self.compute()
        return f"ConfusionMatrix(classes={self.num_classes}, pixels={s['pixels']}, miou={s['miou']:.4f})"


def scores(confusion: torch.Tensor) -> dict[str, Any]:
    """Scores of a (ground truth × prediction) matrix.

    A class's IoU is TP / (TP + FP + FN); a class absent from both the ground truth and the prediction has
    no IoU (NaN) and does not count in ``miou``. ``mean_accuracy`` averages recall over classes present in
    the ground truth. Everything is NaN for an empty matrix.
    """
    mat = confusion.detach().to("cpu", torch.float64)
    tp = mat.diag()
    gt, predicted = mat.sum(1), mat.sum(0)
    union = gt + predicted - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.nan)
    recall = torch.where(gt > 0, tp / gt.clamp(min=1), torch.nan)
    total = mat.sum()
    return {
        "miou": _nanmean(iou),
        "per_class_iou": iou.tolist(),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else math.nan,
        "mean_accuracy": _nanmean(recall),
        "pixels": int(total),
        "confusion": confusion.detach().to("cpu", torch.int64),
    }


def fold_confusion(confusion: torch.Tensor, class_to_category: Sequence[int]) -> torch.Tensor:
    """Merge classes into categories: entry (a, b) sums all (i, j) with category(i) = a and category(j) = b."""
    n = confusion.shape[0]
    if len(class_to_category) != n:
        raise ValueError(f"class_to_category has {len(class_to_category)} entries for {n} classes")
    groups = torch.as_tensor(class_to_category, dtype=torch.int64, device=confusion.device)
    k = int(groups.max()) + 1
    rows = torch.zeros(k, n, dtype=confusion.dtype, device=confusion.device).index_add_(0, groups, confusion)
    return torch.zeros(k, k, dtype=confusion.dtype, device=confusion.device).index_add_(1, groups, rows)


def category_miou(confusion: torch.Tensor, class_to_category: Sequence[int]) -> float:
    """mIoU over categories (Cityscapes: 7), a prediction counting as right when its category is."""
    return scores(fold_confusion(confusion, class_to_category))["miou"]


def _nanmean(values: torch.Tensor) -> float:
    present = values[~values.isnan()]
    return float(present.mean()) if present.numel() else math.nan


def _outside(values: torch.Tensor, n: int) -> list[int]:
    return torch.unique(values[(values < 0) | (values >= n)]).tolist()[:10]
