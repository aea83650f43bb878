"""The whole pipeline (squeezenas demo) at a tiny setting: every stage runs and leaves its results."""

import json

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
                      lut_min_run_time=0.005, lut_retries=0, check_samples=3, search_epochs=2, search_steps=2,
                      warmup_epochs=1,
                      samples=3, val_limit=3, train_epochs=1, train_steps=2, threads=1,
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
    # a second run finds every stage done and only redoes evaluation and the report
    s2 = run_demo(cfg)
    assert s2["genotype"] == s["genotype"]


def test_demo_cli_rejects_unknown_dataset(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "imagenet"])
