"""Pictures of predictions: colour-coded label maps and overlays on the input image."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int = 255) -> Image.Image:
    """(H, W) integer labels → RGB image; labels outside the palette (e.g. ignore) are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    labels = np.asarray(labels)
    return Image.fromarray(lut[np.clip(labels, 0, 255).astype(np.uint8)], "RGB")


def overlay(image: Image.Image, colored: Image.Image, alpha: float = 0.55) -> Image.Image:
    """Blend the colour-coded labels over the input image."""
    return Image.blend(image.convert("RGB").resize(colored.size, Image.BILINEAR), colored, alpha)


def side_by_side(images: Sequence[Image.Image]) -> Image.Image:
    h = max(im.height for im in images)
    out = Image.new("RGB", (sum(im.width for im in images), h))
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out
