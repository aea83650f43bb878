"""The train / eval / predict commands end to end on tiny generated data, and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from squeezenas.cli.main import main
from squeezenas.data import build_dataset
from squeezenas.data.palettes import SYNTHETIC_PALETTE

TINY = ["--dataset", "synthetic", "--data-option", "num_samples=6", "--data-option", "size=[32, 64]", "--crop", "32",
        "64", "--batch-size", "3", "--workers", "0", "--device", "cpu", "--no-progress", "--no-tensorboard"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--model", "squeezenas_lat_small", "--epochs", "1", "--out", str(out), *TINY]) == 0
    return out


def error_of(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_train_then_eval(run: Path, tmp_path: Path, capsys):
    assert {"config.yaml", "last.pt", "best.pt", "log.csv", "train.log"} <= {p.name for p in run.iterdir()}
    report = tmp_path / "r.json"
    assert main(["eval", "--checkpoint", str(run / "best.pt"), "--report", str(report), "--workers", "0",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    saved = json.loads(report.read_text())
    assert saved["num_images"] == 6 and set(saved["per_class_iou"]) >= {"sky", "road"} and 0 <= saved["miou"] <= 1
    assert f"{100 * saved['miou']:6.2f}" in printed


def test_resume_with_more_epochs(run: Path, tmp_path: Path):
    out = tmp_path / "more"
    out.mkdir()
    for name in ("last.pt", "config.yaml"):
        (out / name).write_bytes((run / name).read_bytes())
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2"]) == 0  # the rest from the saved config
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2
    assert "changed on resume: epochs: 1 → 2" in (out / "train.log").read_text()


def test_config_file_then_arguments(tmp_path: Path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"model": "squeezenas_lat_small", "epochs": 7, "lr": 0.01, "max_steps_per_epoch": 1}))
    out = tmp_path / "o"
    assert main(["train", "--config", str(cfg), "--epochs", "1", "--out", str(out), *TINY]) == 0
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["epochs"] == 1 and written["lr"] == 0.01 and written["data_options"]["num_samples"] == 6


def test_predict_uses_the_checkpoint_palette(run: Path, tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    ds = build_dataset("synthetic", None, "test", num_samples=2, size=(32, 64))
    for i in range(2):
        picture, _ = ds.load_raw(i)
        Image.fromarray(picture.permute(1, 2, 0).numpy()).save(images / f"s{i}.png")
    assert main(["predict", str(run / "best.pt"), "--image", str(images), "--out", str(tmp_path / "pred")]) == 0
    colours = np.unique(np.asarray(Image.open(tmp_path / "pred" / "s0.png").convert("RGB")).reshape(-1, 3), axis=0)
    assert {tuple(c) for c in colours.tolist()} <= set(SYNTHETIC_PALETTE)


def test_refuses_to_overwrite(run: Path, capsys):
    before = (run / "last.pt").read_bytes()
    err = error_of(capsys, ["train", "--model", "squeezenas_lat_small", "--out", str(run), *TINY])
    assert "already holds a run" in err and "--resume" in err
    assert (run / "last.pt").read_bytes() == before


def test_unknown_config_key(tmp_path: Path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: squeezenas_lat_small\nepoch: 3\n")
    err = error_of(capsys, ["train", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert "unknown key 'epoch'" in err and "did you mean 'epochs'" in err and str(cfg) in err
    assert not (tmp_path / "o").exists()


def test_corrupt_image_message(tmp_path: Path, capsys):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text("classes: [a, b]\n")
    for i in range(3):
        Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(np.zeros((32, 64), np.uint8), mode="L").save(root / "masks" / f"{i}.png")
    (root / "images" / "1.png").write_bytes(b"not an image")
    err = error_of(capsys, ["train", "--model", "squeezenas_lat_small", "--dataset", "folder", "--data-root", str(root),
                            "--crop", "32", "64", "--batch-size", "3", "--workers", "1", "--device", "cpu",
                            "--no-progress", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert err.count("\n") == 0 and str(root / "images" / "1.png") in err


def test_empty_split(tmp_path: Path, capsys):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text("classes: [a, b]\n")
    (root / "train.txt").write_text("")
    err = error_of(capsys, ["train", "--model", "squeezenas_lat_small", "--dataset", "folder", "--data-root", str(root),
                            "--out", str(tmp_path / "o")])
    assert "empty" in err and not (tmp_path / "o").exists()


def test_eval_on_a_dataset_with_other_classes(run: Path, tmp_path: Path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [a, b]\n")
    err = error_of(capsys, ["eval", "--checkpoint", str(run / "best.pt"), "--dataset", "folder", "--data-root", str(root)])
    assert "8-class network" in err and "classifier.weight" in err and "2 classes" in err
