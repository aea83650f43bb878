"""Training runs on tiny generated data: run files, exact resume, longer resume, init-from, guards, data errors."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from squeezenas.data import DataError
from squeezenas.engine import train as train_mod
from squeezenas.engine.config import TrainConfig
from squeezenas.engine.loaders import batches, build_train_dataset, build_train_loader
from squeezenas.engine.schedule import lr_factor
from squeezenas.engine.train import RunExistsError, train
from squeezenas.models import get_model
from squeezenas.models.weights import CheckpointError
from squeezenas.utils.config import ConfigError, from_dict

TINY = {"num_samples": 8, "size": [32, 64]}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: fast on a shared 2-core machine, and bitwise-repeatable runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(out: Path, **changes) -> TrainConfig:
    base = TrainConfig(model="squeezenas_lat_small", dataset="synthetic", data_options=dict(TINY), out=str(out),
                       epochs=2, batch_size=4, crop=(32, 64), workers=0, device="cpu", progress=False,
                       max_steps_per_epoch=2)
    return replace(base, **changes)


def make_folder_dataset(root: Path, n: int = 4, size: tuple[int, int] = (32, 64), classes: int = 3) -> Path:
    """images/ + masks/ + classes.yaml: ``n`` random pictures with striped labels."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "images" / f"im{i}.png")
        labels = (np.arange(size[1])[None, :].repeat(size[0], 0) // 8 % classes).astype(np.uint8)
        Image.fromarray(labels, mode="L").save(root / "masks" / f"im{i}.png")
    (root / "classes.yaml").write_text(yaml.safe_dump({"classes": [f"c{i}" for i in range(classes)]}))
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """An uninterrupted 2-epoch run, shared by the tests that compare against it or extend it."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run") / "a"
    train(tiny_config(out))
    return out


def test_run_writes_its_files(finished_run: Path):
    for name in ("config.yaml", "last.pt", "best.pt", "log.csv", "train.log"):
        assert (finished_run / name).is_file(), name
    assert list((finished_run / "tb").glob("events.out.tfevents.*"))
    ckpt = torch.load(finished_run / "last.pt", weights_only=True)  # plain values and tensors only
    assert ckpt["epoch"] == 2 and ckpt["step"] == 4 and ckpt["num_classes"] == 8
    assert ckpt["model_name"] == "squeezenas_lat_small" and ckpt["genotype"]["macro"] == "small"
    assert ckpt["dataset"] == "synthetic" and len(ckpt["classes"]) == len(ckpt["palette"]) == 8
    assert 0 <= ckpt["best_miou"] <= 1 and ckpt["best_epoch"] in (1, 2)
    cfg = from_dict(TrainConfig, yaml.safe_load((finished_run / "config.yaml").read_text()))
    assert cfg == tiny_config(finished_run)
    rows = list(csv.DictReader((finished_run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(r["val_miou"] for r in rows)


def test_interrupted_then_resumed_equals_uninterrupted(finished_run: Path, tmp_path: Path, monkeypatch):
    real, calls = train_mod.train_one_epoch, []

    def stop_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_epoch", stop_in_epoch_two)
    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(out))
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(train_mod, "train_one_epoch", real)
    summary = train(tiny_config(out, resume=True))
    assert summary["epochs"] == 2 and [r["epoch"] for r in summary["history"]] == [1, 2]
    assert "resuming after epoch 1" in (out / "train.log").read_text()

    a = torch.load(finished_run / "last.pt", weights_only=True)
    b = torch.load(out / "last.pt", weights_only=True)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=0, msg=key)
    assert a["scheduler"] == b["scheduler"]
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for i, st in a["optimizer"]["state"].items():
        torch.testing.assert_close(b["optimizer"]["state"][i]["momentum_buffer"], st["momentum_buffer"], rtol=0, atol=0)
    assert a["best_miou"] == b["best_miou"] and a["history"][0]["train_loss"] == b["history"][0]["train_loss"]


def test_resume_restores_optimizer_and_scheduler(finished_run: Path, tmp_path: Path, monkeypatch):
    """The state a resumed run starts from is exactly the saved one."""
    seen = {}

    def capture(model, optimizer, scheduler, *args, **kwargs):
        seen.setdefault("optimizer", optimizer.state_dict())
        seen.setdefault("scheduler", scheduler.state_dict())
        raise KeyboardInterrupt

    out = tmp_path / "copy"
    out.mkdir()
    for name in ("last.pt", "config.yaml"):
        (out / name).write_bytes((finished_run / name).read_bytes())
    monkeypatch.setattr(train_mod, "train_one_epoch", capture)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(out, resume=True, epochs=3))
    saved = torch.load(out / "last.pt", weights_only=True)
    assert seen["scheduler"]["last_epoch"] == saved["scheduler"]["last_epoch"] == 4
    assert seen["optimizer"]["param_groups"][0]["momentum"] == 0.9
    for i, st in saved["optimizer"]["state"].items():
        torch.testing.assert_close(seen["optimizer"]["state"][i]["momentum_buffer"], st["momentum_buffer"])


def test_resume_with_more_epochs_rebuilds_the_schedule(finished_run: Path, tmp_path: Path):
    out = tmp_path / "longer"
    out.mkdir()
    for name in ("last.pt", "config.yaml"):
        (out / name).write_bytes((finished_run / name).read_bytes())
    summary = train(tiny_config(out, resume=True, epochs=4))
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3, 4]
    lrs = [r["lr"] for r in summary["history"]]
    # 2 epochs: ÷100 from epoch 2 on; rebuilt for 4: ×0.1 at epoch 3, ×0.01 at epoch 4
    assert lrs == pytest.approx([0.05, 0.0005, 0.005, 0.0005])
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 4 and ckpt["scheduler"]["last_epoch"] == 8
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 4
    assert len(list(csv.DictReader((out / "log.csv").open()))) == 4


def test_step_and_poly_schedules():
    assert [lr_factor(e * 10, 10, 100, "step") for e in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(0, 10, 10, "poly") == 1 and lr_factor(100, 10, 10, "poly") == 0
    assert lr_factor(50, 10, 10, "poly", 1.0) == pytest.approx(0.5)


def test_refuses_to_overwrite_a_run(finished_run: Path):
    before = digest(finished_run / "last.pt")
    with pytest.raises(RunExistsError, match="--resume"):
        train(tiny_config(finished_run))
    assert digest(finished_run / "last.pt") == before


def test_resume_needs_a_run(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(tiny_config(tmp_path / "none", resume=True))


def test_init_from_other_classes(finished_run: Path, tmp_path: Path):
    """An 8-class checkpoint initialises a 3-class run: everything but the classifiers is copied."""
    root = make_folder_dataset(tmp_path / "data")
    out = tmp_path / "ft"
    train(tiny_config(out, dataset="folder", data_root=str(root), data_options={}, epochs=1, max_steps_per_epoch=1,
                      init_from=str(finished_run / "best.pt")))
    log = (out / "train.log").read_text()
    assert "re-initialised 4 (shape differs)" in log and "decoder.high_classifier.weight" in log
    # the copy itself: every tensor of matching name and shape equals the source's, the rest are classifiers
    from squeezenas.engine.checkpoint import init_from_checkpoint
    from squeezenas.models.builder import build_model
    from squeezenas.space.genotype import Genotype

    ckpt = torch.load(finished_run / "best.pt", weights_only=True)
    model = build_model(Genotype.from_dict(ckpt["genotype"]), num_classes=3)
    init_from_checkpoint(model, finished_run / "best.pt")
    copied, differ = [], []
    for key, value in model.state_dict().items():
        if value.shape == ckpt["model"][key].shape:
            assert torch.equal(value, ckpt["model"][key]), key
            copied.append(key)
        else:
            differ.append(key)
    assert len(differ) == 4 and all("classifier" in k for k in differ) and len(copied) > 100


def test_model_checkpoint_with_other_classes_is_an_error(finished_run: Path, tmp_path: Path):
    root = make_folder_dataset(tmp_path / "data")
    out = tmp_path / "bad"
    with pytest.raises(CheckpointError, match=r"8-class network \('decoder\.\w+\.weight' has shape \(8,.*--init-from"):
        train(tiny_config(out, model=str(finished_run / "best.pt"), dataset="folder", data_root=str(root),
                          data_options={}))
    assert not out.exists()


def test_init_from_released_weights(released_dir: Path, tmp_path: Path):
    """The Cityscapes weights of squeezenas_lat_small onto 8 classes: 4 classifier tensors re-initialised."""
    out = tmp_path / "rel"
    train(tiny_config(out, epochs=1, max_steps_per_epoch=1, init_from=str(released_dir / "lat_small.pth")))
    log = (out / "train.log").read_text()
    assert "re-initialised 4 (shape differs)" in log and "0 not in the checkpoint" in log


def test_mobilenetv3_trains(tmp_path: Path):
    out = tmp_path / "mnv3"
    summary = train(tiny_config(out, model="mobilenetv3_large_lraspp", epochs=1, max_steps_per_epoch=1))
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["model_name"] == "mobilenetv3_large_lraspp" and ckpt["genotype"] is None
    get_model("mobilenetv3_large_lraspp", num_classes=8).load_state_dict(ckpt["model"])
    assert summary["last_metrics"]["num_images"] == 8


def test_num_classes_must_match_the_dataset(tmp_path: Path):
    with pytest.raises(ConfigError, match="has 8 classes"):
        train(tiny_config(tmp_path / "x", num_classes=5))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage", ["corrupt image", "mask size", "label range"])
def test_data_errors_reach_the_main_process_cleanly(tmp_path: Path, damage: str):
    root = make_folder_dataset(tmp_path / "data")
    bad = root / "images" / "im2.png"
    if damage == "corrupt image":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif damage == "mask size":
        bad = root / "masks" / "im2.png"
        Image.fromarray(np.zeros((16, 16), np.uint8), mode="L").save(bad)
    else:
        bad = root / "masks" / "im2.png"
        Image.fromarray(np.full((32, 64), 7, np.uint8), mode="L").save(bad)
    ds = build_train_dataset("folder", root, "train", (32, 64))
    loader = build_train_loader(ds, batch_size=4, workers=1)
    with pytest.raises(DataError) as info:
        for _ in batches(loader):
            pass
    message = str(info.value)
    assert str(bad) in message and "Traceback" not in message and "\n" not in message


def test_data_error_leaves_the_run_intact(tmp_path: Path):
    root = make_folder_dataset(tmp_path / "data")
    out = tmp_path / "run"
    cfg = tiny_config(out, dataset="folder", data_root=str(root), data_options={}, epochs=1, max_steps_per_epoch=1)
    train(cfg)
    before = {p.name: digest(p) for p in (out / "last.pt", out / "best.pt", out / "log.csv")}
    (root / "images" / "im1.png").write_bytes(b"broken")
    with pytest.raises(DataError, match="im1.png"):
        train(replace(cfg, resume=True, epochs=2))
    assert {p.name: digest(p) for p in (out / "last.pt", out / "best.pt", out / "log.csv")} == before
