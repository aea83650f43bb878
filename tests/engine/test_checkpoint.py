"""Checkpoints: weights-only round trip, clear errors, init-from reports, class-count checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from squeezenas.engine.checkpoint import (
    check_num_classes, cpu_state_dict, init_from_checkpoint, load_checkpoint, save_checkpoint,
)
from squeezenas.models import get_model
from squeezenas.models.weights import CheckpointError


def small(num_classes: int) -> torch.nn.Module:
    torch.manual_seed(num_classes)
    return get_model("squeezenas_lat_small", num_classes=num_classes)


def minimal_state(model: torch.nn.Module) -> dict:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    return {"model": cpu_state_dict(model), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": 3, "config": {"model": "squeezenas_lat_small", "crop": [32, 64]}, "model_name": "squeezenas_lat_small",
            "genotype": None, "num_classes": 5, "classes": list("abcde"), "palette": [[1, 2, 3]] * 5, "best_miou": None}


def test_round_trip_is_weights_only(tmp_path: Path):
    model = small(5)
    save_checkpoint(tmp_path / "c.pt", minimal_state(model))
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["format"] == "squeezenas-train" and ckpt["epoch"] == 3 and ckpt["best_miou"] is None
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert list(tmp_path.iterdir()) == [tmp_path / "c.pt"]  # no temporary left behind


def test_load_errors_name_the_file(tmp_path: Path):
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a squeezenas training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="broken.pt"):
        load_checkpoint(tmp_path / "broken.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_init_from_reports_what_it_loaded(tmp_path: Path):
    src = small(5)
    save_checkpoint(tmp_path / "c.pt", minimal_state(src))
    dst = small(3)
    report = init_from_checkpoint(dst, tmp_path / "c.pt")
    assert sorted(k.split()[0] for k in report.reinitialised) == [
        "decoder.high_classifier.bias", "decoder.high_classifier.weight",
        "decoder.low_classifier.bias", "decoder.low_classifier.weight"]
    assert not report.missing and not report.unused
    assert torch.equal(dst.state_dict()["encoder.stem.0.weight"], src.state_dict()["encoder.stem.0.weight"])
    assert dst.state_dict()["decoder.low_classifier.weight"].shape[0] == 3
    assert "loaded" in report.summary() and report.to_dict()["source"].endswith("c.pt")


def test_init_from_another_architecture_is_an_error(tmp_path: Path):
    torch.save({"model": {"foo.weight": torch.zeros(2)}}, tmp_path / "alien.pt")
    with pytest.raises(CheckpointError, match="no tensor matches"):
        init_from_checkpoint(small(3), tmp_path / "alien.pt")


def test_class_count_error_names_the_classifier():
    with pytest.raises(CheckpointError, match=r"x\.pt holds a 5-class network \('decoder\.\w+_classifier\.weight' "
                                              r"has shape \(5, \d+, 1, 1\)\) but the dataset has 11 classes"):
        check_num_classes(small(5), 5, 11, "x.pt")
    check_num_classes(small(5), 5, 5, "x.pt")
