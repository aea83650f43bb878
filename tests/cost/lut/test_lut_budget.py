"""cost/lut/budget.py: a table recomputed from some of its rounds, and a check's error split into its sources."""

from __future__ import annotations

import math

import pytest

from squeezenas.cost.lut import budget, build_lut, spanning_genotypes
from squeezenas.cost.lut.plan import plan_lut
from squeezenas.cost.timing import TimingConfig
from tests.cost.lut.lut_fakes import FakeTimer, fake_timing, tiny_macro

FACTORS = (1.0, 2.0, 3.0, 1.5)  # the machine's speed in each round of the build


class RoundTimer(FakeTimer):
    """The fake timer's figures times the speed factor of the round the call falls in."""

    def __init__(self, parts: int):
        super().__init__()
        self.parts = parts

    def __call__(self, module, shape, config):
        t = super().__call__(module, shape, config)
        return fake_timing(t.median_ms * FACTORS[(len(self.calls) - 1) // self.parts], shape, config)


@pytest.fixture(scope="module")
def table():
    config = TimingConfig(backend="onnxruntime", threads=1, statistic="min")
    plan = plan_lut(tiny_macro(), (32, 64), config, context="adapter")
    return build_lut(tiny_macro(), (32, 64), config, progress=False, measure_fn=RoundTimer(len(plan.parts)),
                     rounds=len(FACTORS), max_other_cpu=None, canary=False, context="adapter")


def test_any_rounds_of_a_speed_normalised_table_give_its_figures(table):
    assert budget.has_rounds(table)
    assert all(e.get("round_speeds") for e in budget.measured_items(table.meta["entries"]))
    for pick in (list, lambda v: v[0::2], lambda v: v[1::2], lambda v: v[2:3]):
        again = budget.table_from_rounds(table, pick)
        for row, again_row in zip(table.table, again.table):  # (the speeds are recorded to 4 decimals)
            assert again_row == pytest.approx(row, rel=1e-3)
        assert again.fixed == pytest.approx(table.fixed, rel=1e-3)


def _rows(table, values):
    """Check rows of 4 speed-normalised rounds (speed 1) per network."""
    nets = [n.genotype for n in spanning_genotypes(table, len(values), seed=0)]
    return [{"genotype": list(g.ops), "round_values": v(table.predict(g)), "round_speeds": [1.0] * 4}
            for g, v in zip(nets, values)]


def test_the_checks_noise_from_its_odd_against_its_even_rounds(table):
    # odd and even rounds 2% above and below the prediction, alternately per network: the figure of all four
    # rounds is the prediction (residual 0), the halves' gap ±4%: the check's noise, SD 2% for all its rounds
    rows = _rows(table, [lambda p, e=e: [p * (1 + e), p * (1 - e)] * 2 for e in [0.02, -0.02] * 4])
    b = budget.error_budget(table, rows)
    assert b["residual_sd_pct"] == pytest.approx(0.0, abs=1e-9) and b["table_sd_pct"] == pytest.approx(0.0, abs=1e-9)
    assert b["check_sd_pct"] == pytest.approx(2.0, rel=0.01) and b["largest"] == "check"
    assert b["model_sd_pct"] == 0.0 and b["expected_share"] == 1.0 and b["p_goal"] == 1.0


def test_what_no_round_explains_is_the_models(table):
    # every round of a network alike, off the prediction by a pattern no affine fit absorbs
    c = [0.06, -0.03, 0.0, 0.04, -0.05, 0.02, -0.01, 0.0]
    b = budget.error_budget(table, _rows(table, [lambda p, e=e: [p * (1 + e)] * 4 for e in c]))
    assert b["check_sd_pct"] == pytest.approx(0.0, abs=1e-9) and b["table_sd_pct"] == pytest.approx(0.0, abs=1e-9)
    assert b["model_sd_pct"] == pytest.approx(b["residual_sd_pct"]) and b["residual_sd_pct"] > 2
    assert b["largest"] == "model"
    p5 = math.erf(5 / (b["residual_sd_pct"] * math.sqrt(2)))
    assert b["expected_share"] == pytest.approx(p5)
    assert b["p_goal"] == pytest.approx(p5 ** 8)  # 95% of 8 networks: all of them


def test_the_tables_noise_from_its_odd_against_its_even_rounds(table):
    # position 0's candidates twice as dear in the table's even rounds (after dividing out the speed): the
    # halves predict differently, and the networks measure the table's own figures
    import copy
    noisy = copy.deepcopy(table)
    for key in {k for k in noisy.meta["cells"][0]}:
        entry = noisy.meta["entries"].get(key)
        if entry is None:
            continue
        item = entry.get("with_adapter", entry)
        item["round_values"] = [v * (2 if i % 2 else 1) for i, v in enumerate(item["round_values"])]
    rows = _rows(table, [lambda p: [p] * 4] * 8)
    b = budget.error_budget(noisy, rows)
    assert b["table_sd_pct"] > 0 and b["check_sd_pct"] == pytest.approx(0.0, abs=1e-9)


def test_no_budget_without_rounds(table):
    rows = _rows(table, [lambda p: [p] * 4] * 8)
    for r in rows:
        r["round_values"] = r["round_values"][:1]
    assert budget.error_budget(table, rows) is None
