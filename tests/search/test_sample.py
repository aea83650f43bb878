"""Sampling from the learned distribution, BatchNorm recalibration, the Pareto front and the choice."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from squeezenas.search.sample import (
    knee_index, pareto_front, recalibrate_bn, sample_and_select, sample_genotypes, select,
)
from squeezenas.space.genotype import load_genotype
from squeezenas.space.macro import get_macro


def test_pareto_front_minimises_cost_and_maximises_score():
    costs = [1.0, 2.0, 2.0, 3.0, 4.0, 0.5]
    scores = [0.5, 0.6, 0.4, 0.55, 0.7, 0.1]
    assert pareto_front(costs, scores) == [True, True, False, False, True, True]


def test_selection_with_and_without_budget():
    samples = [{"c": c, "miou": m, "on_front": f} for c, m, f in
               zip([1, 2, 3, 4, 5], [0.2, 0.5, 0.6, 0.62, 0.63], [True] * 5)]
    assert select(samples, "c", budget=3.5) == 2
    assert select(samples, "c", rule="best") == 4
    assert select(samples, "c") == knee_index([1, 2, 3, 4, 5], [0.2, 0.5, 0.6, 0.62, 0.63]) == 1
    with pytest.raises(ValueError, match="budget"):
        select(samples, "c", budget=0.5)


def test_sampling_is_distinct_seeded_and_never_draws_pruned_candidates():
    macro = get_macro("small")
    p = torch.full((20, 13), 1 / 12)
    p[:, 0] = 0.0  # "pruned" everywhere
    a = sample_genotypes(p, macro, 30, seed=3)
    assert len(a) == 30 and len({g.ops for g in a}) == 30
    assert all(op != macro.candidates[0] for g in a for op in g.ops)
    assert [g.ops for g in a] == [g.ops for g in sample_genotypes(p, macro, 30, seed=3)]
    one_hot = torch.zeros(20, 13)
    one_hot[:, 5] = 1
    assert len(sample_genotypes(one_hot, macro, 10, seed=0)) == 1  # only one architecture exists


def test_bn_recalibration_is_a_cumulative_average():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.1))
    net[1].running_mean.fill_(100.0)
    batches = [torch.randn(2, 3, 4, 4) + k for k in range(3)]
    recalibrate_bn(net, batches, "cpu")
    with torch.no_grad():
        means = torch.stack([net[0](b).mean(dim=(0, 2, 3)) for b in batches])
    assert torch.allclose(net[1].running_mean, means.mean(0), atol=1e-5)
    assert net[1].momentum == 0.1 and not net.training


def test_sample_and_select_on_a_tiny_search(tiny_search):
    r = sample_and_select(tiny_search, n=5, calib_batches=1, val_limit=2, device="cpu", workers=0, progress=False)
    report = json.loads((tiny_search / "pareto.json").read_text())
    assert 5 <= report["n_scored"] <= 6 and report["cost_key"] == "gmacs"
    assert any(s["most_probable"] for s in report["samples"])
    for s in report["samples"]:
        assert 0 <= s["miou"] <= 1 and s["gmacs"] > 0 and isinstance(s["on_front"], bool)
    assert report["chosen"]["on_front"]
    assert (tiny_search / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    chosen = load_genotype(tiny_search / "chosen_genotype.json")
    assert list(chosen.ops) == r.chosen["genotype"]
    # with a budget: the most accurate sample that fits; cached scores make the rerun cheap
    lines = (tiny_search / "sample_cache.jsonl").read_text().count("\n")
    budget = sorted(s["gmacs"] for s in report["samples"])[2]
    r2 = sample_and_select(tiny_search, n=5, budget=budget, budget_kind="gmacs", calib_batches=1, val_limit=2,
                           device="cpu", workers=0, progress=False, plot=False)
    fits = [s for s in r2.samples if s["gmacs"] <= budget]
    assert r2.chosen["gmacs"] <= budget and r2.chosen["miou"] == max(s["miou"] for s in fits)
    assert (tiny_search / "sample_cache.jsonl").read_text().count("\n") == lines
    with pytest.raises(ValueError, match="latency table"):
        sample_and_select(tiny_search, n=2, budget=1.0, budget_kind="ms", device="cpu", progress=False)
