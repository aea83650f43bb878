"""How steady one network's batch-1 latency is on this machine: the figures behind docs/LATENCY.md's
"Which statistic, how many threads" (median vs min per measurement, 1 vs 2 threads, glibc allocator tuned or not).

    python bench/timing_stability.py                       # squeezenas_mac_small at 128×256, 5 measurements each
    python bench/timing_stability.py --allocator default   # without utils/runtime.py's tuning (a process setting)

Each row is one configuration measured ``--repeats`` times back to back (``--min-run-time`` s each); it prints
every measurement's median and min per call. The allocator setting is process-wide and irreversible, so run the
script once per setting.
"""
from __future__ import annotations

import argparse
import json

from squeezenas.cost import timing
from squeezenas.cost.timing import TimingConfig, measure
from squeezenas.models.zoo import get_model


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="squeezenas_mac_small")
    ap.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--allocator", choices=("tuned", "default"), default="tuned")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.allocator == "default":
        timing.tune_cpu_allocator = lambda: False  # measure() calls it; leave glibc as it is
    net = get_model(args.model, num_classes=19).eval()
    rows = []
    for t in args.threads:
        runs = [measure(net, (3, *args.size), TimingConfig(threads=t, min_run_time=args.min_run_time))
                for _ in range(args.repeats)]
        rows.append({"threads": t, "allocator": args.allocator, "median_ms": [r.median_ms for r in runs],
                     "min_ms": [r.min_ms for r in runs]})
    if args.json:
        print(json.dumps({"model": args.model, "size": list(args.size), "rows": rows}, indent=1))
        return
    print(f"{args.model} {args.size[0]}x{args.size[1]}, allocator {args.allocator}")
    for r in rows:
        f = lambda v: " · ".join(f"{x:.2f}" for x in v)  # noqa: E731
        print(f"| {r['threads']} | {f(r['median_ms'])} | {f(r['min_ms'])} |")


if __name__ == "__main__":
    main()
