"""bench/ranking_fixed_picks.py: every configuration scores the same retrained picks; pruned picks are left out of
its figures and ``common`` compares all on the picks every one scored; τ pooled over sets counts pairs within a set;
scores are kept per pick with their search settings; reports of other settings or recipes are refused."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench_scripts import load_bench_script

fp = load_bench_script("ranking_fixed_picks")

OPS = ("k3_d1_e1_g1", "k5_d1_e3_g1", "k3_d2_e6_g1", "skip")

# (retrained val, retrained test, measured ms) of four picks in set "a" and three in set "b"
A = [(0.30, 0.25, 9.0), (0.32, 0.26, 8.0), (0.28, 0.24, 7.0), (0.35, 0.27, 6.0)]
B = [(0.40, 0.28, 5.0), (0.33, 0.23, 9.5), (0.31, 0.22, 8.5)]


def _genotype(i: int) -> list[str]:
    """Pick i: k5 at position i, k3 elsewhere; the last pick ends in skip."""
    return [OPS[1] if j == i else OPS[0] for j in range(19)] + [OPS[3] if i == 6 else OPS[0]]


@pytest.fixture
def reports(tmp_path: Path) -> list[str]:
    paths = []
    for name, rows, first in (("a", A, 0), ("b", B, len(A))):
        pairs = [{"genotype": _genotype(first + n), "score": 0.1, "val_miou": v, "test_miou": t, "measured_ms": ms}
                 for n, (v, t, ms) in enumerate(rows)]
        settings = {"recipe": "v2", "train_epochs": 40, "seeds": [0, 1] if name == "a" else [0]}
        (tmp_path / f"{name}.json").write_text(json.dumps({"configuration": {"settings": settings}, "pairs": pairs}))
        paths.append(str(tmp_path / f"{name}.json"))
    return paths


def _args(tmp_path: Path, reports: list[str], configurations: list[str]) -> argparse.Namespace:
    return argparse.Namespace(configurations=configurations, ground_truth=reports, dataset="camvid",
                              data_root=str(tmp_path / "no_data"), data_option=[], lut="lut.json", target=7.77,
                              search_epochs=8, crop=[176, 240], batch_size=8, workers=1, seed=0,
                              out=str(tmp_path / "runs"), results=str(tmp_path / "fixed.json"))


class _Scorer:
    """Scores a pick by its retrained val mIoU (configuration new_path) or its negative (any other). Every supernet
    pruned skip (the last pick of set "b" ends in it), old_mixture's also k5 at position 0 (pick 0 of set "a")."""

    def __init__(self, configuration: str, calls: list):
        self.sign = 1 if configuration == "new_path" else -1
        self.calls = calls
        alive = [OPS[:3]] * 20
        if configuration == "old_mixture":
            alive[0] = (OPS[0], OPS[2])
        self.net = SimpleNamespace(pruned_in=lambda g: [(i, c) for i, c in enumerate(g.ops) if c not in alive[i]])

    def __call__(self, genotype):
        self.calls.append(genotype.ops)
        assert genotype.ops[-1] != "skip", "a pruned pick was scored"
        i = next(i for i in range(7) if tuple(_genotype(i)) == genotype.ops)
        return {"miou": self.sign * (A + B)[i][0]}


@pytest.fixture
def fakes(monkeypatch):
    searched, calls = [], []
    monkeypatch.setattr(fp, "search", lambda args, root, data: searched.append(args.configuration))
    monkeypatch.setattr(fp, "path_scorer", lambda cfg, limit: _Scorer(Path(cfg.search).parent.name, calls))
    return searched, calls


def test_every_configuration_scores_the_same_picks(tmp_path, reports, fakes):
    searched, calls = fakes
    report = fp.run(_args(tmp_path, reports, ["new_path", "old_mixture"]))
    assert searched == ["new_path", "old_mixture"] and len(calls) == 6 + 5  # no pruned pick scored
    new, old = report["configurations"]["new_path"], report["configurations"]["old_mixture"]
    assert new["scores"][:6] == pytest.approx([v for v, _, _ in (A + B)[:6]]) and new["scores"][6] is None
    assert old["scores"][0] is None and old["scores"][6] is None
    assert new["within_sets"]["k"] == 6 and new["within_sets"]["pruned"] == 1
    assert new["sets"]["a"]["k"] == 4 and new["sets"]["b"]["k"] == 2 and "kendall_tau_score_val" not in new["sets"]["b"]
    # scores equal to retrained val: τ 1 within set a (set b has too few picks), the negated scores −1
    assert new["within_sets"]["kendall_tau_score_val"] == pytest.approx(1.0)
    assert old["within_sets"]["kendall_tau_score_val"] == pytest.approx(-1.0)
    # set "a": latency 9, 8, 7, 6 against test 0.25, 0.26, 0.24, 0.27: 2 of 6 pairs concordant
    assert new["sets"]["a"]["kendall_tau_measured_ms_test"] == pytest.approx((2 - 4) / 6)
    assert new["sets"]["a"]["spearman_rho_score_val"] == pytest.approx(1.0)
    # the standard error of τ for unrelated orders, √(2 · 13 / (9 · 4 · 3)) for 4 picks; pooled over one set too
    assert new["sets"]["a"]["tau_se_if_unrelated"] == pytest.approx((26 / 108) ** 0.5)
    assert new["within_sets"]["tau_se_if_unrelated"] == pytest.approx((26 / 108) ** 0.5)
    assert fp.tau_se(10) == pytest.approx(0.248, abs=1e-3)
    # common: picks 1, 2, 3 of set "a" and 0, 1 of set "b", scored by both; latency 8, 7, 6 vs test .26, .24, .27
    assert new["common"]["k"] == old["common"]["k"] == 5
    assert new["common"]["kendall_tau_measured_ms_test"] == pytest.approx(-1 / 3)
    assert new["is_default"] is True and old["is_default"] is False
    written = json.loads(Path(tmp_path / "fixed.json").read_text())
    assert written["configurations"].keys() == {"new_path", "old_mixture"}
    assert written["ground_truth"]["sets"]["a"]["seeds"] == [0, 1]


