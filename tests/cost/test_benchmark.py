"""The end-to-end benchmark run in a new process: same results as in this one, errors come back."""

from __future__ import annotations

import os

import pytest
from torch import nn

from squeezenas.cost.benchmark import benchmark_fresh
from squeezenas.cost.timing import TimingConfig

QUICK = TimingConfig(threads=1, min_run_time=0.01, max_run_time=0.2, warmup=1, min_repeats=3, statistic="min")


def test_benchmark_fresh_times_every_module_in_one_new_process():
    nets = [nn.Conv2d(3, 4, 3, padding=1), nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 2, 1))]
    results = benchmark_fresh(nets, (16, 24), QUICK, canary=False, memory=False, rounds=1)
    assert [r["name"] for r in results] == ["Conv2d", "Sequential"]
    assert len({r["pid"] for r in results}) == 1 and results[0]["pid"] != os.getpid()
    assert all(r["latency_ms"] == r["min_ms"] > 0 and r["input_size"] == [16, 24] for r in results)
    assert results[0]["gmacs"] == pytest.approx(16 * 24 * 4 * 27 / 1e9)  # SPEC convention: multiply-adds


def test_benchmark_fresh_raises_the_new_process_error_here():
    with pytest.raises(RuntimeError, match="channel"):
        benchmark_fresh([nn.Conv2d(5, 4, 3)], (8, 8), QUICK, canary=False, memory=False, rounds=1)
