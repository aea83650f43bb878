"""bench/ranking_fidelity.py: a ground truth combined from committed progress files (no retraining) gives the
rank correlations of the supernet score, and of measured latency alone, with the retrained mIoU."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from squeezenas.data.base import DataError

from bench_scripts import load_bench_script

rf = load_bench_script("ranking_fidelity")

OPS = ("k3_d1_e1_g1", "k5_d1_e3_g1", "k3_d2_e6_g1", "skip")
# four picks: score, measured ms, and the retrained test mIoU of seeds 0 and 1
PICKS = [(0.10, 10.0, (0.30, 0.32)), (0.08, 9.0, (0.28, 0.27)), (0.12, 8.0, (0.26, 0.25)), (0.05, 7.0, (0.20, 0.22))]


def _args(tmp_path: Path, seeds: list[int]) -> argparse.Namespace:
    return argparse.Namespace(
        configuration="new_path", dataset="camvid", data_root=str(tmp_path / "no_data"), data_option=[],
        lut=None, picks_from=str(tmp_path / "picks.json"), target=None, search_epochs=8, crop=(176, 240),
        size=(180, 240), batch_size=8, n=100, val_limit=50, k=4, train_epochs=40, recipe="v2", seeds=seeds,
        picks=None, workers=1, seed=0, out=str(tmp_path / "runs"), results=str(tmp_path / "results"))


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """An earlier report's picks and both seeds' progress files, as a session leaves them."""
    genotypes = [[OPS[(i + j) % len(OPS)] for j in range(20)] for i in range(len(PICKS))]
    pairs = [{"genotype": g, "score": s, "predicted_ms": ms * 0.8, "measured_ms": ms, "on_front": True,
              "test_miou": short}  # the earlier, shorter ground truth: the opposite order on test
             for g, (s, ms, _), short in zip(genotypes, PICKS, (0.20, 0.21, 0.22, 0.23))]
    (tmp_path / "picks.json").write_text(json.dumps({"configuration": {"name": "new_path"}, "pairs": pairs}))
    results = tmp_path / "results"
    results.mkdir()
    settings = rf.ground_truth_settings(_args(tmp_path, [0]))
    for seed in (0, 1):
        progress = {f"{n:02d}/s{seed}": {"val": test[seed] + 0.1, "test": test[seed], "genotype": g,
                                         "settings": settings}
                    for n, (g, (_, _, test)) in enumerate(zip(genotypes, PICKS))}
        (results / f"new_path_v2_s{seed}.progress.json").write_text(json.dumps(progress))
    return tmp_path


def test_combined_report_from_progress_files(committed: Path):
    report = rf.run(_args(committed, [0, 1]))  # any retraining would fail: the data root does not exist
    assert json.loads((committed / "results" / "new_path_v2_s0-1.json").read_text())["k"] == 4
    tests = [sum(t) / 2 for _, _, t in PICKS]
    assert [p["test_miou"] for p in report["pairs"]] == pytest.approx(tests)
    assert report["pairs"][0]["test_miou_seeds"] == [0.30, 0.32]
    # score order 0.12 > 0.10 > 0.08 > 0.05 vs test 0.255 < 0.31 > 0.275 > 0.21: 4 of 6 pairs concordant
    assert report["kendall_tau_test"] == pytest.approx((4 - 2) / 6)
    # latency order 10 > 9 > 8 > 7: the test order, not the score's
    assert report["kendall_tau_measured_ms_test"] == pytest.approx(1.0)
    assert report["kendall_tau_retrained_val_test"] == pytest.approx(1.0)  # val = test + 0.1
    assert report["kendall_tau_retrained_seed_seed_test"] == pytest.approx(1.0)
    # the two seeds differ by 0.02, 0.01, 0.01, 0.02: sd √(mean d² / 2); the test span 0.31 − 0.21 in those sds
    sd = (sum(d * d / 2 for d in (0.02, 0.01, 0.01, 0.02)) / 4) ** 0.5
    assert report["retrained_seed_sd_test"] == pytest.approx(sd)
    assert report["retrained_seed_sd_val"] == pytest.approx(sd)
    assert report["retrained_span_test"] == pytest.approx(0.10)
    # the expected range of 4 standard normal draws is 2.059 (tables of the range's mean, d2 for n = 4)
    assert rf.expected_range(4) == pytest.approx(2.059, abs=0.01)
    assert report["retrained_span_if_noise_test"] == pytest.approx(rf.expected_range(4) * sd / 2 ** 0.5)
    assert report["kendall_tau_test_vs_picks_from"] == pytest.approx(-1.0)
    assert "kendall_tau_val_vs_picks_from" not in report  # the earlier report has no val mIoU
    assert report["is_default"] is True


def test_progress_of_other_settings_is_not_reused(committed: Path):
    args = _args(committed, [0])
    args.train_epochs = 8  # the progress files hold 40-epoch retrainings: this one must retrain, and has no data
    with pytest.raises(DataError, match="data root not found"):
        rf.run(args)
    assert not (committed / "results" / "new_path_v2.json").exists()


def test_picks_of_another_configuration_are_refused(committed: Path):
    args = _args(committed, [0])
    args.configuration = "old_mixture"
    with pytest.raises(SystemExit, match="holds the picks of configuration 'new_path'"):
        rf.run(args)


def test_a_lane_retrains_its_picks_only_and_keeps_what_other_lanes_wrote(committed: Path, monkeypatch):
    progress = committed / "results" / "new_path_v2_s0.progress.json"
    entries = json.loads(progress.read_text())
    fresh_3 = entries["03/s0"]  # pick 3: stale when this lane starts, retrained by the other lane meanwhile
    entries["03/s0"] = {**fresh_3, "test": 0.01, "settings": {**fresh_3["settings"], "train_epochs": 8}}
    entries.pop("02/s0")  # pick 2: this lane's to retrain
    progress.write_text(json.dumps(entries))
    retrained = []

    def fake_retrain(folder, data, args, seed):
        retrained.append(folder.name)
        progress.write_text(json.dumps({**json.loads(progress.read_text()), "03/s0": fresh_3}))  # the other lane
        return {"val": 0.5, "test": 0.4}

    monkeypatch.setattr(rf, "retrain", fake_retrain)
    args = _args(committed, [0])
    args.picks = [1, 2]
    report = rf.run(args)
    assert retrained == ["02"]  # pick 1 was done, pick 3 is not this lane's
    assert [p["test_miou"] for p in report["pairs"]] == pytest.approx([PICKS[1][2][0], 0.4])
    written = json.loads(progress.read_text())
    assert sorted(written) == ["00/s0", "01/s0", "02/s0", "03/s0"]
    assert written["03/s0"] == fresh_3  # the other lane's result, not this lane's stale copy
    assert written["02/s0"]["test"] == 0.4 and "command" in written["02/s0"]
    assert "command" not in written["01/s0"]  # a finished entry is taken as it is, not rewritten
    assert not (committed / "results" / "new_path_v2.json").exists()  # a lane writes no report


def test_lanes_need_the_picks_of_an_earlier_report(committed: Path):
    args = _args(committed, [0])
    args.picks, args.picks_from, args.lut = [0], None, "table.json"
    with pytest.raises(SystemExit, match="give --picks-from"):
        rf.run(args)


def test_picks_out_of_range_are_refused(committed: Path):
    args = _args(committed, [0])
    args.picks = [2, 7]
    with pytest.raises(SystemExit, match=r"--picks: \[7\] not among the 4 picks"):
        rf.run(args)


def test_every_scoring_split_belongs_to_a_configuration_that_trains_without_it():
    from squeezenas.data import split_filter

    for name, split in rf.SCORING_SPLIT.items():
        fields, is_default = rf.CONFIGURATIONS[name]
        base, keep = split_filter(split)
        train_base, train_keep = split_filter(fields["train_split"])
        assert base == train_base == "train" and not is_default
        assert keep("0006R0_f01950.jpg") and not train_keep("0006R0_f01950.jpg")  # the held-out drive: scored
        assert train_keep("0016E5_08370.jpg") and not keep("0016E5_08370.jpg")  # the others: trained on
