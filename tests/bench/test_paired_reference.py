"""bench/paired_reference.py: how well three figures from rounds repeat between halves of a run (no timing)."""

import random

import pytest

from tests.bench.bench_scripts import load_bench_script

pr = load_bench_script("paired_reference")


def _result(rounds: int, n: int = 12, seed: int = 0) -> dict:
    """Networks of levels 1..n timed in ``rounds`` rounds while the machine runs 1.5x slower in stretches of 10
    measurements at a time (one in three, at random): the fastest round misses the level where a network never
    caught a fast stretch; the speed-normalised median divides the stretches out."""
    rng = random.Random(seed)
    speeds = []
    while len(speeds) < rounds * n:
        speeds += [rng.choice((1.0, 1.5, 1.5))] * 10
    rows = [{"index": k, "net_ms": [], "ref_before_ms": [], "ref_after_ms": []} for k in range(n)]
    for r in range(rounds):
        for k, row in enumerate(rows):
            row["net_ms"].append((1 + k) * speeds[r * n + k] * (1 + rng.uniform(-0.005, 0.005)))
    return {"rounds": rounds, "rows": rows}


def test_the_normalised_median_repeats_where_the_fastest_round_does_not():
    shares = pr.estimator_shares(_result(32))
    assert shares["speed-normalised median"] == 1.0
    assert set(shares) == {"fastest round", "median round", "speed-normalised median"}
    four = pr.estimator_shares(_result(8))  # four rounds per half: some networks never catch a fast stretch
    assert four["speed-normalised median"] == 1.0 > four["fastest round"]


def test_summary_and_report_without_a_reference():
    result = {**_result(8), "table": "t.json", "backend": "eager", "threads": 2, "size": [128, 256],
              "net_s": 0.1, "ref_s": 0, "wall_s": 60.0, "reference": pr.REFERENCE}
    summary = pr.summarise(result)
    assert "paired" not in summary and "reference_ms" not in summary
    assert list(summary["plain"]["halves_within_5pct"]) == [1, 2, 4]
    text = pr.report(result, summary)
    assert "| speed-normalised median |" in text and "reference squeezenas" not in text
    assert pr.fastest_two_within([1.0, 1.04, 2.0]) and not pr.fastest_two_within([1.0, 1.06])
    assert pr.paired({"net_ms": [2.0], "ref_before_ms": [1.0], "ref_after_ms": [3.0]}) == [pytest.approx(1.0)]
