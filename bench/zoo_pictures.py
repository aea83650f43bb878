"""Segment CamVid val images with the released Cityscapes checkpoints; writes docs/img/zoo_*.png.

    python bench/zoo_pictures.py --shared ../shared --out docs/img [--device cuda]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezenas.data.palettes import CITYSCAPES_PALETTE
from squeezenas.data.base import read_image
from squeezenas.engine.predict import predict_labels
from squeezenas.models import get_model
from squeezenas.viz.labels import colorize, overlay, side_by_side

RELEASED = {"squeezenas_lat_small": "lat_small.pth", "squeezenas_mac_small": "mac_small.pth",
            "squeezenas_mac_large": "mac_large.pth"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--images", nargs="+", default=["val/0016E5_07959.jpg", "val/0016E5_08085.jpg"])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for rel in args.images:
        # the released networks were trained at 1024×2048: resize the 360×480 CamVid image to that, as a user would
        image = read_image(shared / "data" / "camvid" / rel).resize((2048, 1024))
        row = [image.resize((512, 256))]
        for name, file in RELEASED.items():
            net = get_model(name, weights=shared / "weights" / "squeezenas-official" / file)
            labels = predict_labels(net, image, (1024, 2048), args.device)
            row.append(overlay(image, colorize(labels, CITYSCAPES_PALETTE)).resize((512, 256)))
        target = out / f"zoo_{Path(rel).stem}.png"
        side_by_side(row).save(target)
        print("wrote", target)


if __name__ == "__main__":
    main()
