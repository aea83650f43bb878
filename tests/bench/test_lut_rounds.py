"""bench/lut_rounds.py: a table and a check recomputed from some of their rounds, without timing."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from squeezenas.cost.lut import build_lut, spanning_genotypes
from squeezenas.cost.timing import TimingConfig
from tests.bench.bench_scripts import load_bench_script
from tests.cost.lut.lut_fakes import FakeTimer, fake_timing, tiny_macro

lut_rounds = load_bench_script("lut_rounds")
FACTORS = (1.0, 2.0, 3.0)  # the machine's speed in each round of the build: round 2 twice as slow, round 3 thrice


class RoundTimer(FakeTimer):
    """The fake timer's figures, times the speed factor of the round the call falls in (round-robin builds time
    every part once per round)."""

    def __init__(self, parts: int, factors: tuple[float, ...] = FACTORS):
        super().__init__()
        self.parts, self.factors = parts, factors

    def __call__(self, module, shape, config):
        t = super().__call__(module, shape, config)
        f = self.factors[(len(self.calls) - 1) // self.parts]
        return fake_timing(t.median_ms * f, shape, config)


def _build(factors: tuple[float, ...]):
    """A 3-round onnxruntime-style table (ops timed after an adapter, the min statistic) from the fake timer, the
    machine's speed in each round given by ``factors``."""
    from squeezenas.cost.lut.plan import plan_lut

    config = TimingConfig(backend="onnxruntime", threads=1, statistic="min")
    plan = plan_lut(tiny_macro(), (32, 64), config, context="adapter")
    return build_lut(tiny_macro(), (32, 64), config, progress=False, measure_fn=RoundTimer(len(plan.parts), factors),
                     rounds=3, max_other_cpu=None, canary=False, context="adapter")


@pytest.fixture(scope="module")
def table():
    return _build(FACTORS)


def _without_speeds(table):
    """``table`` as a build before the rounds recorded the machine's speed saved it (no ``round_speeds``)."""
    meta = copy.deepcopy(table.meta)
    for entry in meta["entries"].values():
        for e in (entry, entry.get("with_adapter") or {}):
            e.pop("round_speeds", None)
    return dataclasses.replace(table, meta=meta)


def test_rounds_without_speeds_give_the_fastest_round_and_one_round_its_own_speed(table):
    # a table saved before the speeds were recorded: lut_rounds recomputes the fastest round (the estimator of
    # those runs), round 1 of the three; the build itself kept the median round's speed: twice the fastest
    old = _without_speeds(table)
    fastest = lut_rounds.table_from_rounds(old, range(3))
    for row, fastest_row in zip(table.table, fastest.table):
        assert fastest_row == pytest.approx([v / 2 for v in row])
    assert fastest.fixed == pytest.approx({k: v / 2 for k, v in table.fixed.items()})
    # round 2 alone is the table of round 1 twice as slow, adapter differences too
    slow = lut_rounds.table_from_rounds(old, [1])
    for row, slow_row in zip(fastest.table, slow.table):
        assert slow_row == pytest.approx([2 * v for v in row])
    assert slow.fixed == pytest.approx({k: 2 * v for k, v in fastest.fixed.items()})


def _check(table, tmp_path, first_round_of_network0: float) -> tuple:
    """A check whose networks measure exactly the table's prediction in every round, except network 0's first
    round, ``first_round_of_network0`` times its prediction. The table saved keeps the fastest of its rounds, as
    the builds lut_rounds studies did (today's build keeps the speed-normalised median)."""
    old = _without_speeds(table)
    table = lut_rounds.table_from_rounds(old, range(table.meta["rounds"]))
    table.meta = old.meta
    rows = []
    for i, net in enumerate(spanning_genotypes(table, 8, seed=0)):
        p = table.predict(net.genotype)
        rows.append({"genotype": list(net.genotype.ops),
                     "round_values": [p * (first_round_of_network0 if i == 0 else 1.0), p, p]})
    t, c = tmp_path / "t.json", tmp_path / "t_check.json"
    table.save(t)
    c.write_text(json.dumps({"statistic": "min", "rounds": 3, "threads": 1, "networks": rows}))
    return t, c


def test_first_k_rounds_and_halves(table, tmp_path):
    r = lut_rounds.analyse(*_check(table, tmp_path, first_round_of_network0=1.3))
    assert (r["table_rounds"], r["check_rounds"], r["networks"]) == (3, 3, 8)
    first = {f["k"]: f for f in r["first_k"]}
    # one round: network 0 measured 30% above its prediction; its held-out fit (on the 7 exact others) predicts
    # it exactly, 23% below that measurement, and the fits of the others are pulled by it
    assert first[1]["worst_calibrated"] == pytest.approx(100 * (1 - 1 / 1.3))
    assert first[1]["mape_raw"] == pytest.approx(100 * 0.3 / 1.3 / 8)
    assert first[1]["within_5_calibrated"] < 1
    # two or three rounds: the fastest round of every network is its prediction, exactly
    for k in (2, 3):
        assert first[k]["within_5_calibrated"] == 1.0 and first[k]["tau_raw"] == pytest.approx(1.0)
        assert first[k]["mape_calibrated"] == pytest.approx(0.0, abs=1e-9)
    # the table with all rounds against the check's first round: the same miss
    assert r["table_all_check_k"][0] == pytest.approx(first[1])
    # halves (one round each): network 0's figure moved by 30%; the table's predictions only by a common scale
    assert r["halves"]["rounds_each"] == 1
    assert r["halves"]["measured_moved_over_5pct"] == pytest.approx(1 / 8)
    assert r["halves"]["predicted_moved_over_5pct"] == 0.0
    text = lut_rounds.report({"x": r})
    assert f"| x | 1 | 1 | 1 | {100 * first[1]['within_5_calibrated']:.0f}% |" in text
    assert "| x | 1 | 12% | 0% | 62% | 100% |" in text  # 1/8 moved, printed rounded half to even
    assert f"| x | 1 | {100 * first[1]['within_5_calibrated']:.0f}% | 100% | 100% | 1.000 | " in text  # in short
    assert "mean of the checks" not in text  # one check: no mean
    exact = {**r, "first_k": [{**f, "within_5_calibrated": 1.0} for f in r["first_k"]]}
    both = lut_rounds.summary({"x": r, "y": exact})
    mean_1 = (first[1]["within_5_calibrated"] + 1.0) / 2
    assert both[-2] == f"| mean of the checks | | {100 * mean_1:.0f}% | 100% | 100% | | | |"


