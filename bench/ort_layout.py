"""Why onnxruntime's whole networks cost more than the sum of their table's parts (docs/LATENCY.md, "onnxruntime:
grouped convolutions in the plain layout"): the layout conversions its optimised graph holds, and how the
checks' held-out errors follow the boundaries between grouped and ungrouped blocks.

    python bench/ort_layout.py --checks bench/results/lut/runtimes_norm/small_128x256_onnxruntime_check.json \\
        bench/results/lut/runtimes_norm/small_360x480_onnxruntime_check.json --out bench/results/lut/ort_layout.md

For the first check's network ``--index`` (default: the one whose measured time exceeds its held-out prediction
the most), the node types of onnxruntime's optimised graph (the session options the tables use) and the order
of convolutions and reorders; for every check, the correlation over its networks between the calibrated error and
counts along the genotype (grouped blocks, boundaries between a grouped and an ungrouped block with identity skips
passed over, skips). Nothing is timed.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from squeezenas.cost.bundle.runner import session_options
from squeezenas.cost.lut import load_lut
from squeezenas.cost.tables import producer_groups
from squeezenas.cost.timing import BACKENDS, TimingConfig
from squeezenas.models.builder import SqueezeNASNet
from squeezenas.space import Genotype


def boundaries(genotype: Genotype) -> int:
    """Positions whose block (identity skips passed over) hands on its output in other groups than the block
    before it (``producer_groups``)."""
    before, count = 1, 0
    for p, op in zip(genotype.macro_arch.positions(), genotype.ops):
        if op == "skip" and p.is_identity_skip:
            continue
        now = producer_groups(op, p.stride)
        count += now != before
        before = now
    return count


def optimised_nodes(table, genotype: Genotype) -> tuple[collections.Counter, str]:
    """Node types of onnxruntime's optimised graph of the network, and its convolutions and reorders in order."""
    import onnx
    import onnxruntime as ort

    net = SqueezeNASNet(genotype, table.meta["num_classes"]).eval()
    x = torch.randn(1, 3, *table.input_size)
    with tempfile.TemporaryDirectory() as d:
        path = BACKENDS.get("onnxruntime").export(net, x, Path(d) / "net.onnx", TimingConfig(backend="onnxruntime"))
        options = session_options(int(table.meta.get("threads") or 1))
        options.optimized_model_filepath = str(Path(d) / "optimised.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(Path(d) / "optimised.onnx")).graph
    names = {"ReorderInput": "RI", "ReorderOutput": "RO"}
    seq = []
    for node in graph.node:
        if node.op_type == "Conv":
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            seq.append(f"Conv(g{groups})")
        else:
            seq.append(names.get(node.op_type, node.op_type))
    return collections.Counter(n.op_type for n in graph.node), " ".join(seq)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", nargs="+", type=Path, required=True, help="lut check JSON files of onnxruntime tables")
    ap.add_argument("--index", type=int, default=None, help="the network of the first check to show")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    lines = ["# onnxruntime: layout conversions inside whole networks", "",
             f"`python bench/ort_layout.py --checks {' '.join(map(str, args.checks))} --out {args.out}`", ""]
    for k, path in enumerate(args.checks):
        check = json.loads(path.read_text())
        table = load_lut(check["table"])
        rows = check["networks"]
        genotypes = [Genotype(table.macro, tuple(r["genotype"])) for r in rows]
        err = np.array([r["calibrated_error_pct"] for r in rows])
        counts = {
            "grouped blocks (stride-2 skips included)": [
                sum(producer_groups(o, p.stride) > 1 for p, o in zip(table.macro.positions(), g.ops))
                for g in genotypes],
            "grouped/ungrouped boundaries": [boundaries(g) for g in genotypes],
            "skips": [sum(o == "skip" for o in g.ops) for g in genotypes],
        }
        lines += [f"## {path}", "", f"table `{check['table']}`, {len(rows)} networks, context "
                  f"`{table.meta.get('context')}`, pair terms: {'yes' if table.pairs else 'no'}; within ±5% "
                  f"calibrated: {check['calibrated']['within_5pct']:.0%}", "",
                  "| count along the network | Pearson r with the calibrated error (predicted − measured) |",
                  "|---|---|"]
        lines += [f"| {name} | {np.corrcoef(np.array(v, float), err)[0, 1]:+.2f} |" for name, v in counts.items()]
        lines.append("")
        if k == 0:
            i = int(np.argmin(err)) if args.index is None else args.index
            nodes, seq = optimised_nodes(table, genotypes[i])
            lines += [f"Network {i} (calibrated error {err[i]:+.1f}%): `{' '.join(genotypes[i].ops)}`", "",
                      "Node types of onnxruntime's optimised graph: "
                      + ", ".join(f"{t} {n}" for t, n in nodes.most_common()), "",
                      "In order (RI/RO: reorder into/out of the blocked NCHWc layout):", "", "```", seq, "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
