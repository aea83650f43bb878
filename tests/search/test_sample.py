"""Sampling from the learned distribution, and the sample step on a tiny search: costs, front, choice, files."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch

from squeezenas.cost.tables import CostTable, CostTableError
from squeezenas.search.config import SampleConfig
from squeezenas.search.sample import path_scorer, sample_and_select, sample_genotypes
from squeezenas.space.genotype import Genotype, load_genotype
from squeezenas.space.macro import get_space
from squeezenas.utils.config import ConfigError


def _config(search, **overrides) -> SampleConfig:
    return SampleConfig(**{"search": str(search), "n": 5, "bn_batches": 1, "val_limit": 2, "device": "cpu",
                           "workers": 0, "progress": False, **overrides})


def test_sampling_is_distinct_seeded_and_never_draws_pruned_candidates():
    macro = get_space("small")
    p = torch.full((20, 13), 1 / 12)
    p[:, 0] = 0.0  # "pruned" everywhere
    a = sample_genotypes(p, macro, 30, seed=3)
    assert len(a) == 30 and len({g.ops for g in a}) == 30
    assert all(op != macro.candidates[0] for g in a for op in g.ops)
    assert [g.ops for g in a] == [g.ops for g in sample_genotypes(p, macro, 30, seed=3)]
    one_hot = torch.zeros(20, 13)
    one_hot[:, 5] = 1
    assert len(sample_genotypes(one_hot, macro, 10, seed=0)) == 1  # only one architecture exists


def test_sample_config_checks():
    with pytest.raises(ConfigError, match="search folder"):
        SampleConfig()
    with pytest.raises(ConfigError, match="budget kind"):
        SampleConfig(search="s", budget_kind="joules")
    with pytest.raises(ConfigError, match="select"):
        SampleConfig(search="s", select="worst")
    with pytest.raises(ConfigError, match="bn_batches"):
        SampleConfig(search="s", bn_batches=0)


def test_sample_and_select_on_a_tiny_search(tiny_search):
    r = sample_and_select(_config(tiny_search))
    report = json.loads((tiny_search / "pareto.json").read_text())
    assert 5 <= report["n_scored"] <= 6 and report["cost_key"] == "gmacs" == r.cost_key
    assert any(s["most_probable"] for s in report["samples"])
    for s in report["samples"]:
        assert 0 <= s["miou"] <= 1 and s["gmacs"] > 0 and isinstance(s["on_front"], bool)
    assert report["chosen"]["on_front"]
    assert report["size"] == [64, 128]
    chosen = load_genotype(tiny_search / "chosen_genotype.json")
    assert list(chosen.ops) == r.chosen["genotype"]
    # with a budget: the most accurate sample that fits; cached scores make the rerun cheap
    lines = (tiny_search / "sample_cache.jsonl").read_text().count("\n")
    budget = sorted(s["gmacs"] for s in report["samples"])[2]
    r2 = sample_and_select(_config(tiny_search, budget=budget, budget_kind="gmacs", finalists=0))
    fits = [s for s in r2.samples if s["gmacs"] <= budget]
    assert r2.chosen["gmacs"] <= budget and r2.chosen["miou"] == max(s["miou"] for s in fits)
    assert (tiny_search / "sample_cache.jsonl").read_text().count("\n") == lines
    # the second look: the 2 most accurate that fit, scored again on the whole split, the better one chosen
    r3 = sample_and_select(_config(tiny_search, budget=budget, budget_kind="gmacs", finalists=2))
    look = json.loads((tiny_search / "pareto.json").read_text())["second_look"]
    top = sorted(fits, key=lambda s: -s["miou"])[:2]
    assert [r3.samples[i]["genotype"] for i in look["finalists"]] == [s["genotype"] for s in top]
    assert r3.chosen["miou_rescored"] == max(r3.samples[i]["miou_rescored"] for i in look["finalists"])
    assert not look["measured"]  # a MAC search: nothing to time
    # the same scorer outside the sample step: a finalist's whole-split score again, exactly
    finalist = r3.samples[look["finalists"][0]]
    scorer = path_scorer(_config(tiny_search), limit=None)
    again = scorer(Genotype(chosen.macro, tuple(finalist["genotype"])))
    assert again["miou"] == pytest.approx(finalist["miou_rescored"], abs=1e-9)
    with pytest.raises(ValueError, match="latency table"):
        sample_and_select(_config(tiny_search, n=2, budget=1.0, budget_kind="ms"))


def _latency_table(size: tuple[int, int]) -> CostTable:
    macro = get_space("small")
    return CostTable(kind="latency", unit="ms", macro=macro, input_size=size, candidates=macro.candidates,
                     table=[[1.0] * 13 for _ in range(20)], fixed={"stem": 0.5})


def test_a_latency_table_of_another_resolution_is_an_error(tiny_search, tmp_path):
    """The search's deployment size is 64×128: a table built at 32×64 would cost other networks."""
    path = tmp_path / "lut_32x64.json"
    _latency_table((32, 64)).save(path)
    with pytest.raises(CostTableError, match=re.escape(f"{path} was built at 32×64, not 64×128")):
        sample_and_select(_config(tiny_search, lut=str(path), n=2))
    with pytest.raises(CostTableError, match="32×64, not 64×128"):
        sample_and_select(_config(tiny_search, n=2), lut=_latency_table((32, 64)))


