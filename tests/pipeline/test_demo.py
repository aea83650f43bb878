"""The whole pipeline (squeezenas demo) at a tiny setting: every stage runs, leaves its results, resumes."""

import json
from pathlib import Path

import pytest

from squeezenas.cli.main import main
from squeezenas.pipeline import PRESETS, DemoConfig, demo_config, run_demo
from squeezenas.space import Genotype


def test_demo_config_presets_and_overrides():
    assert demo_config() == DemoConfig()
    c = demo_config(dataset="camvid", data_root="x", samples=7)
    assert c.size == PRESETS["camvid"]["size"] and c.samples == 7 and c.data_root == "x"


def test_tiny_demo_end_to_end(tmp_path):
    cfg = demo_config(out=str(tmp_path / "demo"), size=(64, 128), crop=(64, 128), batch_size=4,
                      lut_min_run_time=0.005, lut_retries=0, lut_rounds=1, check_samples=3, search_epochs=2,
                      search_steps=2, warmup_epochs=1, samples=3, val_limit=3, finalists=2, train_epochs=1,
                      train_steps=2, threads=1,
                      data_options={"num_samples": 12, "size": [64, 128]}, progress=False)
    s = run_demo(cfg)
    out = tmp_path / "demo"
    for f in ("lut.json", "lut_check.json", "genotype.json", "search/genotype.json", "search/pareto.json",
              "train/best.pt", "test.json", "report.md", "summary.json", "network.png", "predictions.png"):
        assert (out / f).is_file(), f
    g = Genotype.from_json((out / "genotype.json").read_text())
    assert g.macro == "small" and len(g.ops) == 20
    assert 0 <= s["test_miou"] <= 1 and s["latency"]["measured_ms"] > 0
    assert json.loads((out / "summary.json").read_text())["genotype"] == g.to_dict()
    report = (out / "report.md").read_text()
    assert "test mIoU" in report and "![](network.png)" in report
    # a second run finds every stage done and only redoes evaluation, the latency measurement and the report
    kept = ("lut.json", "lut_check.json", "search/checkpoint.pt", "search/pareto.json", "genotype.json",
            "train/last.pt", "train/best.pt")
    redone = ("test.json", "summary.json", "report.md")
    before = {f: _stamp(out / f) for f in kept + redone}
    s2 = run_demo(cfg)
    assert s2["genotype"] == s["genotype"]
    assert {f: _stamp(out / f) for f in kept} == {f: before[f] for f in kept}
    assert all(_stamp(out / f) != before[f] for f in redone)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_ino  # atomic writes replace the file: a new inode


def test_demo_cli_rejects_unknown_dataset_before_writing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--dataset", "imagenet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "imagenet" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_demo_cli_offers_every_config_field():
    from dataclasses import fields

    from squeezenas.cli.main import build_parser

    demo = build_parser()._subparsers._group_actions[0].choices["demo"]
    dests = {a.dest for a in demo._actions}
    assert {f.name for f in fields(DemoConfig)} - {"data_options"} <= dests and "data_option" in dests


def test_demo_config_is_checked_before_any_work():
    from squeezenas.utils.config import ConfigError

    with pytest.raises(ConfigError, match="target_fraction"):
        demo_config(target_fraction=0)
    with pytest.raises(ConfigError, match="warmup_epochs"):
        demo_config(search_epochs=1, warmup_epochs=1)
