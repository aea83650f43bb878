"""Where an ExecuTorch network's time goes beyond the sum of its table's parts (docs/LATENCY.md, ExecuTorch at
360×480): one check network timed whole, as prefixes (the stem and every stage up to a stage's end, one program
each: the growth from one to the next is that stage's cost inside a program), and as a chain of one-position
programs run one after the other on the real data (the same work cut at every position), against the table's
costs.

    python bench/et_context.py --check bench/results/lut/runtimes_fixed/small_360x480_executorch_check.json \\
        --out bench/results/lut/et_context.md

Network: the check's network whose measured time exceeds its prediction the most (or ``--index``). Every
variant is timed in round-robin rounds (``--rounds``), each the fastest of ``--calls`` calls, the fastest round
kept, with the table's threads. Run it on an idle machine; it needs the executorch extra.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from squeezenas.cost.lut import load_lut
from squeezenas.cost.timing import BACKENDS, TimingConfig
from squeezenas.cost.timing.backends import TimedCall, host_clock
from squeezenas.models.builder import SqueezeNASNet
from squeezenas.space import Genotype


class Prefix(nn.Module):
    """The stem and the first ``k`` positions of a network's encoder (k = 0: the stem alone)."""

    def __init__(self, net: SqueezeNASNet, k: int):
        super().__init__()
        self.stem, self.blocks = net.encoder.stem, nn.ModuleList(net.encoder.blocks[:k])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x


def delegates(module: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """The calls of the lowered graph (before serialisation): how many XNNPACK delegates, how many portable ops."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    lowered = to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[XnnpackPartitioner()])
    calls = [str(n.target) for n in lowered.exported_program().graph_module.graph.nodes if n.op == "call_function"]
    return {name: calls.count(name) for name in sorted(set(calls))}


def fastest(call: TimedCall, calls: int) -> float:
    """The fastest of ``calls`` single calls, in ms."""
    return min(call.time(1) for _ in range(calls)) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", type=Path, required=True, help="a `lut check --out` report of an executorch table")
    p.add_argument("--index", type=int, help="the check network (default: the largest excess over its prediction)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--calls", type=int, default=15)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    report = json.loads(args.check.read_text())
    table = load_lut(report["table"])
    nets = report["networks"]
    excess = max(nets, key=lambda n: n["measured_ms"] - n["predicted_ms"])
    net_row = nets[args.index] if args.index is not None else excess
    genotype = Genotype(table.macro, tuple(net_row["genotype"]))
    net = SqueezeNASNet(genotype, table.meta["num_classes"]).eval()
    backend, threads = BACKENDS.get("executorch"), table.meta["threads"]
    config = TimingConfig(backend="executorch", threads=threads)
    x = torch.randn(1, 3, *table.input_size)
    n, positions = table.macro.num_positions, list(table.macro.positions())
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        tmp = Path(tmp)
        feats = [net.encoder.stem(x)]
        for block in net.encoder.blocks:
            feats.append(block(feats[-1]))
        cuts = [0] + [i + 1 for i, (a, b) in enumerate(zip(positions, positions[1:] + [None]))
                      if b is None or b.stage != a.stage]
        timed = [i for i in range(n) if not isinstance(net.encoder.blocks[i], nn.Identity)]  # a skip may project
        programs = {"whole": (net, x)} | {f"prefix{k}": (Prefix(net, k), x) for k in cuts} | {
            f"alone{i}": (net.encoder.blocks[i], feats[i]) for i in timed}
        calls = {}
        for name, (module, inp) in programs.items():
            path = backend.export(module, inp, tmp / f"{name}.pte", config)
            calls[name] = backend.session(path, inp, config, threads)
        chain = [calls[f"alone{i}"].keep[1] for i in timed]
        graph = delegates(net, x)

        def run_chain():
            y = feats[0].contiguous()
            for method in chain:
                y = method.execute((y,))[0]

        chain_call = TimedCall(run_chain, host_clock)

        best = {}
        for _ in range(args.rounds):
            for name, c in calls.items():
                best[name] = min(best.get(name, float("inf")), fastest(c, args.calls))
            best["chain"] = min(best.get("chain", float("inf")), fastest(chain_call, args.calls))
    lines = [f"{args.check}: network {net_row['index']} ({' '.join(genotype.ops)}), {table.input_size[0]}x"
             f"{table.input_size[1]}, {threads} threads; fastest of {args.calls} calls, fastest of {args.rounds} "
             "rounds (ms)", "",
             f"whole network {best['whole']:.3f}; check measured {net_row['measured_ms']:.3f}, table predicted "
             f"{net_row['predicted_ms']:.3f}; encoder (prefix {n}) {best[f'prefix{n}']:.3f}; stem alone "
             f"{best['prefix0']:.3f} (table {table.fixed['stem']:.3f}); chain of one-position programs on the stem's "
             f"output {best['chain']:.3f}; whole − encoder {best['whole'] - best[f'prefix{n}']:.3f} (table: last conv "
             f"+ decoder {table.fixed.get('last_conv', 0) + table.fixed['decoder']:.3f}; adapter_context "
             f"{table.fixed.get('adapter_context', 0):.3f})", "",
             f"the whole network's lowered graph calls: {graph}", "",
             "| positions (stage) | ops | table | in a program (prefix − previous prefix) | alone, each with its "
             "conversions |", "|---|---|---|---|---|"]
    sums = [0.0, 0.0, 0.0]
    for a, b in zip(cuts, cuts[1:]):
        ops = genotype.ops[a:b]
        tab = sum(table.table[i][table.candidates.index(genotype.ops[i])] for i in range(a, b))
        inside = best[f"prefix{b}"] - best[f"prefix{a}"]
        alone = sum(best.get(f"alone{i}", 0.0) for i in range(a, b))
        sums = [sums[0] + tab, sums[1] + inside, sums[2] + alone]
        lines.append(f"| {a}–{b - 1} ({positions[a].stage}) | {' '.join(ops)} | {tab:.3f} | {inside:.3f} | "
                     f"{alone:.3f} |")
    lines.append(f"| sum | | {sums[0]:.3f} | {sums[1]:.3f} | {sums[2]:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"network": net_row["index"], "best_ms": best,
                                                               "graph_calls": graph}, indent=1))


if __name__ == "__main__":
    main()
