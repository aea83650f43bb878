"""Checking a latency table against end-to-end measurements: spanning networks, errors, calibration, rounds."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lut_fakes import ONE, QUICK, FakeTimer, fake_timing, tiny_macro
from squeezenas.cost.lut import build_lut, check_lut, kendall_tau, spanning_genotypes
from squeezenas.cost.tables import CostTable
from squeezenas.space import random_genotype


def test_calibrated_predict_uses_stored_calibration():
    macro = tiny_macro()
    table = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    g = spanning_genotypes(table, 1, 3)[0].genotype
    raw = table.predict(g)
    assert table.predict(g, calibrated=True) == raw  # no calibration yet
    table.meta["calibration"] = {"overhead_ms": 0.5, "scale": 1.2}
    assert table.predict(g, calibrated=True) == pytest.approx(0.5 + 1.2 * raw)
    assert CostTable.from_dict(json.loads(json.dumps(table.to_dict()))).predict(g, calibrated=True) == \
        pytest.approx(0.5 + 1.2 * raw)


def test_spanning_genotypes_span_the_cost_range_and_the_skip_ratio():
    """Two stratified coordinates: the mix ratio orders the cost of the non-skip positions; the skip ratio
    spans [0, 1] independently of it, so skip-heavy networks (cheap, and where a search may end) are checked too."""
    from squeezenas.cost.tables import mac_table

    table = mac_table("small", (128, 256))  # any cost table orders the candidates
    nets = spanning_genotypes(table, 40, seed=1)
    ratios, skips = [n.mix_ratio for n in nets], [n.skip_ratio for n in nets]
    assert ratios == sorted(ratios) and 0 <= ratios[0] < 0.025 and 0.975 < ratios[-1] <= 1
    assert sorted(int(s * 40) for s in skips) == list(range(40))  # one network per stratum of the skip ratio
    fraction = [sum(op == "skip" for op in n.genotype.ops) / len(n.genotype.ops) for n in nets]
    assert min(fraction) <= 0.1 and max(fraction) >= 0.9  # skip-free and skip-heavy networks
    assert np.corrcoef(skips, fraction)[0, 1] > 0.9 and abs(np.corrcoef(ratios, skips)[0, 1]) < 0.3
    costs = [table.predict(n.genotype) for n in nets]
    uniform = [table.predict(random_genotype("small", seed)) for seed in range(40)]
    assert np.std(costs) > 1.5 * np.std(uniform)  # uniform draws cluster around the mean
    assert min(costs) < min(uniform) and max(costs) > max(uniform)
    # among the networks with few skips, the mix ratio orders the cost
    few = [(r, c) for r, c, f in zip(ratios, costs, fraction) if f < 0.5]
    assert kendall_tau([r for r, _ in few], [c for _, c in few]) > 0.6
    assert [n.genotype.ops for n in spanning_genotypes(table, 40, seed=1)] == [n.genotype.ops for n in nets]


def test_check_reports_errors_before_and_after_calibration():
    """With a fake timer whose networks cost overhead + scale × (sum of parts), calibration is exact."""
    macro = tiny_macro()
    table = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)

    def network_timer(model, shape, config):
        return fake_timing(2.0 + 1.5 * table.predict(model.genotype), shape, config)

    report = check_lut(table, samples=8, seed=0, calibrate=True, progress=False, measure_fn=network_timer)
    for key in ("mape", "kendall_tau", "raw", "calibrated", "calibration_fit", "networks", "n"):
        assert key in report
    assert report["n"] == 8 and len(report["networks"]) == 8 and report["mape"] > 1
    assert report["calibrated"]["mape"] == pytest.approx(0, abs=1e-6)
    assert report["calibrated"]["within_5pct"] == report["calibrated"]["within_10pct"] == 1.0
    assert report["raw"]["within_5pct"] <= report["raw"]["within_10pct"] < 1.0
    assert report["kendall_tau"] == pytest.approx(1.0)
    assert table.calibration["overhead_ms"] == pytest.approx(2.0) and table.calibration["scale"] == pytest.approx(1.5)
    row = report["networks"][0]
    for key in ("genotype", "mix_ratio", "skip_ratio", "skip_fraction", "predicted_ms", "measured_ms",
                "calibrated_loo_ms", "error_pct"):
        assert key in row
    again = check_lut(table, samples=4, seed=1, progress=False, measure_fn=network_timer)
    assert again["stored_calibration"]["mape"] == pytest.approx(0, abs=1e-6)
    json.dumps(report)


def test_check_with_the_real_timer_runs():
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, max_other_cpu=None, **ONE)
    report = check_lut(table, samples=3, seed=0, progress=False, max_other_cpu=None)
    assert report["n"] == 3 and all(r["measured_ms"] > 0 for r in report["networks"])
    assert report["threads"] == 1 and report["backend"] == "eager"


def test_check_rounds():
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    calls = []

    def network_timer(model, shape, config):
        calls.append(1)
        return fake_timing(table.predict(model.genotype) * (1 + 0.1 * (len(calls) % 3)), shape, config)

    report = check_lut(table, samples=4, rounds=3, progress=False, measure_fn=network_timer)
    assert len(calls) == 12 and report["rounds"] == 3
    assert all(len(r["round_medians"]) == 3 for r in report["networks"])


def test_check_can_time_each_round_in_an_order_of_its_own():
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    seen = []

    def network_timer(model, shape, config):
        seen.append(model.genotype)
        return fake_timing(table.predict(model.genotype), shape, config)

    nets = [n.genotype for n in spanning_genotypes(table, 6, seed=0)]
    fixed = check_lut(table, samples=6, rounds=3, progress=False, measure_fn=network_timer)
    assert seen == nets * 3 and fixed["order"] == "fixed"
    seen.clear()
    shuffled = check_lut(table, samples=6, rounds=3, progress=False, measure_fn=network_timer, shuffle=True)
    rounds = [seen[i:i + 6] for i in range(0, 18, 6)]
    assert all(sorted(map(str, r)) == sorted(map(str, nets)) for r in rounds)  # every network once a round
    assert len({tuple(map(str, r)) for r in rounds}) > 1 and shuffled["order"] == "shuffled each round"
    # the rows stay in the order the check drew the networks, each with its own figures
    assert [r["genotype"] for r in shuffled["networks"]] == [list(g.ops) for g in nets]
    assert [r["measured_ms"] for r in shuffled["networks"]] == pytest.approx([r["measured_ms"] for r in
                                                                            fixed["networks"]])
    assert len(set(r["measured_ms"] for r in shuffled["networks"])) == 6


def _checked_table(tmp_path):
    """A tiny table and a saved check report whose networks cost 2 ms + 1.5 × the table's sum."""
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)

    def network_timer(model, shape, config):
        return fake_timing(2.0 + 1.5 * table.predict(model.genotype), shape, config)

    report = check_lut(table, samples=6, seed=0, progress=False, measure_fn=network_timer)
    assert "calibration" not in table.meta  # without calibrate, the check stores nothing
    table.save(tmp_path / "t.json")
    (tmp_path / "check.json").write_text(json.dumps(report))
    return report


