"""bench/camvid_claim.py: the report of the paper's claim (issue 14) reads the runs it is given, and its verdict
applies the issue's test (mean gap above the larger seed sd, at no more latency, against the right baseline)."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from bench_scripts import ROOT, load_bench_script

COMMITTED = ROOT / "bench" / "results" / "camvid_claim"
claim = load_bench_script("camvid_claim")


def _arm(mious: list[float], ms: float) -> dict:
    return {"test_miou": mious, "latency_ms": ms}


def test_verdict_holds_only_beyond_the_seed_spread_and_at_no_more_latency():
    baselines = {"mnv3_small": _arm([0.30, 0.31], 7.0), "mnv3_large": _arm([0.40, 0.41], 16.0)}
    target = {"arms": {"latency": _arm([0.36, 0.37], 6.5), "mac": _arm([0.35, 0.36], 6.0)}}
    lines = claim.verdict(target, baselines)
    assert len(lines) == 2
    # vs MAC: +1.0 point, larger sd 0.7 point, but the latency arm is slower (6.5 vs 6.0 ms, beyond 2%)
    assert "MAC-searched" in lines[0] and "+1.0 points" in lines[0] and lines[0].endswith("does not hold")
    # vs the nearest baseline at least as slow (Small, 7.0 ms): +6 points, faster → holds
    assert "MobileNetV3-Small" in lines[1] and "+6.0 points" in lines[1] and lines[1].endswith("**holds**")

    target["arms"]["mac"]["latency_ms"] = 6.4  # within 2% of 6.5: "at ≤ its latency"
    assert claim.verdict(target, baselines)[0].endswith("**holds**")
    target["arms"]["mac"]["test_miou"] = [0.34, 0.38]  # gap 0.5 point < sd 2.8 points
    assert claim.verdict(target, baselines)[0].endswith("does not hold")
    target["arms"]["mac"]["test_miou"] = [0.33, 0.37]  # gap 1.5 points: above this arm's sd 0.7, not the other's 2.8
    assert claim.verdict(target, baselines)[0].endswith("does not hold")


def test_verdict_compares_with_the_nearest_baseline_at_least_as_slow():
    baselines = {"mnv3_small": _arm([0.35, 0.36], 7.0), "mnv3_large": _arm([0.39, 0.40], 16.4)}
    target = {"arms": {"latency": _arm([0.32, 0.33], 10.6)}}  # between them: Small is nearer but faster
    (line,) = claim.verdict(target, baselines)
    assert "MobileNetV3-Large" in line and "-7.0 points" in line and line.endswith("does not hold")
    # within 2% above Small's latency counts as "at ≤ its latency": Small is the baseline
    target["arms"]["latency"]["latency_ms"] = 7.1
    assert "MobileNetV3-Small" in claim.verdict(target, baselines)[0]
    target["arms"]["latency"]["latency_ms"] = 7.2  # beyond 2%: Large, the nearest at least as slow
    assert "MobileNetV3-Large" in claim.verdict(target, baselines)[0]
    # slower than both: the nearest of all
    target["arms"]["latency"]["latency_ms"] = 20.0
    assert "MobileNetV3-Large" in claim.verdict(target, baselines)[0]


def test_verdict_with_one_seed_is_not_tested():
    baselines = {"mnv3_small": _arm([0.35], 7.0)}
    (line,) = claim.verdict({"arms": {"latency": _arm([0.40, 0.41], 6.0)}}, baselines)
    assert "no seed spread yet" in line and line.endswith("not tested (fewer than two seeds)")
    assert claim.verdict({"arms": {"mac": _arm([0.3], 6.0)}}, baselines) == []  # no latency arm: nothing


def test_mean_sd_reads_percent():
    assert claim._mean_sd([0.30, 0.32]) == "31.0 ± 1.4"  # the sample sd (the population's would be 1.0)
    assert claim._mean_sd([0.3123]) == "31.2"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A claim folder made from the committed results: targets, the four searches' choices, the T1 arms' latency
    files, two seeds of the T1 arms and one of MobileNetV3-Small."""
    saved = COMMITTED / "runs" / "v2_e120_ft40"
    runs = ("latency_t1_s0", "latency_t1_s1", "mac_t1_s0", "mac_t1_s1", "mnv3_small_s0")
    needed = [COMMITTED / "targets.json", *(saved / r / "test.json" for r in runs),
              *(COMMITTED / f"search_{arm}_t{k}_chosen_genotype.json" for arm in ("latency", "mac") for k in (1, 2)),
              *(COMMITTED / f"latency_{n}_{b}.json" for n in ("latency_t1", "mac_t1", "mnv3_small")
                for b in ("eager", "onnxruntime"))]
    missing = [str(f.relative_to(ROOT)) for f in needed if not f.is_file()]
    if missing:
        pytest.skip(f"committed claim results absent: {missing[0]}")
    shutil.copy(COMMITTED / "targets.json", tmp_path / "targets.json")
    for arm in ("latency", "mac"):
        for k in (1, 2):
            (tmp_path / f"search_{arm}_t{k}").mkdir()
            shutil.copy(COMMITTED / f"search_{arm}_t{k}_chosen_genotype.json",
                        tmp_path / f"search_{arm}_t{k}" / "chosen_genotype.json")
    (tmp_path / "latency").mkdir()
    for name in ("latency_t1", "mac_t1", "mnv3_small"):
        for backend in ("eager", "onnxruntime"):
            shutil.copy(COMMITTED / f"latency_{name}_{backend}.json", tmp_path / "latency" / f"{name}_{backend}.json")
    for run in runs:
        (tmp_path / "runs" / run).mkdir(parents=True)
        shutil.copy(saved / run / "test.json", tmp_path / "runs" / run / "test.json")
    return tmp_path


