"""Segment an image (or a folder of images) and write colour-coded labels and an overlay.

NAME is a zoo network, a genotype file or a trained checkpoint; --weights loads a checkpoint on top
(e.g. a released SqueezeNAS .pth).
"""

from __future__ import annotations

import argparse

from squeezenas.data import palette_for
from squeezenas.models.resolve import resolve_model
from squeezenas.viz.predictions import predict_files


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME|GENOTYPE.json|CKPT")
    p.add_argument("--weights", default=None, help="checkpoint to load (ours or a released SqueezeNAS .pth)")
    p.add_argument("--image", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output .png (one image) or folder")
    p.add_argument("--size", nargs=2, type=int, default=None, metavar=("H", "W"),
                   help="resize the input to H W first (default: the image's own size)")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")


def run(args: argparse.Namespace) -> int:
    r = resolve_model(args.model, weights=args.weights, num_classes=args.num_classes)
    written = predict_files(r.model, args.image, args.out, palette_for(r.meta, r.num_classes),
                            size=tuple(args.size) if args.size else None, device=args.device)
    for w in written[:5]:
        print(f"wrote {w} and {w.with_name(w.stem + '_overlay.png')}")
    if len(written) > 5:
        print(f"... {len(written)} images in all")
    return 0
