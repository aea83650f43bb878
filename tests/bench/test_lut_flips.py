"""bench/lut_experiment.py: candidate pairs whose order two runtimes' tables reverse."""

from __future__ import annotations

from types import SimpleNamespace

from squeezenas.cost.tables import ADAPTER_CONTEXT
from tests.bench.bench_scripts import load_bench_script

experiment = load_bench_script("lut_experiment")
CELLS = [["a", "b", "c"], ["d", "e", "identity"]]


def _table(rows, fixed=None):
    return SimpleNamespace(table=rows, fixed=fixed or {"stem": 0.1}, meta={"cells": CELLS})


def test_flips_count_pairs_reversed_beyond_the_margin_and_leave_out_shifted_rows():
    eager = _table([[0.1, 0.2, 0.3], [0.5, 0.2, 0.0]])
    other = _table([[0.25, 0.2, 0.3], [0.5, 0.5, 0.0]])
    # position 0: a/b reversed (0.5 vs 1.25, both > 10% apart); a/c 0.33 vs 0.83 not; position 1: d/e 2.5 vs 1.0 (no)
    assert experiment.count_flips(eager, other, 0.1) == 1
    assert experiment.count_flips(eager, other, 0.3) == 0  # 1.25 is within 30% of 1
    # the same row shifted (cheapest at 1 µs, an adapter context < 0): ratios mean nothing there, the row is left out
    shifted = _table([[0.151, 0.001, 0.301], [0.5, 0.5, 0.0]], {"stem": 0.1, ADAPTER_CONTEXT: -0.149})
    assert experiment.count_flips(eager, shifted, 0.1) == 0
    unshifted = _table([[0.151, 0.0011, 0.301], [0.5, 0.5, 0.0]])  # no adapter context: a plain row, counted
    assert experiment.count_flips(eager, unshifted, 0.1) == 1  # a/b: 0.5 vs 137


def test_checked_tables_pair_each_check_with_the_table_beside_it(tmp_path):
    for name in ("a.json", "a_check.json", "b_check.json", "c.json", "a_fresh.json"):
        (tmp_path / name).write_text("{}")
    assert experiment.checked_tables(tmp_path) == [(tmp_path / "a.json", tmp_path / "a_check.json")]
