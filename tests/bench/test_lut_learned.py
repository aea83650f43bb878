"""bench/lut_learned.py: corrections learned from whole networks, scored on held-out networks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from squeezenas.cost.lut import spanning_genotypes
from squeezenas.cost.tables import mac_table
from tests.bench.bench_scripts import load_bench_script

lut_learned = load_bench_script("lut_learned")


def _rows(table, per_op_ms, noise_pct, n=120, seed=0, per_cell_ms=None):
    """Check rows whose networks measure 0.4 ms + 2 × the table's sum + ``per_op_ms`` per position running each
    op (+ ``per_cell_ms[i][j]`` for position i running candidate j), times a relative noise of SD ``noise_pct``."""
    rng = np.random.default_rng(seed)
    index = {c: j for j, c in enumerate(table.candidates)}
    rows = []
    for net in spanning_genotypes(table, n, seed=seed):
        pred = table.predict(net.genotype)
        extra = sum(per_op_ms[index[op]] for op in net.genotype.ops)
        if per_cell_ms is not None:
            extra += sum(per_cell_ms[i][index[op]] for i, op in enumerate(net.genotype.ops))
        measured = (0.4 + 2 * pred + extra) * (1 + rng.normal(0, noise_pct / 100))
        rows.append({"genotype": list(net.genotype.ops), "predicted_ms": pred, "measured_ms": measured})
    return rows


@pytest.fixture(scope="module")
def table():
    t = mac_table("small", (128, 256), num_classes=11)
    t.table = [[v * 200 for v in row] for row in t.table]  # 200 ms per GMAC: networks of 3-18 ms
    t.fixed = {k: v * 200 for k, v in t.fixed.items()}
    return t


def test_a_cost_per_op_the_parts_miss_is_learned(table):
    per_op = np.zeros(len(table.candidates))
    per_op[:6] = [0.24, -0.16, 0.2, -0.12, 0.16, -0.24]  # ms per position running the op
    res = lut_learned.score(_rows(table, per_op, noise_pct=0.5), table, train=96, splits=5, seed=0)
    assert res["per-op"]["sd_pct"] < res["affine"]["sd_pct"] / 2
    assert res["per-op"]["within_5pct"] > res["affine"]["within_5pct"]
    assert res["per-op"]["within_5pct"] >= 0.95


def test_a_cost_per_table_cell_is_learned(table):
    cells = np.zeros((len(table.table), len(table.candidates)))
    cells[:6, 1] = [0.5, -0.4, 0.45, -0.5, 0.4, -0.45]  # one candidate costs more or less at six positions
    res = lut_learned.score(_rows(table, np.zeros(len(table.candidates)), 0.5, per_cell_ms=cells), table,
                            train=96, splits=5, seed=0)
    # ~240 corrections from 96 networks: ridge recovers part of it (as much as the data allow), the others none
    assert res["per-cell"]["sd_pct"] < res["affine"]["sd_pct"] * 0.92
    assert res["per-cell"]["sd_pct"] < min(res["per-op"]["sd_pct"], res["per-op-scale"]["sd_pct"])


def test_ridge_without_penalty_is_least_squares_on_relative_errors_and_never_shrinks_the_affine_terms():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(50), rng.uniform(1, 10, 50), rng.normal(0, 1, (50, 3))])
    m = x @ np.array([0.5, 2.0, 0.3, -0.2, 0.1]) + rng.normal(0, 0.05, 50)
    expected, *_ = np.linalg.lstsq(x / m[:, None], np.ones(50), rcond=None)
    assert lut_learned.ridge_fit(x, m, 0.0) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    strong = lut_learned.ridge_fit(x, m, 1e6)
    assert np.abs(strong[2:]).max() < 1e-3  # the corrections shrunk to nothing
    affine, *_ = np.linalg.lstsq(x[:, :2] / m[:, None], np.ones(50), rcond=None)
    assert strong[:2] == pytest.approx(affine, rel=1e-3)  # the overhead and scale as without corrections


def test_without_structure_the_corrections_gain_nothing(table):
    rows = _rows(table, np.zeros(len(table.candidates)), noise_pct=2.0)
    res = lut_learned.score(rows, table, train=96, splits=5, seed=0)
    assert 1.5 < res["affine"]["sd_pct"] < 2.6  # the noise itself
    for form in ("per-op", "per-op-scale", "per-cell"):
        assert res[form]["sd_pct"] > res["affine"]["sd_pct"] * 0.9


def test_report_from_a_check_file(table, tmp_path, capsys, monkeypatch):
    path = tmp_path / "small_128x256_eager.json"
    table.save(path)
    check = tmp_path / "check.json"
    rows = _rows(table, np.zeros(len(table.candidates)), 1.0, n=40)
    check.write_text(json.dumps({"table": str(path), "networks": rows}))
    (tmp_path / "again").mkdir()
    again = tmp_path / "again" / "check.json"  # a check of the same name in another folder keeps its own rows
    again.write_text(check.read_text())
    out = tmp_path / "learned.md"
    monkeypatch.setattr("sys.argv", ["lut_learned", str(check), str(again), "--train", "24", "--splits", "2",
                                     "--out", str(out)])
    lut_learned.main()
    text = out.read_text()
    name = f"{tmp_path.name}/check"
    assert text.count(f"| {name} | 40 | 24 |") == 4 and text.count("| again/check | 40 | 24 |") == 4
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report) == {f"{name}/train24", "again/check/train24"}
    assert set(report["again/check/train24"]) == set(lut_learned.FORMS)
