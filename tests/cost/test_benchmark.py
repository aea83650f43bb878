"""The end-to-end benchmark run in a new process: networks built there, one process for all, errors come back."""

from __future__ import annotations

import os
import resource

import pytest
from torch import nn

from squeezenas.cost.benchmark import benchmark_fresh
from squeezenas.cost.timing import TimingConfig
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import get_space

QUICK = TimingConfig(threads=1, min_run_time=0.01, max_run_time=0.2, warmup=1, min_repeats=3, statistic="min")


def test_benchmark_fresh_times_every_network_in_one_new_process():
    macro = get_space("small")
    nets = [Genotype(macro, ("skip",) * 20), Genotype(macro, (macro.candidates[1],) * 20), "squeezenas_lat_small"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))  # networks do not travel as shared tensors
    try:
        results = benchmark_fresh(nets, (64, 96), QUICK, num_classes=11, canary=False, memory=False, rounds=1)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len({r["pid"] for r in results}) == 1 and results[0]["pid"] != os.getpid()
    assert results[2]["name"] == "squeezenas_lat_small" and results[0]["genotype"]["genotype"] == ["skip"] * 20
    assert all(r["latency_ms"] == r["min_ms"] > 0 and r["input_size"] == [64, 96] for r in results)
    assert results[0]["gmacs"] < results[1]["gmacs"]  # all-skip is the cheapest network of the space
    assert benchmark_fresh([], (64, 96), QUICK) == []


def test_benchmark_fresh_refuses_modules_and_raises_the_new_process_error_here():
    with pytest.raises(TypeError, match="genotypes, zoo names or files"):
        benchmark_fresh([nn.Conv2d(3, 4, 3)], (8, 8), QUICK)
    with pytest.raises(Exception, match="no_such_net"):
        benchmark_fresh(["no_such_net"], (8, 8), QUICK, num_classes=11, canary=False, memory=False, rounds=1)


def test_benchmark_all_times_the_networks_round_robin(monkeypatch):
    import squeezenas.cost.benchmark as bm
    from squeezenas.cost.benchmark import benchmark_all

    macro = get_space("small")
    nets = [Genotype(macro, ("skip",) * 20), Genotype(macro, (macro.candidates[1],) * 20)]
    order, real = [], bm.measure

    def recording(model, shape, config):
        order.append(model.genotype.ops[0])
        return real(model, shape, config)

    monkeypatch.setattr(bm, "measure", recording)
    results = benchmark_all(nets, (32, 64), QUICK, num_classes=11, canary=False, memory=False, rounds=3,
                            max_other_cpu=None)
    first = macro.candidates[1]
    assert order == ["skip", first] * 3  # each round times every network once, in order
    assert [len(r["round_values"]) for r in results] == [3, 3] and results[0]["pid"] == os.getpid()
    for r in results:  # the median of the rounds, each divided by the machine's speed around it
        normalised = sorted(v / f for v, f in zip(r["round_values"], r["round_speeds"]))
        assert r["latency_ms"] == pytest.approx(normalised[1])
