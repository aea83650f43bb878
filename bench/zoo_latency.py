"""Batch-1 latency of the zoo (six SqueezeNAS networks + MobileNetV3-Large LR-ASPP) on this machine.

    python bench/zoo_latency.py --sizes 360x480 1024x2048 --backends eager onnxruntime --threads 2 \
        --out bench/results/lut/zoo_latency.json

Prints a Markdown table (median ms, IQR, GMACs, GMAC/s, peak memory) and writes every result as JSON. Each row is
``squeezenas bench NAME --size H W --backend B --threads T --json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from squeezenas.cost.benchmark import benchmark
from squeezenas.cost.timing import TimingConfig
from squeezenas.models import get_model_entry, list_models
from squeezenas.utils.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list_models())
    ap.add_argument("--sizes", nargs="+", default=["360x480", "1024x2048"], help="HxW")
    ap.add_argument("--backends", nargs="+", default=["eager", "onnxruntime"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--min-run-time", type=float, default=2.0)
    ap.add_argument("--onnx-exporter", default="dynamo")
    ap.add_argument("--out", type=Path, default=Path("bench/results/lut/zoo_latency.json"))
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else []
    done = {(r["name"], tuple(r["input_size"]), r["backend"]) for r in results}
    for size in args.sizes:
        h, w = (int(v) for v in size.lower().split("x"))
        for backend in args.backends:
            config = TimingConfig(backend=backend, device=args.device, dtype=args.dtype, threads=args.threads,
                                  min_run_time=args.min_run_time, max_run_time=max(20.0, args.min_run_time),
                                  onnx_exporter=args.onnx_exporter, statistic="median")
            for name in args.models:
                if (name, (h, w), backend) in done:  # resume an interrupted run
                    continue
                r = benchmark(name, (h, w), config, rounds=1)  # the settings of the committed zoo table
                results.append(r)
                atomic_write_json(args.out, results)
                print(f"{name:28s} {h}x{w} {backend:12s} {r['median_ms']:9.2f} ms (IQR {r['iqr_ms']:.2f}) "
                      f"{r['gmacs']:7.2f} GMACs {r['gmac_per_s']:6.1f} GMAC/s", flush=True)
    print()
    print(markdown(results))


def markdown(results: list[dict]) -> str:
    """One row per network and size, one latency column per backend."""
    backends = sorted({r["backend"] for r in results}, key=["eager", "onnxruntime", "cuda_graph"].index)
    by = {(r["name"], tuple(r["input_size"]), r["backend"]): r for r in results}
    keys = sorted({(r["name"], tuple(r["input_size"])) for r in results}, key=lambda k: (k[1], k[0]))
    head = ["network", "input", "GMACs", *[f"{b} ms: median (IQR), min" for b in backends], *[f"{b} GMAC/s" for b in backends],
            "peak RSS MiB (eager)", "published Xavier ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, size in keys:
        rows = [by.get((name, size, b)) for b in backends]
        first = next(r for r in rows if r)
        entry = get_model_entry(name)
        eager = by.get((name, size, "eager"))
        cells = [name, f"{size[0]}×{size[1]}", f"{first['gmacs']:.2f}",
                 *[f"{r['median_ms']:.1f} ({r['iqr_ms']:.1f}), {r['min_ms']:.1f}" if r else "–" for r in rows],
                 *[f"{r['gmac_per_s']:.1f}" if r else "–" for r in rows],
                 f"{eager['peak_memory_delta_mb']:.0f}" if eager and eager.get("peak_memory_delta_mb") is not None else "–",
                 f"{entry.published_latency_ms}" if entry.published_latency_ms and size == (1024, 2048) else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
