"""Does a network time slower inside a process that has just run two-thread work (as the selection's second look
does after scoring paths) than in a fresh process? One process: (A) time the network first, (B) run two-thread
convolutions for a while and time it right after, (C) time it again after a pause; every timing with the same
settings (eager, one thread, min of 3 rounds, no canary).

    python bench/inprocess_timing.py --genotype bench/results/camvid_claim/search_latency_t1_chosen_genotype.json \
        --out bench/results/selection/inprocess_timing.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from squeezenas.cost.benchmark import benchmark
from squeezenas.cost.timing import TimingConfig
from squeezenas.models import build_model
from squeezenas.space.genotype import load_genotype


def busy(seconds: float, threads: int = 2) -> None:
    """Two-thread convolutions for ``seconds`` (the sampling process's path scoring, roughly)."""
    torch.set_num_threads(threads)
    conv, x = torch.nn.Conv2d(64, 64, 3, padding=1), torch.randn(8, 64, 90, 120)
    end = time.perf_counter() + seconds
    with torch.inference_mode():
        while time.perf_counter() < end:
            conv(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genotype", type=Path, required=True)
    ap.add_argument("--size", type=int, nargs=2, default=(180, 240))
    ap.add_argument("--busy-s", type=float, default=30.0)
    ap.add_argument("--pause-s", type=float, default=10.0)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    net = build_model(load_genotype(a.genotype), num_classes=11)
    config = TimingConfig(threads=1, statistic="min", min_run_time=1.0)

    def timed() -> float:
        return benchmark(net, tuple(a.size), config, memory=False, canary=False)["min_ms"]

    result = {"settings": {"genotype": str(a.genotype), "size": list(a.size), "busy_s": a.busy_s,
                           "pause_s": a.pause_s, "threads": 1, "statistic": "min", "rounds": 3},
              "torch": torch.__version__, "fresh_ms": timed()}
    busy(a.busy_s)
    result["after_two_thread_work_ms"] = timed()
    time.sleep(a.pause_s)
    result["after_pause_ms"] = timed()
    busy(a.busy_s)
    result["after_two_thread_work_again_ms"] = timed()
    print(json.dumps(result, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
