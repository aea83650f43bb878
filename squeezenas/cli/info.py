"""Print a network's per-position MACs and parameters (SPEC convention) and totals.

NAME is a zoo network, a genotype file (.json/.yaml) or a checkpoint.
"""

from __future__ import annotations

import argparse
import json

from squeezenas.cost.counting import count_costs
from squeezenas.models.resolve import resolve_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME|GENOTYPE.json|CKPT", help="zoo name, genotype file or checkpoint")
    p.add_argument("--size", nargs=2, type=int, default=(1024, 2048), metavar=("H", "W"), help="input size")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: the network's own, 19 for the zoo)")
    p.add_argument("--convs", action="store_true", help="list every convolution, not only the parts")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def info(model_spec: str, size: tuple[int, int], num_classes: int | None = None) -> dict:
    """Everything ``squeezenas info`` prints, as a dict."""
    r = resolve_model(model_spec, num_classes=num_classes)
    report = count_costs(r.model, tuple(size))
    positions = []
    if r.genotype is not None:
        macro = r.genotype.macro_arch
        sizes = macro.input_sizes(*size)
        for p, code, hw in zip(macro.positions(), r.genotype.ops, sizes):
            part = report.parts.get(f"position.{p.index}", {"macs": 0, "params": 0})
            positions.append({"index": p.index, "op": code, "c_in": p.c_in, "c_out": p.c_out, "stride": p.stride,
                              "input_hw": list(hw), "macs": part["macs"], "params": part["params"]})
    d = report.to_dict()
    return {"name": r.name, "macro": r.genotype.macro_name if r.genotype else None, "num_classes": r.num_classes,
            "input_size": list(size), "macs": report.macs, "gmacs": round(report.gmacs, 4), "params": report.params,
            "parts": {k: v for k, v in d["parts"].items() if not k.startswith("position.")},
            "positions": positions, "layers": d["layers"]}


def run(args: argparse.Namespace) -> int:
    d = info(args.model, tuple(args.size), args.num_classes)
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