def test_a_custom_scorer_and_a_latency_table(tiny_search, tmp_path):
    path = tmp_path / "lut.json"
    _latency_table((64, 128)).save(path)
    r = sample_and_select(_config(tiny_search, lut=str(path), n=4, budget=30.0, budget_kind="ms",
                                  out=str(tmp_path / "chosen.json")),
                          scorer=lambda g: {"miou": g.ops.count("skip") / 20, "pixel_accuracy": 0.0})
    assert r.cost_key == "latency_ms" and all(s["latency_ms"] == pytest.approx(20.5) for s in r.samples)
    assert r.chosen["miou"] == max(s["miou"] for s in r.samples)
    assert load_genotype(tmp_path / "chosen.json").ops == r.chosen_genotype.ops


def test_the_finalists_are_timed_on_this_device(tiny_search, tmp_path):
    """A latency table measured here: the finalists are timed end to end, with the table's settings."""
    from squeezenas.cost.lut import build_lut
    from squeezenas.cost.timing import Timing, TimingConfig

    def fake(module, shape, config):  # the table's parts: any positive numbers
        return Timing(median_ms=0.1, iqr_ms=0.0, p10_ms=0.1, p90_ms=0.1, mean_ms=0.1, min_ms=0.1, repeats=1,
                      calls_per_repeat=1, backend="eager", device="cpu", dtype="float32", threads=1, batch=1,
                      channels_last=False, input_shape=tuple(shape))

    config = TimingConfig(threads=1, min_run_time=0.01, max_run_time=0.5, warmup=1, min_repeats=3, statistic="min")
    path = tmp_path / "lut.json"
    build_lut("small", (64, 128), config, num_classes=8, out=path, progress=False, measure_fn=fake, max_other_cpu=None)
    r = sample_and_select(_config(tiny_search, lut=str(path), n=4, budget=1e3, budget_kind="ms", finalists=2,
                                  out=str(tmp_path / "chosen.json")))
    look = json.loads((tiny_search / "pareto.json").read_text())["second_look"]
    assert look["measured"] and look["statistic"] == "min"
    assert all(r.samples[i]["measured_ms"] > 0 for i in look["finalists"]) and "measured_ms" in r.chosen
    assert look["process"] == "fresh" and look["timing_pid"] not in (None, os.getpid())  # not in this process

    sample_and_select(_config(tiny_search, lut=str(path), n=4, budget=1e3, budget_kind="ms", finalists=2,
                              measure_fresh=False, out=str(tmp_path / "chosen.json")))
    look = json.loads((tiny_search / "pareto.json").read_text())["second_look"]
    assert look["measured"] and look["process"] == "this" and look["timing_pid"] == os.getpid()
