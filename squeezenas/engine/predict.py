"""Single-image inference: a picture in, arg-max labels out (the pictures made of them: ``viz.predictions``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from squeezenas.data.constants import IMAGE_SUFFIXES
from squeezenas.data.transforms import image_to_input


@torch.inference_mode()
def predict_labels(model: nn.Module, image: Image.Image, size: tuple[int, int] | None = None,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Arg-max labels (H, W) at ``size`` (or the image's own size)."""
    model.eval().to(device)
    logits = model(image_to_input(image, size).unsqueeze(0).to(device))
    return logits.argmax(1)[0].cpu().numpy().astype(np.uint8)


def list_images(path: str | Path) -> list[Path]:
    """The image files of a folder (sorted), or ``[path]`` for a file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    return [path]
