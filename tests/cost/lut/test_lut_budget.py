"""cost/lut/budget.py: a table recomputed from some of its rounds, and a check's error split into its sources."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from squeezenas.cost.lut import budget, build_lut, spanning_genotypes
from squeezenas.cost.lut.plan import plan_lut
from squeezenas.cost.timing import TimingConfig
from squeezenas.space.genotype import Genotype
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


def _gap_sd(a, b):  # the SD (%) of two figures' relative gap after one common scale, as the budget takes it
    b = b * np.median(a / b)
    return float(np.std((a - b) / ((a + b) / 2) * 100))


def test_the_tables_noise_from_its_odd_against_its_even_rounds():
    # a table of parts timed alone whose position 0 costs twice as much in its even rounds (after dividing out
    # the machine's speed): its odd rounds predict its own figures, its even ones position 0's cost more
    eager = build_lut(tiny_macro(), (32, 64), TimingConfig(backend="eager", threads=1), progress=False,
                      measure_fn=FakeTimer(), rounds=4, max_other_cpu=None, canary=False)
    noisy = copy.deepcopy(eager)
    for key in set(noisy.meta["cells"][0]) & set(noisy.meta["entries"]):
        item = noisy.meta["entries"][key]
        item["round_values"] = [v * (2 if i % 2 else 1) for i, v in enumerate(item["round_values"])]
    rows = _rows(eager, [lambda p: [p] * 4] * 8)
    nets = [Genotype(eager.macro, tuple(r["genotype"])) for r in rows]
    odd = np.array([eager.predict(g) for g in nets])
    index = {c: j for j, c in enumerate(eager.candidates)}
    even = odd + np.array([eager.table[0][index[g.ops[0]]] for g in nets])
    b = budget.error_budget(noisy, rows)
    assert b["table_sd_pct"] == pytest.approx(_gap_sd(odd, even) / 2, rel=1e-3) and b["table_sd_pct"] > 0
    assert b["check_sd_pct"] == pytest.approx(0.0, abs=1e-9) and b["largest"] == "table"
    assert b["noise_exceeds_residual"]  # the check measures the table's own figures: residual 0, noise > 0


def test_an_odd_count_of_rounds_and_the_goal_of_twenty_networks(table):
    # three rounds: the odd half holds two (the median of p(1+e) twice), the even one one, p(1-e); their gap has
    # sqrt(3 (1/2 + 1/1)) times the SD of the figure of all three
    signs = [0.02, -0.02] * 10
    rows = _rows(table, [lambda p, e=e: [p * (1 + e), p * (1 - e), p * (1 + e), p] for e in signs])
    for r in rows:
        r["round_values"], r["round_speeds"] = r["round_values"][:3], [1.0] * 3
    b = budget.error_budget(table, rows)
    odd = np.array([r["round_values"][0] for r in rows])
    even = np.array([r["round_values"][1] for r in rows])
    assert b["check_sd_pct"] == pytest.approx(_gap_sd(odd, even) / math.sqrt(4.5))
    p5 = b["expected_share"]  # 95% of 20 networks: 19 or 20 of them
    assert b["p_goal"] == pytest.approx(p5 ** 20 + 20 * p5 ** 19 * (1 - p5))


def test_no_budget_without_rounds(table):
    rows = _rows(table, [lambda p: [p] * 4] * 8)
    for r in rows:
        r["round_values"] = r["round_values"][:1]
    assert budget.error_budget(table, rows) is None
