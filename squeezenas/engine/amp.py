"""One forward pass of a batch as training and evaluation both run it: on the device, in the memory format and
precision asked for."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """Mixed precision: float16 on CUDA, bfloat16 on CPU; a no-op when disabled."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def forward_batch(model: nn.Module, image: torch.Tensor, mask: torch.Tensor, device: torch.device, *,
                  amp: bool = False, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of ``image`` and ``mask`` moved to ``device`` (NHWC input with ``channels_last``, autocast
    with ``amp``)."""
    image = image.to(device, non_blocking=True)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    mask = mask.to(device, non_blocking=True)
    with autocast(device, amp):
        return model(image), mask
