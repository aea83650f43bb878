"""The training recipe's optimiser, learning-rate schedule and loss: SGD with the paper's settings, a step or poly
schedule per optimizer step that survives a resume with a changed number of epochs, and the pixel
cross-entropy, optionally class-balanced (median-frequency weights of the training split)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from squeezenas.engine.config import TrainConfig


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-averaged cross-entropy over labelled pixels (with ``weight``, per class, averaged by the labelled
    pixels' weights as PyTorch's mean does); 0 (not NaN) for a batch with none."""
    loss = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=ignore_index, reduction="sum")
    labelled = target != ignore_index
    if weight is None:
        return loss / labelled.sum().clamp(min=1)
    return loss / weight[target[labelled]].sum().clamp(min=1e-12)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with momentum and weight decay on every parameter (the paper's recipe)."""
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(step: int, steps_per_epoch: int, epochs: int, schedule: str, poly_power: float = 0.9) -> float:
    """The learning-rate multiplier at optimizer step ``step`` (0-based).

    step: ×0.1 from epoch ⌊E/2⌋ on and ×0.01 from epoch ⌊3E/4⌋ on (E = epochs); poly: (1 - step/total)^power.
    """
    if schedule == "poly":
        total = max(1, epochs * steps_per_epoch)
        return max(0.0, 1.0 - min(step, total) / total) ** poly_power
    epoch = step // max(1, steps_per_epoch)
    return 0.1 ** sum(epoch >= m for m in (epochs // 2, (3 * epochs) // 4) if m > 0)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR over ``cfg.epochs × steps_per_epoch`` steps (its state dict holds no function)."""
    def factor(step: int) -> float:
        return lr_factor(step, steps_per_epoch, cfg.epochs, cfg.schedule, cfg.poly_power)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def restore_schedule(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                     state: dict[str, Any], step: int) -> None:
    """Load the scheduler's saved state, place it at ``step`` (epochs done × steps per epoch) and set the
    optimizer's lr to what the current schedule gives there: unchanged when nothing changed, the new
    schedule's value when the number of epochs, the schedule or the steps per epoch did."""
    scheduler.load_state_dict(state)
    scheduler.last_epoch = step
    lrs = [base * fn(step) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs  # what get_last_lr() reports




CLASS_WEIGHTS = {"auto": ("median_frequency", 1.0), "sqrt": ("median_frequency_sqrt", 0.5)}  # → method, power


def class_weights(cfg: TrainConfig, dataset: Any, num_classes: int, saved: Any = None) -> tuple[torch.Tensor | None, dict | None]:
    """The loss's class weights: None, median-frequency weights of the training split ("auto") or their square
    roots ("sqrt") — those of ``saved`` (a resumed run's ``class_weights.json`` record) when given. Returns the
    tensor and its record."""
    if cfg.class_weights is None:
        return None, None
    if saved is None:
        from squeezenas.data.statistics import class_pixels, median_frequency_weights

        method, power = CLASS_WEIGHTS[cfg.class_weights]
        pixels, present_in = class_pixels(dataset, num_classes, progress=cfg.progress)
        saved = {"method": method, "weights": median_frequency_weights(pixels, present_in, power).tolist(),
                 "pixels": pixels.tolist(), "pixels_of_images_present": present_in.tolist()}
    return torch.tensor(saved["weights"], dtype=torch.float32), saved
