"""End-to-end batch-1 latency of a network: median and spread, GMAC/s, peak memory.

NAME is a zoo network, a genotype file (.json/.yaml), a checkpoint, or a file written by `squeezenas export`
(.onnx, OpenVINO .xml, ExecuTorch .pte: timed as it is with its runtime's --backend, the exact file you deploy).
Timed with the same procedure (and the same settings, if you pass them) as a latency table, so `bench` and
`lut check` agree by construction: on a CPU, 16 short round-robin rounds (the fastest call of each), their
median after dividing each by the machine's speed at that moment, by default.
"""

from __future__ import annotations

import argparse
import json

from squeezenas.cli.timing_options import contention, contention_args, rounds_arg, timing_args, timing_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME|GENOTYPE.json|CKPT|MODEL.onnx|.xml|.pte",
                   help="zoo name, genotype file, checkpoint, or an exported file (with its runtime's --backend: "
                        "onnxruntime, openvino, executorch)")
    p.add_argument("--size", nargs=2, type=int, default=None, metavar=("H", "W"),
                   help="input size (default: an exported file's own, else 1024 2048)")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: the network's own)")
    timing_args(p, per="network round")
    rounds_arg(p, "network")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    contention_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from squeezenas.cost.benchmark import benchmark

    size = tuple(args.size) if args.size else None
    r = benchmark(args.model, size, timing_config(args), num_classes=args.num_classes, memory=not args.no_memory,
                  rounds=args.rounds, **contention(args))
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    mem = "" if r["peak_memory_mb"] is None else (f"; peak memory {r['peak_memory_mb']:.0f} MiB "
                                                   f"(+{r['peak_memory_delta_mb']:.0f} MiB, {r['memory_kind']})")
    print(f"{r['name']} {r['input_size'][0]}x{r['input_size'][1]} batch {r['batch']} ({r['backend']} {r['device']} "
          f"{r['dtype']}, {r['threads']} threads)")
    spread = f"IQR {r['iqr_ms']:.3f}, p10 {r['p10_ms']:.3f}, p90 {r['p90_ms']:.3f}"
    if r["statistic"] != "median":
        spread = f"median {r['median_ms']:.3f}, {spread}"
    rounds = "" if r["rounds"] == 1 else (f", speed-normalised median of {r['rounds']} rounds" if r.get("round_speeds")
                                           else f", {r['rounds']} rounds")
    print(f"  {r['latency_ms']:.3f} ms {r['statistic']} ({spread}; {r['repeats']} samples x {r['calls_per_repeat']}"
          f"{rounds})")
    if r["gmacs"] is not None:
        print(f"  {r['gmacs']:.3f} GMACs -> {r['gmac_per_s']:.1f} GMAC/s{mem}")
    elif mem:
        print(f"  {mem[2:]}")
    if r["other_cpu"] is not None:
        again = r["attempts"] - r["rounds"]
        print(f"  other processes used {r['other_cpu']:.1%} of the CPUs during the measurement"
              + (f" (measured again {again} time{'s' if again > 1 else ''})" if again > 0 else ""))
    return 0
