"""bench/lut_learned.py: corrections learned from whole networks, scored on held-out networks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from squeezenas.cost.lut import spanning_genotypes
from squeezenas.cost.tables import mac_table
from tests.bench.bench_scripts import load_bench_script

lut_learned = load_bench_script("lut_learned")


def _rows(table, per_op_ms, noise_pct, n=120, seed=0):
    """Check rows whose networks measure 0.4 ms + 2 × the table's sum + ``per_op_ms`` per position running each
    op, times a relative noise of SD ``noise_pct``."""
    rng = np.random.default_rng(seed)
    index = {c: j for j, c in enumerate(table.candidates)}
    rows = []
    for net in spanning_genotypes(table, n, seed=seed):
        pred = table.predict(net.genotype)
        extra = sum(per_op_ms[index[op]] for op in net.genotype.ops)
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
    check.write_text(json.dumps({"table": str(path), "networks": _rows(table, np.zeros(13), 1.0, n=40)}))
    out = tmp_path / "learned.md"
    monkeypatch.setattr("sys.argv", ["lut_learned", str(check), "--train", "24", "--splits", "2", "--out", str(out)])
    lut_learned.main()
    text = out.read_text()
    assert text.count("| check | 40 | 24 |") == 4 and "per-cell" in text
    assert set(json.loads(out.with_suffix(".json").read_text())["check/train24"]) == set(lut_learned.FORMS)