def test_calibrate_from_a_saved_report_stores_the_checks_fit(tmp_path):
    from squeezenas.cost.lut import calibrate_lut_file, load_lut

    report = _checked_table(tmp_path)
    figures = calibrate_lut_file(tmp_path / "t.json", tmp_path / "check.json")
    stored = load_lut(tmp_path / "t.json").calibration
    assert stored["overhead_ms"] == pytest.approx(2.0, abs=1e-6) and stored["scale"] == pytest.approx(1.5)
    assert stored["n_networks"] == 6 and stored["seed"] == 0 and stored["from_report"].endswith("check.json")
    assert figures["calibrated"]["mape"] == pytest.approx(report["calibrated"]["mape"], abs=1e-9)


@pytest.mark.parametrize("change, pattern", [
    (lambda r: r.update(backend="onnxruntime"), re.escape("backend is 'onnxruntime'")),
    (lambda r: r.update(input_size=[64, 128]), re.escape("input_size is [64, 128]")),
    (lambda r: r["networks"][1].update(predicted_ms=r["networks"][1]["predicted_ms"] + 0.5),
     re.escape("networks[1] was predicted")),
    (lambda r: r["networks"][2].update(measured_ms=float("nan")), re.escape("networks[2].measured_ms")),
    (lambda r: r.update(networks=r["networks"][:2]), "at least 3"),
    (lambda r: r.pop("statistic"), "no 'statistic'"),
    (lambda r: r["networks"][0].pop("predicted_ms"), r"networks\[0\] is not a checked network .*KeyError"),
    (lambda r: r["networks"][0].update(predicted_ms=None), r"networks\[0\] is not a checked network .*TypeError"),
    (lambda r: r["networks"][0].update(predicted_ms=float("nan")), r"networks\[0\] was predicted nan"),
    (lambda r: r.update(fingerprint_differences=["cpu_model: A != B"]), "ran on another device"),
])
def test_calibrate_refuses_a_report_of_another_table(tmp_path, change, pattern):
    from squeezenas.cost.lut import LutError, calibrate_lut_file

    report = _checked_table(tmp_path)
    change(report)
    (tmp_path / "check.json").write_text(json.dumps(report))
    before = (tmp_path / "t.json").read_bytes()
    with pytest.raises(LutError, match=pattern):
        calibrate_lut_file(tmp_path / "t.json", tmp_path / "check.json")
    assert (tmp_path / "t.json").read_bytes() == before  # nothing written


