"""The demo's latency-table stage: a user's space file, and a table that counts as done only once calibrated."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import squeezenas.pipeline.stages as stages
from squeezenas.cost.timing import Timing, TimingConfig
from squeezenas.pipeline import demo_config
from squeezenas.space.macro import get_space


def fake_measure(module, shape, config: TimingConfig) -> Timing:
    """A deterministic 'latency' proportional to the parameters, so a network costs the sum of its parts."""
    ms = sum(p.numel() for p in module.parameters()) * 1e-6
    return Timing(median_ms=ms, iqr_ms=ms / 10, p10_ms=ms, p90_ms=ms, mean_ms=ms, min_ms=ms, repeats=5,
                  calls_per_repeat=1, backend=config.backend, device=config.device, dtype=config.dtype,
                  threads=config.threads or 1, batch=config.batch, channels_last=config.channels_last,
                  input_shape=tuple(shape))


@pytest.fixture
def fake_timer(monkeypatch):
    """build_lut and check_lut of the stage, with the fake timer and no contention checks."""
    build, check = stages.build_lut, stages.check_lut
    monkeypatch.setattr(stages, "build_lut", lambda *a, **k: build(*a, **{**k, "measure_fn": fake_measure,
                                                                         "max_other_cpu": None}))
    monkeypatch.setattr(stages, "check_lut", lambda *a, **k: check(*a, **{**k, "measure_fn": fake_measure,
                                                                         "max_other_cpu": None}))


def _space_file(tmp_path):
    """The Small space under another name, as a user's YAML file."""
    import yaml

    macro = get_space("small").to_dict()
    macro["name"] = "my_space"
    path = tmp_path / "my_space.yaml"
    path.write_text(yaml.safe_dump(macro))
    return path


def test_latency_stage_takes_a_space_file(tmp_path, fake_timer):
    cfg = demo_config(out=str(tmp_path / "demo"), space=str(_space_file(tmp_path)), size=(32, 64), check_samples=4,
                      lut_rounds=1, progress=False)
    (tmp_path / "demo").mkdir()
    table = stages.latency_table(cfg, stages.timing_config(cfg), tmp_path / "demo")
    assert table.macro.name == "my_space" and table.calibration is not None


def test_latency_table_counts_as_done_only_once_calibrated(tmp_path, fake_timer, monkeypatch):
    out = tmp_path / "demo"
    out.mkdir()
    cfg = demo_config(out=str(out), size=(32, 64), check_samples=4, lut_rounds=1, progress=False)
    timing = stages.timing_config(cfg)
    check = stages.check_lut

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during the check")

    monkeypatch.setattr(stages, "check_lut", killed)
    with pytest.raises(KeyboardInterrupt):
        stages.latency_table(cfg, timing, out)
    assert not (out / "lut.json").exists() and (out / "lut_measured.json").is_file()
    monkeypatch.setattr(stages, "check_lut", check)
    table = stages.latency_table(cfg, timing, out)  # the measurements are kept; the check runs again
    saved = json.loads((out / "lut.json").read_text())
    assert saved["meta"]["calibration"] == table.calibration and table.calibration["n_networks"] == 4
    assert not (out / "lut_measured.json").exists()
    assert stages.latency_table(replace(cfg, check_samples=5), timing, out).calibration == table.calibration