def test_until_confirmed_times_again_only_while_the_fastest_round_is_alone(table, tmp_path):
    assert lut_rounds.until_confirmed([1.0, 1.01, 2.0], base=2, tolerance_pct=2) == [1.0, 1.01]
    assert lut_rounds.until_confirmed([1.3, 1.0, 1.0], base=2, tolerance_pct=2) == [1.3, 1.0, 1.0]
    assert lut_rounds.until_confirmed([1.3, 1.0, 1.2], base=2, tolerance_pct=2) == [1.3, 1.0, 1.2]  # never: all
    assert lut_rounds.until_confirmed([1.0, 1.0, 1.0], base=3, tolerance_pct=2) == [1.0, 1.0, 1.0]
    r = lut_rounds.analyse(*_check(table, tmp_path, first_round_of_network0=1.3))
    policy = {(f["base"], f["tolerance_pct"]): f for f in r["until_confirmed"]}
    # network 0 needs its third round (its first two differ by 30%), the seven others stop after two; the table's
    # rounds (speed 1x, 2x, 3x) never agree: every part takes all three
    assert policy[2, 2.0]["check_mean_rounds"] == pytest.approx((3 + 7 * 2) / 8)
    assert policy[2, 2.0]["table_mean_rounds"] == 3.0
    assert policy[2, 2.0]["within_5_calibrated"] == 1.0  # network 0's fastest round is its prediction
    assert (policy[2, 2.0]["table_never_confirmed"], policy[2, 2.0]["check_never_confirmed"]) == (1.0, 0.0)
    assert "| x | 2 | 2% | 3.00 (100%) | 2.12 (0%) | 100% |" in lut_rounds.report({"x": r})


def test_the_table_side_keeps_only_its_first_k_rounds(tmp_path):
    """A build whose rounds get faster (3x, 2x, 1x): its first k rounds predict (4 - k) times the true figure,
    the check (the true figure in every round) is the same whichever of its rounds are kept."""
    t, c = _check(_build((3.0, 2.0, 1.0)), tmp_path, first_round_of_network0=1.0)
    r = lut_rounds.analyse(t, c)
    for key in ("first_k", "table_k_check_all"):
        assert [f["mape_raw"] for f in r[key]] == pytest.approx([200.0, 100.0, 0.0])
    assert [f["mape_raw"] for f in r["table_all_check_k"]] == pytest.approx([0.0, 0.0, 0.0])
    # a common scale is what the calibration absorbs: held out, every k is exact
    assert all(f["within_5_calibrated"] == 1.0 for f in r["first_k"])
    # the halves: one round each (3x and 2x), a common scale apart
    assert r["halves"]["predicted_moved_over_5pct"] == 0.0


def test_tables_without_recorded_rounds_are_refused(table, tmp_path):
    t, c = _check(table, tmp_path, first_round_of_network0=1.0)
    data = json.loads(t.read_text())
    for entry in data["meta"]["entries"].values():
        (entry.get("with_adapter") or entry).pop("round_values", None)
    t.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="no per-round values"):
        lut_rounds.analyse(t, c)


def test_a_layout_tables_pair_terms_come_back():
    """onnxruntime's default context: the pair terms recomputed from all rounds are the build's."""
    import torch

    class Grouped(FakeTimer):  # 0.5 ms more for an op timed after a grouped adapter
        def __call__(self, module, shape, config):
            t = super().__call__(module, shape, config)
            first = module[0] if isinstance(module, torch.nn.Sequential) else None
            grouped = isinstance(first, torch.nn.Conv2d) and 1 < first.groups < first.in_channels
            return fake_timing(t.min_ms / 0.9 + (0.5 if grouped else 0.0), shape, config)

    config = TimingConfig(backend="onnxruntime", threads=1, statistic="min")
    table = build_lut(tiny_macro(), (32, 64), config, progress=False, measure_fn=Grouped(), rounds=3,
                      max_other_cpu=None, canary=False)
    assert table.meta["context"] == "layout" and max(max(r) for r in table.pairs[2]) == pytest.approx(0.45)
    again = lut_rounds.table_from_rounds(table, range(3))
    assert list(again.pairs) == [2]
    for row, again_row in zip(table.pairs[2], again.pairs[2]):
        assert again_row == pytest.approx(row)
