"""Does torch's own thread pool disturb a deployment runtime timed in the same process?

``measure`` used to set torch's intra-op threads to the timed thread count for every backend. A runtime that runs
its own artefact (onnxruntime, OpenVINO, ExecuTorch) has its own pool; torch's workers only matter if torch runs
something inside the timed call (ExecuTorch's Python bindings hand back torch tensors). This script times a
check's networks in a runtime at ``--threads`` threads with torch at one thread and at ``--threads`` threads,
alternating the two settings within every round, and reports per setting the per-call distribution (median over
networks and rounds of each measurement's min, median and 90th percentile) and how much a network's fastest call
moves between rounds (the median over networks of max/min of its per-round min).

    python bench/runtime_torch_threads.py --table bench/results/lut/runtimes_norm/small_128x256_executorch.json \\
        --out bench/results/lut/torch_threads/small_128x256.json

Run it on an idle machine. Writes the raw per-measurement statistics (JSON) and a summary (the same name, .md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from squeezenas.cost.lut import load_lut
from squeezenas.cost.lut.check import spanning_genotypes
from squeezenas.cost.lut.loading import table_config
from squeezenas.cost.timing.backends import export_for_timing
from squeezenas.cost.timing.config import BACKENDS, TimingConfig
from squeezenas.models.builder import build_model


def per_call_ms(call, seconds: float, warmup: int = 10) -> np.ndarray:
    """Per-call times (ms) of back-to-back calls for ``seconds`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return np.asarray(times) * 1e3


def run(table_path: Path, backends: list[str], threads: int, nets: int, rounds: int, seconds: float) -> dict:
    table = load_lut(table_path)
    h, w = table.input_size
    num_classes = int(table.meta.get("num_classes", 19))
    genotypes = [g for _, _, g in spanning_genotypes(table, nets, seed=0)]
    settings = [1, threads]
    raw: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            config = TimingConfig.from_dict({**table_config(table).to_dict(), "backend": backend, "threads": threads})
            runtime = BACKENDS.get(backend)
            paths = [export_for_timing(build_model(g, num_classes=num_classes), (3, h, w), config, tmp,
                                       name=f"{backend}{k}").path for k, g in enumerate(genotypes)]
            x = torch.randn(1, 3, h, w)
            raw[backend] = {str(t): [[] for _ in genotypes] for t in settings}
            for r in tqdm(range(rounds), desc=backend):
                for t in settings if r % 2 == 0 else settings[::-1]:
                    torch.set_num_threads(t)
                    for k, path in enumerate(paths):
                        timed = runtime.session(path, x, config, threads)
                        ms = per_call_ms(timed.call, seconds)
                        raw[backend][str(t)][k].append(
                            {"min": float(ms.min()), "median": float(np.median(ms)),
                             "p90": float(np.percentile(ms, 90)), "calls": len(ms)})
                        del timed
    return {"table": str(table_path), "threads": threads, "rounds": rounds, "seconds": seconds,
            "torch_version": torch.__version__, "raw": raw}


def summary(result: dict) -> str:
    lines = [f"Table {result['table']}; runtime threads {result['threads']}; {result['rounds']} rounds of "
             f"{result['seconds']} s per network and setting (settings alternate within each round).", "",
             "| runtime | torch threads | min ms | median ms | p90 ms | p90/median | round-to-round max/min of "
             "a network's fastest call |", "|---|---|---|---|---|---|---|"]
    for backend, by_setting in result["raw"].items():
        for t, nets in by_setting.items():
            every = [m for net in nets for m in net]
            med = {k: statistics.median(m[k] for m in every) for k in ("min", "median", "p90")}
            spread = statistics.median(max(m["min"] for m in net) / min(m["min"] for m in net) for net in nets)
            lines.append(f"| {backend} | {t} | {med['min']:.3f} | {med['median']:.3f} | {med['p90']:.3f} | "
                         f"{med['p90'] / med['median']:.2f} | {spread:.3f} |")
    lines += ["", "Each figure is the median over networks and rounds of one 0.1-s measurement's statistic."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, required=True, help="a latency table (its space, size and classes)")
    p.add_argument("--backends", default="executorch,onnxruntime,openvino")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nets", type=int, default=6)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--seconds", type=float, default=0.1)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    result = run(a.table, a.backends.split(","), a.threads, a.nets, a.rounds, a.seconds)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    text = summary(result)
    a.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
