"""Print a network's per-position MACs and parameters (SPEC convention) and totals.

NAME is a zoo network, a genotype file (.json/.yaml) or a checkpoint.
"""

from __future__ import annotations

import argparse
import json

from squeezenas.cost.counting import network_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME|GENOTYPE.json|CKPT", help="zoo name, genotype file or checkpoint")
    p.add_argument("--size", nargs=2, type=int, default=(1024, 2048), metavar=("H", "W"), help="input size")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: the network's own, 19 for the zoo)")
    p.add_argument("--convs", action="store_true", help="list every convolution, not only the parts")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    d = network_report(args.model, tuple(args.size), args.num_classes)
    if args.json:
        if not args.convs:
            d.pop("layers")
        print(json.dumps(d, indent=1))
        return 0
    h, w = args.size
    print(f"{d['name']}  ({d['macro'] or 'outside the search space'}, {d['num_classes']} classes, input {h}×{w})")
    print(f"{'part':<14}{'op':<14}{'C_in→C_out':>12}{'s':>3}{'input':>11}{'MMACs':>11}{'params':>10}")
    for part in ("stem",):
        if part in d["parts"]:
            print(f"{part:<14}{'conv3x3':<14}{'':>12}{2:>3}{'':>11}{d['parts'][part]['macs'] / 1e6:>11.1f}{d['parts'][part]['params']:>10,}")
    for p in d["positions"]:
        print(f"{'position ' + str(p['index']):<14}{p['op']:<14}{str(p['c_in']) + '→' + str(p['c_out']):>12}{p['stride']:>3}"
              f"{'%d×%d' % tuple(p['input_hw']):>11}{p['macs'] / 1e6:>11.1f}{p['params']:>10,}")
    for part in ("last_conv", "decoder", "other"):
        if part in d["parts"]:
            print(f"{part:<14}{'':<14}{'':>12}{'':>3}{'':>11}{d['parts'][part]['macs'] / 1e6:>11.1f}{d['parts'][part]['params']:>10,}")
    if args.convs:
        print("\nconvolutions:")
        for l in d["layers"]:
            print(f"  {l['name']:<44}k{l['kernel'][0]}x{l['kernel'][1]} g{l['groups']:<4}"
                  f"{'×'.join(map(str, l['out_shape'][1:])):>16}{l['macs'] / 1e6:>11.2f} MMACs")
    print(f"{'total':<54}{d['macs'] / 1e6:>11.1f}{d['params']:>10,}")
    print(f"= {d['gmacs']:.3f} GMACs, {d['params'] / 1e6:.3f} M parameters")
    return 0
