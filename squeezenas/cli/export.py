"""Export a network to ONNX, OpenVINO and/or ExecuTorch and verify each file against PyTorch in its runtime.

NAME is a zoo network, a genotype file or a trained checkpoint; --weights loads a checkpoint on top.
  squeezenas export found.pt --size 360 480 --onnx m.onnx --openvino m.xml --executorch m.pte
OpenVINO and ExecuTorch are extras: pip install 'squeezenas[openvino]', 'squeezenas[executorch]'.
"""

from __future__ import annotations

import argparse
import json

from squeezenas.deploy import EXPORTERS, export_network


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME|CKPT|GENOTYPE.json")
    p.add_argument("--weights", default=None, help="checkpoint to load (ours or a released SqueezeNAS .pth)")
    p.add_argument("--onnx", default=None, help="output .onnx file (verified with onnxruntime)")
    p.add_argument("--openvino", default=None, help="output OpenVINO IR .xml file, weights in the .bin next to it")
    p.add_argument("--executorch", default=None, help="output ExecuTorch program .pte (XNNPACK delegate)")
    p.add_argument("--size", nargs=2, type=int, default=(1024, 2048), metavar=("H", "W"),
                   help="example input size (the deployment resolution)")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--dynamic", action="store_true",
                   help="ONNX: dynamic batch, height and width (LR-ASPP networks: export from ≥ 784×784, see docs/zoo.md)")
    p.add_argument("--exporter", choices=EXPORTERS, default="dynamo", help="ONNX exporter")
    p.add_argument("--tolerance", type=float, default=1e-3, help="fail if max |PyTorch − runtime| exceeds this")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    d = export_network(args.model, args.onnx, tuple(args.size), openvino=args.openvino, executorch=args.executorch,
                       weights=args.weights, num_classes=args.num_classes, dynamic=args.dynamic,
                       exporter=args.exporter, tolerance=args.tolerance)
    if args.json:
        print(json.dumps(d, indent=1))
    else:
        for f in d["files"]:
            print(f"wrote {f['path']} ({f['bytes'] / 1e6:.2f} MB); {f['runtime']} vs PyTorch max |diff| = "
                  f"{f['max_abs_diff']:.2e} ({'ok' if f['verified'] else 'ABOVE tolerance ' + str(args.tolerance)})")
    return 0 if d["verified"] else 1
