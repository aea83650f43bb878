"""Draw networks of the search space like the paper's Figure 8: one row of blocks per network, lined up at
their downsampling blocks, labelled with kernel, dilation, expansion and groups, coloured by type.

GENOTYPE is a genotype file (.json/.yaml, e.g. a search's genotype.json) or a zoo name; give several to compare.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("genotypes", nargs="+", metavar="GENOTYPE", help="genotype file(s) or zoo name(s)")
    p.add_argument("--out", help="picture file, .png/.pdf/.svg (default: FIRST.png next to the first genotype file)")
    p.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"),
                   help="input size for resolutions and GMACs (default 1024 2048)")
    p.add_argument("--num-classes", type=int, default=19, help="classes of the decoder, for GMACs (default 19)")
    p.add_argument("--title", help="figure title")


def run(args: argparse.Namespace) -> int:
    from squeezenas.viz.network import draw_networks, resolve_genotype

    rows = [resolve_genotype(g) for g in args.genotypes]
    first = Path(args.genotypes[0])
    out = Path(args.out) if args.out else (first.with_suffix(".png") if first.suffix else Path(f"{first}.png"))
    path = draw_networks(rows, out, size=tuple(args.size), num_classes=args.num_classes, title=args.title)
    print(f"wrote {path}")
    return 0
