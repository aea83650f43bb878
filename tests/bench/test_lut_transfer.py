"""bench/lut_transfer.py: a check's networks predicted by the table of the same runtime from another CPU."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from squeezenas.cost.lut import build_lut, kendall_tau, spanning_genotypes
from squeezenas.cost.timing import TimingConfig
from tests.bench.bench_scripts import load_bench_script
from tests.cost.lut.lut_fakes import FakeTimer, tiny_macro

lut_transfer = load_bench_script("lut_transfer")


def _save_with_check(table, folder):
    """``table`` saved in ``folder`` with a check whose networks measure exactly its predictions."""
    folder.mkdir()
    path = folder / "small_32x64_eager.json"
    table.save(path)
    nets = [{"genotype": list(n.genotype.ops), "measured_ms": table.predict(n.genotype)}
            for n in spanning_genotypes(table, 8, seed=0)]
    (folder / "small_32x64_eager_check.json").write_text(json.dumps({"table": str(path), "networks": nets}))


def test_a_table_from_another_cpu_against_the_checks_own(tmp_path):
    a = build_lut(tiny_macro(), (32, 64), TimingConfig(backend="eager", threads=1), progress=False,
                  measure_fn=FakeTimer(), rounds=1, max_other_cpu=None, canary=False)
    meta = copy.deepcopy(a.meta)
    meta["fingerprint"]["cpu_model"] = "another CPU"
    # the other CPU: position 0's candidates cost the other way round, everything else alike
    rows = [list(r) for r in a.table]
    live = lut_transfer.live_candidates(a, 0)
    costs = [rows[0][j] for j in live]
    order = sorted(range(len(live)), key=lambda k: costs[k])
    for k in range(len(live)):  # the k-th cheapest gets the k-th dearest cost
        rows[0][live[order[k]]] = costs[order[-1 - k]]
    tau0 = kendall_tau(costs, [rows[0][j] for j in live])
    assert tau0 == pytest.approx(-1.0)
    b = dataclasses.replace(a, table=rows, meta=meta)
    _save_with_check(a, tmp_path / "here")
    _save_with_check(b, tmp_path / "there")
    out = lut_transfer.analyse(lut_transfer.entries([tmp_path / "here", tmp_path / "there"]))
    here = a.meta["fingerprint"]["cpu_model"]
    assert sorted((r["measured_on"], r["table_cpu"]) for r in out) == sorted(
        [(here, here), (here, "another CPU"), ("another CPU", here), ("another CPU", "another CPU")])
    for r in out:
        if r["own"]:  # each check's own table predicts its networks exactly
            assert r["mape_calibrated"] == pytest.approx(0.0, abs=1e-9) and r["within_5_calibrated"] == 1.0
            assert r["order_tau"] == pytest.approx(1.0) and r["cheapest_differs"] == 0
        else:  # position 0 ordered the other way round: τ -1 there, 1 at the others; its cheapest differs
            n = r["positions"]
            assert r["order_tau"] == pytest.approx((n - 1 + tau0) / n) and r["cheapest_differs"] == 1
            assert r["tau_raw"] < 1
    text = lut_transfer.report(out)
    assert text.count("| eager 32×64 |") == 4 and text.count("**") == 4  # the two own tables in bold