def test_lanes_side_by_side_keep_each_others_configurations(tmp_path, reports, fakes, monkeypatch):
    """A lane that started before another finished still keeps the other's entry when it writes its own."""
    real = fp.score_picks

    def other_lane_finishes_meanwhile(args, configuration, picks, data):
        if configuration == "old_mixture":
            fp.run(_args(tmp_path, reports, ["new_path"]))
        return real(args, configuration, picks, data)

    monkeypatch.setattr(fp, "score_picks", other_lane_finishes_meanwhile)
    report = fp.run(_args(tmp_path, reports, ["old_mixture"]))
    assert report["configurations"].keys() == {"new_path", "old_mixture"}
    assert json.loads(Path(tmp_path / "fixed.json").read_text())["configurations"].keys() == {"new_path", "old_mixture"}


def test_another_ground_truth_of_the_same_networks_reuses_the_scores(tmp_path, reports, fakes):
    searched, calls = fakes
    fp.run(_args(tmp_path, reports, ["new_path"]))
    searched.clear(), calls.clear()
    again = _args(tmp_path, [reports[0]], ["new_path"])
    again.results = str(tmp_path / "a_only.json")
    report = fp.run(again)
    assert searched == [] and calls == [] and report["configurations"]["new_path"]["within_sets"]["k"] == 4


def test_a_kept_score_of_other_search_settings_is_not_reused(tmp_path, reports, fakes):
    searched, calls = fakes
    fp.run(_args(tmp_path, reports, ["new_path"]))
    searched.clear(), calls.clear()
    other = _args(tmp_path, reports, ["new_path"])
    other.target, other.results = 9.0, str(tmp_path / "other.json")
    fp.run(other)
    assert searched == ["new_path"] and len(calls) == 6


def test_a_report_of_other_settings_is_refused(tmp_path, reports, fakes):
    fp.run(_args(tmp_path, reports, ["new_path"]))
    other = _args(tmp_path, reports, ["old_mixture"])
    other.target = 9.0
    searched, calls = fakes
    searched.clear(), calls.clear()
    with pytest.raises(SystemExit, match="another ground truth or search settings"):
        fp.run(other)
    assert searched == [] and calls == []  # refused before any work


def test_reports_of_another_recipe_are_not_pooled(tmp_path, reports, fakes):
    data = json.loads(Path(reports[1]).read_text())
    data["configuration"]["settings"]["train_epochs"] = 8
    Path(reports[1]).write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="pool only reports of one retraining recipe"):
        fp.run(_args(tmp_path, reports, ["new_path"]))


def test_a_network_in_two_reports_counts_once(tmp_path, reports, fakes):
    data = json.loads(Path(reports[1]).read_text())
    data["pairs"][0]["genotype"] = _genotype(0)  # set b's first pick is set a's first
    Path(reports[1]).write_text(json.dumps(data))
    report = fp.run(_args(tmp_path, reports, ["new_path"]))
    assert len(report["picks"]) == 6 and report["configurations"]["new_path"]["sets"]["b"]["k"] == 1


def test_a_report_without_ground_truth_is_refused(tmp_path, reports, fakes):
    data = json.loads(Path(reports[0]).read_text())
    del data["pairs"][1]["test_miou"]
    Path(reports[0]).write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="pair 1 lacks"):
        fp.run(_args(tmp_path, reports, ["new_path"]))


def test_table_ratio_compares_a_new_table_with_the_reports_tables(reports, monkeypatch):
    """Every pick's prediction in the new table over the one its report recorded."""
    data = json.loads(Path(reports[0]).read_text())
    for p in data["pairs"]:
        p["predicted_ms"] = 5.0
    Path(reports[0]).write_text(json.dumps(data))
    table = SimpleNamespace(macro="small", predict=lambda g: 9.0 + (g.ops[0] == OPS[1]))  # pick 0: 10 ms
    monkeypatch.setattr(fp, "load_lut", lambda path: table)
    monkeypatch.setattr(fp, "Genotype", lambda macro, ops: SimpleNamespace(ops=ops))
    assert fp.table_ratio("lut.json", [reports[0]]) == pytest.approx([2.0, 1.8, 1.8, 1.8])
