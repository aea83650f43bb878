"""Joint image+mask transforms (torchvision v2 with tv_tensors) for segmentation training and evaluation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from squeezenas.data.constants import IGNORE_INDEX, MEAN, STD


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"expected a size (H, W) of two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


class RandomScale(v2.Transform):
    """Resize by one random factor from ``scale`` (uniform) of the input's own size; masks use nearest."""

    def __init__(self, scale: tuple[float, float] = (0.5, 2.0)):
        super().__init__()
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale range must be 0 < low <= high, got {scale!r}")
        self.scale = (float(scale[0]), float(scale[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        factor = float(torch.empty(()).uniform_(*self.scale))
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, size=params["size"], antialias=True)  # Mask → nearest


class PairTransform:
    """Callable on ``(image, mask)``: PIL or uint8 (3,H,W) image, (H,W) mask → normalised float image, int64 mask."""

    def __init__(self, steps: Sequence[v2.Transform]):
        self.pipeline = v2.Compose(list(steps) + [
            v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64}, scale=True),
            v2.Normalize(MEAN, STD),
        ])

    def __call__(self, image: Image.Image | torch.Tensor, mask: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.pipeline(_as_image(image), _as_mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"PairTransform({self.pipeline})"


def train_transforms(crop: int | tuple[int, int], scale: tuple[float, float] = (0.5, 2.0), hflip: bool = True,
                     color_jitter: float = 0.0) -> PairTransform:
    """Random scale, random crop to ``crop`` (H, W) padded where the image is smaller, flip, colour jitter
    (brightness, contrast and saturation factors in [1 − j, 1 + j]; the mask untouched), normalise.

    Padding fills the image with 0 and the mask with the ignore label, so padded pixels cost no loss.
    """
    steps: list[v2.Transform] = [RandomScale(scale)] if scale != (1.0, 1.0) else []
    steps.append(v2.RandomCrop(_pair(crop), pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if color_jitter:
        steps.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    return PairTransform(steps)


def eval_transforms(size: int | tuple[int, int] | None = None, resize_mask: bool = True) -> PairTransform:
    """Optional resize to ``size`` (H, W), then normalise.

    With ``resize_mask=False`` the mask keeps its full resolution (score at full resolution, run the network smaller).
    """
    if size is None:
        return PairTransform([])
    resize = v2.Resize(_pair(size), antialias=True)
    return PairTransform([resize] if resize_mask else [_ImageOnly(resize)])


class _ImageOnly(v2.Transform):
    """Apply a transform to the image only, leaving the mask as it is."""

    def __init__(self, inner: v2.Transform):
        super().__init__()
        self.inner = inner

    def forward(self, image: Any, mask: Any) -> tuple[Any, Any]:
        return self.inner(image), mask


def _as_image(image: Image.Image | torch.Tensor | np.ndarray) -> tv_tensors.Image:
    if isinstance(image, Image.Image):
        return tv_tensors.Image(F.pil_to_tensor(image.convert("RGB")))
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))  # (H,W,3) → (3,H,W)
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a PIL image or a uint8 (3,H,W) tensor, got {image.dtype} {tuple(image.shape)}")
    return tv_tensors.Image(image)


def _as_mask(mask: torch.Tensor | np.ndarray) -> tv_tensors.Mask:
    mask = torch.as_tensor(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H,W) mask, got shape {tuple(mask.shape)}")
    return tv_tensors.Mask(mask)


def image_to_input(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """One picture as a network takes it at inference: optionally resized to ``size`` (H, W), then normalised as
    in training and evaluation; (3, H, W) float."""
    steps: list[v2.Transform] = [v2.Resize(_pair(size), antialias=True)] if size is not None else []
    pipeline = v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    return pipeline(_as_image(image)).as_subclass(torch.Tensor)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Undo ``Normalize`` for display: (…,3,H,W) normalised → RGB in [0, 1]."""
    mean = torch.tensor(MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(STD, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)

