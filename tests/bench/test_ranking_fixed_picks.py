"""bench/ranking_fixed_picks.py: every configuration scores the same retrained picks; pruned picks are left out of
its τ; scores are kept per pick (a second call neither searches nor scores again); a report of other settings is
not mixed with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from squeezenas.space.genotype import GenotypeError

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
        (tmp_path / f"{name}.json").write_text(json.dumps({"pairs": pairs}))
        paths.append(str(tmp_path / f"{name}.json"))
    return paths


def _args(tmp_path: Path, reports: list[str], configurations: list[str]) -> argparse.Namespace:
    return argparse.Namespace(configurations=configurations, ground_truth=reports, dataset="camvid",
                              data_root=str(tmp_path / "no_data"), data_option=[], lut="lut.json", target=7.77,
                              search_epochs=8, crop=[176, 240], batch_size=8, workers=1, seed=0,
                              out=str(tmp_path / "runs"), results=str(tmp_path / "fixed.json"))


class _Scorer:
    """Scores a pick by its retrained val mIoU in set "a" order (configuration new_path) or reversed (old_mixture);
    the last pick of set "b" uses a pruned candidate (skip at the last position)."""

    def __init__(self, configuration: str, calls: list):
        self.sign = 1 if configuration == "new_path" else -1
        self.calls = calls

    def __call__(self, genotype):
        self.calls.append(genotype.ops)
        if genotype.ops[-1] == "skip":
            raise GenotypeError("position 19: candidate 'skip' was pruned")
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
    assert searched == ["new_path", "old_mixture"] and len(calls) == 14
    new, old = report["configurations"]["new_path"], report["configurations"]["old_mixture"]
    assert new["scores"][:6] == pytest.approx([v for v, _, _ in (A + B)[:6]]) and new["scores"][6] is None
    assert new["all"]["k"] == 6 and new["all"]["pruned"] == 1
    # scores equal to retrained val: τ 1 against val, and the negated scores −1
    assert new["all"]["kendall_tau_score_val"] == pytest.approx(1.0)
    assert old["all"]["kendall_tau_score_val"] == pytest.approx(-1.0)
    # set "a": latency 9, 8, 7, 6 against test 0.25, 0.26, 0.24, 0.27: 2 of 6 pairs concordant
    assert new["a"]["kendall_tau_measured_ms_test"] == pytest.approx((2 - 4) / 6)
    assert new["a"]["k"] == 4 and new["b"]["k"] == 2 and "kendall_tau_score_val" not in new["b"]  # < 3 picks
    assert new["is_default"] is True and old["is_default"] is False
    assert json.loads(Path(tmp_path / "fixed.json").read_text())["configurations"].keys() == {"new_path", "old_mixture"}


def test_a_second_call_reuses_every_score(tmp_path, reports, fakes):
    searched, calls = fakes
    first = fp.run(_args(tmp_path, reports, ["new_path"]))
    searched.clear(), calls.clear()
    again = fp.run(_args(tmp_path, reports, ["new_path"]))
    assert searched == [] and calls == []
    assert again["configurations"]["new_path"] == first["configurations"]["new_path"]


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
    assert searched == [] and calls == [] and report["configurations"]["new_path"]["all"]["k"] == 4


def test_a_report_of_other_settings_is_refused(tmp_path, reports, fakes):
    fp.run(_args(tmp_path, reports, ["new_path"]))
    other = _args(tmp_path, reports, ["old_mixture"])
    other.target = 9.0
    with pytest.raises(SystemExit, match="another ground truth or search settings"):
        fp.run(other)


def test_a_report_without_ground_truth_is_refused(tmp_path, reports, fakes):
    data = json.loads(Path(reports[0]).read_text())
    del data["pairs"][1]["test_miou"]
    Path(reports[0]).write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="pair 1 lacks"):
        fp.run(_args(tmp_path, reports, ["new_path"]))
