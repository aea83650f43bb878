"""Calibration maths, rank correlation and error summaries of latency-table checks."""

from __future__ import annotations

import math
import random

import pytest

from squeezenas.cost.lut import error_summary, fit_calibration, kendall_tau, leave_one_out, repeatability, spearman


def test_fit_calibration_recovers_overhead_and_scale_exactly():
    pred = [1.0, 2.5, 4.0, 7.5, 10.0]
    meas = [3.0 + 1.25 * p for p in pred]
    overhead, scale = fit_calibration(pred, meas)
    assert overhead == pytest.approx(3.0, abs=1e-9) and scale == pytest.approx(1.25, abs=1e-12)
    assert leave_one_out(pred, meas) == pytest.approx(meas)
    assert fit_calibration([2.0], [3.0]) == (1.0, 1.0)  # one point: overhead only
    assert fit_calibration([2.0, 2.0], [3.0, 5.0]) == (2.0, 1.0)  # no spread in predictions: overhead only


def test_spearman_known_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # ranks 1 2 3 4 against 1 3 2 4: 1 − 6 Σd² / (n (n² − 1)) = 1 − 6 · 2 / 60
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties take their mean rank: scipy.stats.spearmanr([1, 2, 2, 3], [1, 2, 3, 4]) = 0.9486832980505138
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)


def test_kendall_tau_known_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # one discordant pair of six
    # with ties (tau-b): scipy.stats.kendalltau([1, 2, 2, 3], [1, 2, 3, 3]) = 0.8
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert math.isnan(kendall_tau([1, 1], [2, 2]))
    rng = random.Random(0)
    a = [rng.random() for _ in range(30)]
    b = [rng.random() for _ in range(30)]
    assert kendall_tau(a, b) == pytest.approx(kendall_tau(b, a))


def test_error_summary():
    s = error_summary([11.0, 18.0], [10.0, 20.0])
    assert s["mape"] == pytest.approx(10.0) and s["max_abs_pct_error"] == pytest.approx(10.0)
    assert s["max_abs_error_ms"] == pytest.approx(2.0) and s["mean_signed_pct_error"] == pytest.approx(0.0)
    assert s["kendall_tau"] == 1.0
    s = error_summary([10.4, 21.5, 33.0, 40.0], [10.0, 20.0, 30.0, 50.0])  # +4%, +7.5%, +10%, -20%
    assert s["within_5pct"] == 0.25 and s["within_10pct"] == 0.75


def test_calibration_never_reverses_the_table_order():
    from squeezenas.cost.lut import fit_calibration

    overhead, scale = fit_calibration([10.0, 20.0, 30.0], [50.0, 40.0, 30.0])  # noise: measured falls as predicted rises
    assert overhead == 0.0 and scale > 0
    assert fit_calibration([10.0, 20.0, 30.0], [13.0, 23.0, 33.0]) == pytest.approx((3.0, 1.0))


def test_repeatability_is_the_gap_between_the_odd_and_the_even_rounds():
    # gaps between the medians of the odd and of the even rounds: 2%, 15%, 4% (the one slow round does not move
    # its half's median); a network timed once has none
    rep = repeatability([[1.0, 1.02, 1.0, 1.02], [2.3, 2.0], [4.0, 4.16, 4.0, 4.16, 9.0], [3.0]])
    assert rep["n"] == 3
    assert rep["median_round_gap_pct"] == pytest.approx(4.0)
    assert rep["max_round_gap_pct"] == pytest.approx(15.0)
    assert rep["within_5pct"] == pytest.approx(2 / 3) and rep["within_10pct"] == pytest.approx(2 / 3)
    assert repeatability([[3.0], [2.0]]) is None and repeatability([]) is None
