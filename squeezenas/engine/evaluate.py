"""Segmentation evaluation as the community does it: batch 1, full resolution, class mIoU from one confusion matrix."""

from __future__ import annotations

import math
import time
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from squeezenas.data import DatasetInfo, dataset_info
from squeezenas.engine.checkpoint import check_num_classes
from squeezenas.engine.amp import forward_batch
from squeezenas.engine.config import EvalConfig
from squeezenas.engine.distributed import all_reduce_sum, init_distributed, env_dist_info, resolve_device
from squeezenas.engine.loaders import batches, build_eval_dataset, build_eval_loader
from squeezenas.engine.metrics import ConfusionMatrix, category_miou, fold_confusion, scores


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, num_classes: int, device: torch.device | str, *,
             amp: bool = False, channels_last: bool = False, ignore_index: int = 255, progress: bool = False,
             desc: str = "eval") -> dict[str, Any]:
    """Score ``model`` on every batch of ``loader`` (image, mask); logits smaller than the mask are resized
    bilinearly to it, so the score is at the labels' resolution.

    Under torch.distributed each process scores its shard and the confusion matrices are summed, so every
    process returns the scores of the whole split. Returns ``miou``, ``per_class_iou`` (list), ``pixel_accuracy``,
    ``mean_accuracy``, ``pixels``, ``confusion`` (int64 matrix, ground truth × prediction), ``num_images``.
    Pass the plain network, not its DDP wrapper (shards may differ in length).
    """
    device = torch.device(device)
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index)
    images = 0
    for image, mask in _progress(batches(loader), progress, desc, len(loader)):
        logits, mask = forward_batch(model, image, mask, device, amp=amp, channels_last=channels_last)
        if logits.shape[-2:] != mask.shape[-2:]:
            logits = F.interpolate(logits.float(), size=mask.shape[-2:], mode="bilinear", align_corners=False)
        cm.update(logits.argmax(1), mask)
        images += image.shape[0]
    cm.reduce_from_all_processes()
    result = cm.compute()
    result["num_images"] = int(all_reduce_sum(images, cm.mat.device))
    return result


def _progress(it: Iterator, enabled: bool, desc: str, total: int) -> Iterator:
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=desc, total=total, unit="img", leave=False, dynamic_ncols=True)


