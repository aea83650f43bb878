"""Pictures of a network's predictions: colour-coded labels and overlays for files, a grid for a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from squeezenas.data.base import read_image
from squeezenas.data.constants import IMAGE_SUFFIXES
from squeezenas.engine.distributed import resolve_device
from squeezenas.data.transforms import denormalize
from squeezenas.engine.predict import list_images, predict_labels
from squeezenas.utils.config import ConfigError, pair
from squeezenas.viz.labels import colorize, overlay, side_by_side


def predict_files(model: nn.Module, images: str | Path, out: str | Path, palette: Sequence[Sequence[int]],
                  size: tuple[int, int] | None = None, device: str = "cpu", progress: bool = True) -> list[Path]:
    """Predict one image (``out`` is a .png file) or a folder (``out`` is a folder); writes the colour-coded
    labels and an overlay next to them (``*_overlay.png``). Returns the written label pictures."""
    if size is not None:
        pair("size", tuple(size))
    files = list_images(images)
    out = Path(out)
    single = len(files) == 1 and not Path(images).is_dir()
    if not single and out.suffix.lower() in IMAGE_SUFFIXES:
        raise ConfigError(f"--out {out}: a folder of images needs an output folder, not a picture file")
    if single and out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: the labels are written as a .png picture")
    inputs = {f.resolve() for f in files}
    targets = [out if single else out / f"{f.stem}.png" for f in files]
    clash = [t for t in targets + [t.with_name(t.stem + "_overlay.png") for t in targets] if t.resolve() in inputs]
    if clash:
        raise ConfigError(f"--out {out}: would overwrite the input picture {clash[0]}")
    device = resolve_device(str(device))
    written = []
    it = files
    if progress and len(files) > 1:
        from tqdm import tqdm

        it = tqdm(files, desc="predict", unit="img")
    for f, target in zip(it, targets):
        image = read_image(f)
        labels = predict_labels(model, image, size, device)
        target.parent.mkdir(parents=True, exist_ok=True)
        colored = colorize(labels, palette)
        colored.save(target)
        overlay(image, colored).save(target.with_name(target.stem + "_overlay.png"))
        written.append(target)
    return written


@torch.inference_mode()
def prediction_grid(model: nn.Module, dataset: torch.utils.data.Dataset, palette: Sequence[Sequence[int]],
                    path: str | Path, n: int = 3) -> Path:
    """The first ``n`` samples of ``dataset`` as rows of input | ground truth | prediction, saved to ``path``."""
    model = model.eval()
    rows = []
    for i in range(min(n, len(dataset))):
        x, y = dataset[i]
        pred = model(x.unsqueeze(0)).argmax(1)[0].numpy()
        img = Image.fromarray((denormalize(x).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        rows.append(side_by_side([img, colorize(y.numpy(), palette), colorize(pred, palette)]))
    grid = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)))
    for k, row in enumerate(rows):
        grid.paste(row, (0, k * rows[0].height))
    grid.save(path)
    return Path(path)
