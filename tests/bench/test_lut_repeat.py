"""bench/lut_repeat.py: two checks of the same networks split the held-out error into the table's and the runs'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.bench.bench_scripts import load_bench_script

lut_repeat = load_bench_script("lut_repeat")


def _check(table, errors, measured):
    nets = [{"genotype": [f"op{i}"], "calibrated_error_pct": float(e), "measured_ms": float(m)}
            for i, (e, m) in enumerate(zip(errors, measured))]
    return {"table": table, "networks": nets}


def test_the_shared_error_is_the_tables_and_the_rest_the_runs():
    rng = np.random.default_rng(0)
    n = 4000
    model = rng.normal(0, 2.0, n)  # the table's own error: the same in both runs
    run_a, run_b = rng.normal(0, 1.0, n), rng.normal(0, 1.0, n)
    m = rng.uniform(1, 10, n)
    a = _check("t.json", model + run_a, m * (1 + run_a / 100))
    b = _check("t.json", model + run_b, m * (1 + run_b / 100))
    s = lut_repeat.split(a, b, root=Path("/nonexistent"))
    assert s["shared_sd_pct"] == pytest.approx(2.0, rel=0.05)
    assert s["run_sd_pct"] == pytest.approx(1.0, rel=0.1)
    assert s["correlation"] == pytest.approx(4 / 5, abs=0.03)
    assert s["moved_sd_pct"] == pytest.approx(np.sqrt(2), rel=0.1)  # the two runs' errors apart
    assert s["round_noise_pct"] == [None, None]  # no table found, no rounds


def test_groups_only_checks_of_the_same_networks_of_one_table(tmp_path):
    errs, m = [1.0, -2.0, 0.5], [1.0, 2.0, 3.0]
    (tmp_path / "runs").mkdir()
    for name, table, e in (("a_check.json", "x/t.json", errs), ("runs/b_check.json", "y/t.json", errs[::-1]),
                           ("c_check.json", "x/u.json", errs)):
        (tmp_path / name).write_text(json.dumps(_check(table, e, m)))
    (tmp_path / "broken_check.json").write_text("{")
    groups = lut_repeat.same_networks(tmp_path)
    assert [sorted(p.name for p, _ in v) for v in groups.values()] == []  # x/t and y/t are different tables
    (tmp_path / "d_check.json").write_text(json.dumps(_check("elsewhere/x/t.json", [0.0, 0.0, 0.0], m)))
    groups = lut_repeat.same_networks(tmp_path)
    assert [sorted(p.name for p, _ in v) for v in groups.values()] == [["a_check.json", "d_check.json"]]


def test_report_names_both_checks_and_the_split(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    model = rng.normal(0, 2.0, 24)
    for name in ("a_check.json", "b_check.json"):
        errors = model + rng.normal(0, 0.5, 24)
        (tmp_path / name).write_text(json.dumps(_check("runs/t.json", errors, np.ones(24))))
    out = tmp_path / "repeat.md"
    monkeypatch.setattr("sys.argv", ["lut_repeat", str(tmp_path), "--out", str(out)])
    lut_repeat.main()
    row = out.read_text().splitlines()[2]
    assert row.startswith("| runs/t.json | a_check.json | b_check.json | 24 |") and "– / –" in row
    [pair] = json.loads(out.with_suffix(".json").read_text())
    assert pair["correlation"] > 0.7 and pair["shared_sd_pct"] > 2 * pair["run_sd_pct"]  # 2.0 against 0.5
