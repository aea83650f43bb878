"""The search and sample commands: config resolution (targets, budgets, resume) and the files they write."""

from __future__ import annotations

import json
import re

import pytest

from squeezenas.search.objective import build_cost_table
from squeezenas.utils.config import ConfigError


def test_search_config_resolution(tmp_path, parse):
    from squeezenas.cli.search import resolve_search_config

    argv = ["--target-gmacs", "2.5", "--crop", "64", "128", "--out", str(tmp_path)]
    cfg = resolve_search_config(parse("search", argv))
    assert cfg.cost == "mac" and cfg.target == 2.5 and cfg.crop == (64, 128) and cfg.loss_alpha(1.0) == 0.0
    cfg = resolve_search_config(parse("search", ["--target-latency", "30"]))
    assert cfg.cost == "latency" and cfg.target == 30.0
    with pytest.raises(ConfigError, match="lookup table"):
        build_cost_table(cfg, 8)
    with pytest.raises(ConfigError, match="needs --cost latency"):
        resolve_search_config(parse("search", ["--target-latency", "30", "--cost", "mac"]))
    (tmp_path / "config.json").write_text(json.dumps({"space": "small", "epochs": 7, "alpha": 0.25}))
    cfg = resolve_search_config(parse("search", ["--out", str(tmp_path), "--resume", "--no-progress"]))
    assert cfg.epochs == 7 and cfg.alpha == 0.25 and not cfg.progress  # the saved run is the base


def test_resuming_a_folder_without_a_search_is_an_error(tmp_path, parse):
    """It used to start a fresh search with the defaults."""
    from squeezenas.cli.search import resolve_search_config

    with pytest.raises(FileNotFoundError, match=re.escape(f"nothing to resume in {tmp_path}")):
        resolve_search_config(parse("search", ["--out", str(tmp_path), "--resume"]))


def test_sample_config_resolution(parse):
    from squeezenas.cli.sample import resolve_sample_config

    cfg = resolve_sample_config(parse("sample", ["--search", "s", "--budget-ms", "30", "--calib-batches", "3"]))
    assert (cfg.search, cfg.budget, cfg.budget_kind, cfg.bn_batches) == ("s", 30.0, "ms", 3)
    cfg = resolve_sample_config(parse("sample", ["--search", "s", "--budget-gmacs", "1.5", "--val-size", "32", "64"]))
    assert (cfg.budget, cfg.budget_kind, cfg.val_size, cfg.n, cfg.select) == (1.5, "gmacs", (32, 64), 200, "knee")
    with pytest.raises(SystemExit):
        parse("sample", ["--search", "s", "--budget-ms", "30", "--budget-gmacs", "1"])


def test_sample_command_draws_the_pareto_plane(tiny_search, tmp_path, run_command, capsys):
    out = tmp_path / "chosen.json"
    assert run_command("sample", ["--search", str(tiny_search), "--n", "3", "--bn-batches", "1", "--val-limit", "2",
                                  "--workers", "0", "--device", "cpu", "--no-progress", "--select", "best",
                                  "--out", str(out)]) == 0
    assert (tiny_search / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tiny_search / "pareto.json").read_text())
    assert report["rule"] == "best" and json.loads(out.read_text())["genotype"] == report["chosen"]["genotype"]
    assert "pareto.png" in capsys.readouterr().out