def make_report(metrics: dict[str, Any], info: DatasetInfo, **extra: Any) -> dict[str, Any]:
    """A JSON-ready report: class names attached, NaN (class absent from labels and predictions) as null,
    and for datasets with categories (Cityscapes) the category mIoU."""
    report: dict[str, Any] = {
        **extra,
        "num_images": metrics["num_images"],
        "miou": _num(metrics["miou"]),
        "pixel_accuracy": _num(metrics["pixel_accuracy"]),
        "mean_accuracy": _num(metrics["mean_accuracy"]),
        "per_class_iou": {name: _num(v) for name, v in zip(info.classes, metrics["per_class_iou"])},
    }
    if info.categories and info.class_to_category:
        folded = scores(fold_confusion(metrics["confusion"], info.class_to_category))
        report["category_miou"] = _num(category_miou(metrics["confusion"], info.class_to_category))
        report["per_category_iou"] = {name: _num(v) for name, v in zip(info.categories, folded["per_class_iou"])}
    report["pixels"] = metrics["pixels"]
    report["classes"] = list(info.classes)
    report["confusion_matrix"] = metrics["confusion"].tolist()
    return report


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def evaluate_checkpoint(cfg: EvalConfig) -> dict[str, Any]:
    """``squeezenas eval``: load the network, score the split, write the JSON report (rank 0); returns the report."""
    from squeezenas.models.resolve import resolve_model
    from squeezenas.utils.io import atomic_write_json, check_output

    if not cfg.checkpoint:
        raise ValueError("eval needs --checkpoint CKPT")
    if cfg.report:
        check_output(cfg.report, what="--report", inputs=(cfg.checkpoint,))
    device = resolve_device(cfg.device)
    dist = init_distributed(device) if env_dist_info().distributed else env_dist_info()
    if cfg.model:  # a network named separately, weights loaded strictly (errors name the key and shapes)
        name, root, options = _dataset_of(cfg, {})
        info = dataset_info(name, root)
        classes = len(_class_map(cfg.class_map)[0]) if cfg.class_map else info.num_classes
        resolved = resolve_model(cfg.model, weights=cfg.checkpoint, num_classes=classes)
    else:
        resolved = resolve_model(cfg.checkpoint)
        name, root, options = _dataset_of(cfg, resolved.meta)
        info = dataset_info(name, root)
    if cfg.class_map:
        resolved.model = MappedClasses(resolved.model, cfg.class_map, resolved.num_classes, info.classes)
        resolved.num_classes = info.num_classes
    check_num_classes(resolved.model, resolved.num_classes, info.num_classes, cfg.checkpoint, hint=f" ({name})")
    dataset = build_eval_dataset(name, root, cfg.split, cfg.size, cfg.max_images, **options)
    loader = build_eval_loader(dataset, cfg.workers, dist, pin_memory=device.type == "cuda")
    channels_last = cfg.channels_last and device.type == "cuda"
    model = resolved.model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    start = time.perf_counter()
    metrics = evaluate(model, loader, info.num_classes, device, amp=cfg.amp, channels_last=channels_last,
                       ignore_index=info.ignore_index, progress=cfg.progress and dist.is_main, desc=f"eval {cfg.split}")
    report = make_report(metrics, info, checkpoint=str(cfg.checkpoint), model=cfg.model or _network_name(resolved),
                         dataset=name, split=cfg.split, size=list(cfg.size) if cfg.size else "full",
                         device=str(device), amp=cfg.amp, seconds=round(time.perf_counter() - start, 3))
    if cfg.report and dist.is_main:
        atomic_write_json(cfg.report, report)
    return report


class MappedClasses(nn.Module):
    """A network's logits for another dataset's classes: each target class takes the maximum of the logits of
    the source classes that stand for it (``data.palettes.CLASS_MAPS``)."""

    def __init__(self, model: nn.Module, name: str, num_classes: int, target_classes: Sequence[str]):
        source, target, mapping = _class_map(name)
        if len(source) != num_classes or tuple(target) != tuple(target_classes):
            raise ValueError(f"class_map {name!r} maps {len(source)} classes onto {len(target)}; the network has "
                             f"{num_classes} and the data {len(target_classes)} ({', '.join(target_classes)})")
        super().__init__()
        self.model = model
        self.groups = [[source.index(c) for c in mapping[t]] for t in target]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        return torch.stack([logits[:, g].amax(dim=1) for g in self.groups], dim=1)


def _class_map(name: str) -> tuple:
    from squeezenas.data.palettes import CLASS_MAPS

    if name not in CLASS_MAPS:
        raise ValueError(f"class_map: unknown map {name!r} (known: {', '.join(CLASS_MAPS)})")
    return CLASS_MAPS[name]


def _dataset_of(cfg: EvalConfig, meta: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """The dataset to score on: as given, else the one the checkpoint was trained on (with its data root and
    options when not given)."""
    saved = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    name = cfg.dataset or meta.get("dataset")
    if not name:
        raise ValueError(f"which dataset? pass --dataset ({cfg.checkpoint} names none: only our training "
                         "checkpoints record their dataset)")
    root, options = cfg.data_root, cfg.data_options
    if name == saved.get("dataset"):
        root = root if root is not None else saved.get("data_root")
        options = options or saved.get("data_options") or {}
    return name, root, options


def _network_name(resolved: Any) -> str:
    """What a checkpoint holds, in words: its zoo name, else the model its run was configured with."""
    saved = resolved.meta.get("config") if isinstance(resolved.meta.get("config"), dict) else {}
    return resolved.meta.get("model_name") or saved.get("model") or resolved.name
