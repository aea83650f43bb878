"""The speed-normalised median of round-robin rounds (``cost/timing/rounds.py``)."""

import random

import pytest

from squeezenas.cost.timing.rounds import combine_all, combine_rounds, speed_factors


def _rounds(levels: dict[str, float], speeds: list[float], jitter: float = 0.0, seed: int = 0) -> dict:
    """Round-robin measurements of items with true ``levels`` (ms) while the machine runs at ``speeds`` (one
    factor per measurement in time order, item after item within a round)."""
    rng = random.Random(seed)
    measured: dict[str, list[dict]] = {k: [] for k in levels}
    t = 0
    rounds = len(speeds) // len(levels)
    for _ in range(rounds):
        for k, level in levels.items():
            v = level * speeds[t] * (1 + rng.uniform(-jitter, jitter))
            measured[k].append({"min_ms": v, "median_ms": v, "other_cpu": 0.0, "at": float(t)})
            t += 1
    return measured


def test_the_machines_speed_is_divided_out():
    """The machine's speed changes every 30 measurements (1.0 rarely, else 1.2 or 1.5x slower): the normalised
    median recovers every item's level within 2%, and the factors say how slow each stretch was."""
    rng = random.Random(1)
    levels = {f"p{i}": 1.0 + i for i in range(20)}
    speeds = []
    while len(speeds) < 16 * 20:
        speeds += [rng.choices((1.0, 1.2, 1.5), (1, 4, 4))[0]] * 30
    measured = _rounds(levels, speeds[:16 * 20], jitter=0.01)
    combined = combine_all(measured, "min_ms")
    scale = combined["p0"]["min_ms"] / levels["p0"]  # relative to the run's typical speed
    for k, level in levels.items():
        assert combined[k]["min_ms"] / scale == pytest.approx(level, rel=0.02)
        assert len(combined[k]["round_speeds"]) == 16
    factors = speed_factors(measured, "min_ms")
    t_of = {(k, i): int(d["at"]) for k in measured for i, d in enumerate(measured[k])}
    right = [abs(f * scale / speeds[t_of[k, i]] - 1) < 0.03 for k in factors for i, f in enumerate(factors[k])]
    assert sum(right) / len(right) > 0.85  # all but the measurements next to a change of speed


def test_a_whole_slow_run_keeps_its_scale():
    """A machine uniformly 1.3x slower gives figures 1.3x larger (the calibration's scale, not the factors,
    absorbs a slower day): factors are relative to the run's own typical speed."""
    levels = {f"p{i}": 1.0 + i for i in range(10)}
    measured = _rounds(levels, [1.3] * 80)
    combined = combine_all(measured, "min_ms")
    assert all(combined[k]["min_ms"] == pytest.approx(1.3 * v) for k, v in levels.items())
    assert all(f == pytest.approx(1.0) for d in combined.values() for f in d["round_speeds"])


def test_without_timestamps_the_fastest_or_median_round_is_kept():
    rounds = [{"median_ms": m, "min_ms": n, "other_cpu": 0.0} for m, n in ((3.0, 1.0), (1.0, 3.0), (2.0, 2.0))]
    assert combine_all({"a": rounds}, "min_ms")["a"]["min_ms"] == 1.0
    assert combine_all({"a": [dict(d, at=i) for i, d in enumerate(rounds)]}, "min_ms", normalise=False)["a"][
        "min_ms"] == 1.0
    assert "round_speeds" not in combine_all({"a": rounds}, "min_ms")["a"]


def test_normalised_entry_keeps_the_median_rounds_statistics():
    rounds = [{"median_ms": m, "min_ms": m, "iqr_ms": i, "other_cpu": c, "attempts": 2}
              for m, i, c in ((1.0, 0.1, 0.0), (2.0, 0.2, 0.3), (4.0, 0.4, 0.1))]
    entry = combine_rounds(rounds, "min_ms", factors=[1.0, 1.0, 2.0])  # normalised: 1, 2, 2
    assert entry["min_ms"] == 2.0 and entry["round_values"] == [1.0, 2.0, 4.0]
    assert entry["round_speeds"] == [1.0, 1.0, 2.0]
    assert entry["iqr_ms"] in (0.2, 0.4) and entry["other_cpu"] == 0.3 and entry["attempts"] == 6
    assert combine_rounds(rounds[:1], "min_ms", factors=[2.0])["min_ms"] == 0.5