def test_check_reports_how_far_the_rounds_repeat(capsys):
    """Every network's second round 20% slower than its first: the figures (the median of the two, one scale
    for all) calibrate right, and the report and its printout say that the measurements do not repeat."""
    from squeezenas.cli.lut import print_report

    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    calls: dict[tuple, int] = {}

    def network_timer(model, shape, config):
        n = calls[model.genotype.ops] = calls.get(model.genotype.ops, 0) + 1
        return fake_timing(table.predict(model.genotype) * (1.2 if n == 2 else 1.0), shape, config)

    report = check_lut(table, samples=4, rounds=2, progress=False, measure_fn=network_timer)
    assert report["repeatability"]["within_5pct"] == 0.0
    assert report["repeatability"]["median_round_gap_pct"] == pytest.approx(20.0)
    assert report["calibrated"]["within_5pct"] == 1.0
    print_report(report)
    out = capsys.readouterr().out
    assert "the odd and the even rounds agree within 5% for 0% and within 10% for 0% of the networks" in out
    assert "do not repeat within 5%" in out
    one = check_lut(table, samples=4, rounds=1, progress=False, measure_fn=network_timer)  # nothing to compare
    assert one["repeatability"] is None
    calls.clear()
    steady = check_lut(table, samples=4, rounds=2, progress=False,
                       measure_fn=lambda m, s, c: fake_timing(table.predict(m.genotype), s, c))
    assert steady["repeatability"]["within_5pct"] == 1.0
    print_report(steady)
    out = capsys.readouterr().out
    assert "rounds agree within 5% for 100% and within 10% for 100% of the networks" in out
    assert "do not repeat" not in out
    assert steady["error_budget"]["residual_sd_pct"] == pytest.approx(0.0, abs=1e-6)
    assert "the table predicts these networks exactly" in out


def test_check_splits_its_error_into_its_noise_the_tables_and_the_models(capsys):
    """Networks alternately 10% above and below the table in their odd rounds and the other way round in their
    even ones: the figures (the median of both) are the table's, and all of the rounds' spread is the check's."""
    from squeezenas.cli.lut import print_report

    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    order: list[tuple] = []
    calls: dict[tuple, int] = {}

    def network_timer(model, shape, config):
        ops = model.genotype.ops
        if ops not in order:
            order.append(ops)
        n = calls[ops] = calls.get(ops, 0) + 1
        sign = (1 if order.index(ops) % 2 else -1) * (1 if n % 2 else -1)
        return fake_timing(table.predict(model.genotype) * (1 + 0.1 * sign), shape, config)

    report = check_lut(table, samples=6, rounds=2, progress=False, measure_fn=network_timer)
    b = report["error_budget"]
    assert b["residual_sd_pct"] == pytest.approx(0.0, abs=0.5) and b["check_sd_pct"] == pytest.approx(10, rel=0.1)
    assert b["table_sd_pct"] is None and b["largest"] == "check"  # a table of one round: its noise unknown
    print_report(report)
    out = capsys.readouterr().out
    assert "error budget (SD)" in out and "more rounds in the check (--rounds)" in out
