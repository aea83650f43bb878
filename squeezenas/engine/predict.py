"""Single-image inference: load, normalise, run, and write colour-coded pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from torchvision.transforms.v2 import functional as TF

from squeezenas.viz import colorize, overlay

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: cannot be read as an image ({e})") from None


def to_input(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL RGB → normalised (1, 3, H, W) float tensor, resized to ``size`` (H, W) if given."""
    x = TF.to_dtype(TF.pil_to_tensor(image), torch.float32, scale=True)
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = TF.resize(x, list(size), antialias=True)
    return TF.normalize(x, MEAN, STD).unsqueeze(0)


@torch.inference_mode()
def predict_labels(model: nn.Module, image: Image.Image, size: tuple[int, int] | None = None,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Arg-max labels (H, W) at ``size`` (or the image's own size)."""
    model.eval().to(device)
    logits = model(to_input(image, size).to(device))
    return logits.argmax(1)[0].cpu().numpy().astype(np.uint8)


def list_images(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return files
    return [path]


def predict_files(model: nn.Module, images: str | Path, out: str | Path, palette: Sequence[Sequence[int]],
                  size: tuple[int, int] | None = None, device: str = "cpu", progress: bool = True) -> list[Path]:
    """Predict one image (``out`` is a .png file) or a folder (``out`` is a folder); writes the colour-coded
    labels and an overlay next to them (``*_overlay.png``). Returns the written label pictures."""
    files = list_images(images)
    out = Path(out)
    single = len(files) == 1 and not Path(images).is_dir()
    written = []
    it = files
    if progress and len(files) > 1:
        from tqdm import tqdm

        it = tqdm(files, desc="predict", unit="img")
    for f in it:
        image = read_image(f)
        labels = predict_labels(model, image, size, device)
        target = out if single else out / f"{f.stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        colored = colorize(labels, palette)
        colored.save(target)
        overlay(image, colored).save(target.with_name(target.stem + "_overlay.png"))
        written.append(target)
    return written
