"""Does timing the selection's finalists in a new process (``sample --measure-fresh``, the default) remove the
excess seen when they were timed inside the sampling process (``--no-measure-fresh``: 10-24% above prediction on
CamVid, docs/SEARCH.md step 6)? On the demo's search and latency table (built here first when missing), the
sample step runs R times in each mode, alternating which goes first, each time scoring its paths again (cache
removed) so the process has done the same work before the timing; then per finalist the measured / predicted
ratio of each mode. Needs the machine to itself (~15 min on 2 cores).

    python bench/second_look_process.py --out runs/second_look --reps 3 \
        --results bench/results/selection/second_look_process.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

SQ = [sys.executable, "-m", "squeezenas.cli.main"]


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/second_look"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--finalists", type=int, default=5)
    p.add_argument("--results", type=Path, default=Path("bench/results/selection/second_look_process.json"))
    a = p.parse_args()
    demo = a.out / "demo"
    if not (demo / "summary.json").is_file():
        run(SQ + ["demo", "--out", str(demo), "--train-epochs", "1", "--no-progress"])
    target = json.loads((demo / "summary.json").read_text())["target_ms"]
    search, looks = demo / "search", {"this": [], "fresh": []}
    for rep in range(a.reps):
        for mode in (("this", "fresh") if rep % 2 == 0 else ("fresh", "this")):
            (search / "sample_cache.jsonl").unlink(missing_ok=True)  # score every path again before the timing
            run(SQ + ["sample", "--search", str(search), "--lut", str(demo / "lut.json"), "--n", "40",
                      "--val-limit", "24", "--budget-ms", str(target), "--finalists", str(a.finalists),
                      "--workers", "0", "--no-progress", "--out", str(a.out / f"chosen_{mode}_{rep}.json"),
                      "--measure-fresh" if mode == "fresh" else "--no-measure-fresh"])
            report = json.loads((search / "pareto.json").read_text())
            look = report["second_look"]
            looks[mode].append({"process": look["process"], "timing_pid": look["timing_pid"],
                                "finalists": [{"genotype": report["samples"][i]["genotype"],
                                               "predicted_ms": report["samples"][i]["latency_ms"],
                                               "measured_ms": report["samples"][i]["measured_ms"]}
                                              for i in look["finalists"]]})
    ratios = {mode: [f["measured_ms"] / f["predicted_ms"] for r in runs for f in r["finalists"]]
              for mode, runs in looks.items()}
    summary = {mode: {"median_ratio": statistics.median(v), "min_ratio": min(v), "max_ratio": max(v), "n": len(v)}
               for mode, v in ratios.items()}
    result = {"target_ms": target, "reps": a.reps, "summary": summary, "looks": looks,
              "command": " ".join(["python", *sys.argv])}
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(json.dumps(result, indent=1))
    for mode, s in summary.items():
        print(f"{mode:5s}: measured / predicted median {s['median_ratio']:.3f} "
              f"(range {s['min_ratio']:.3f}-{s['max_ratio']:.3f}, {s['n']} timings)")


if __name__ == "__main__":
    main()