def test_collect_reads_every_seed_and_its_measured_latency(run_dir: Path):
    c = claim.collect(run_dir)
    t1, t2 = c["targets"]
    assert t2["arms"] == {}  # no T2 training in the folder
    assert set(t1["arms"]) == {"latency", "mac", "mnv3_small"}
    lat = t1["arms"]["latency"]
    runs = [json.loads((run_dir / "runs" / f"latency_t1_s{s}" / "test.json").read_text()) for s in (0, 1)]
    assert lat["seeds"] == [0, 1] and lat["test_miou"] == [r["miou"] for r in runs]
    assert lat["per_class_iou"]["Pole"] == pytest.approx(statistics.fmean(r["per_class_iou"]["Pole"] for r in runs))
    assert lat["latency_ms"] == json.loads((run_dir / "latency" / "latency_t1_eager.json").read_text())["min_ms"]
    assert lat["genotype"] == json.loads((run_dir / "search_latency_t1" / "chosen_genotype.json").read_text())["genotype"]
    assert 0.05 < lat["gmacs"] < t1["mac_target_gmacs"] * 1.5
    assert c["targets"][0]["arms"]["mnv3_small"]["test_miou"] == [
        json.loads((run_dir / "runs" / "mnv3_small_s0" / "test.json").read_text())["miou"]]
    md = claim.markdown(c)
    assert "### Target 1" in md and "### Target 2" not in md
    assert "latency-searched vs MAC-searched" in md


def test_collect_refuses_a_latency_file_that_timed_another_network(run_dir: Path):
    other = run_dir / "latency" / "latency_t1_eager.json"
    timed = json.loads(other.read_text())
    ops = timed["genotype"]["genotype"]
    ops[0] = "skip" if ops[0] != "skip" else "k3_d1_e1_g1"
    other.write_text(json.dumps(timed))
    with pytest.raises(SystemExit, match="timed another genotype"):
        claim.collect(run_dir)


def test_collect_refuses_a_search_made_for_another_target(run_dir: Path):
    (run_dir / "search_latency_t1" / "config.json").write_text(json.dumps({"target": 5.0}))
    with pytest.raises(SystemExit, match="searched for target 5.0"):
        claim.collect(run_dir)
