"""Bad input and faults, as a careless user makes them, through the command line: every case ends with exit code
2, one line that names the file or field at fault, and nothing new in the output folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from squeezenas.cli.main import main
from squeezenas.cost.tables import mac_table

SYNTH = ["--dataset", "synthetic", "--data-option", "num_samples=4", "--data-option", "size=[32,64]"]
TINY_SEARCH = [*SYNTH, "--crop", "32", "64", "--scale", "1", "1", "--batch-size", "2", "--epochs", "1",
               "--steps-per-epoch", "1", "--workers", "0", "--no-progress", "--no-tensorboard"]
TINY_TRAIN = [*SYNTH, "--crop", "32", "64", "--batch-size", "2", "--epochs", "1", "--max-steps-per-epoch", "1",
              "--workers", "0", "--no-progress", "--no-tensorboard"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace of inputs, good and bad."""
    ws = tmp_path_factory.mktemp("ws")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(ws / "photo.png")
    (ws / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    # a folder dataset whose second picture is corrupt, and one with a repeated class name
    for name, broken in (("data_bad_image", True), ("data_dup_classes", False)):
        root = ws / name
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(root / "images" / f"im{i}.png")
            Image.fromarray((np.arange(64)[None].repeat(32, 0) // 16 % 3).astype(np.uint8), "L").save(
                root / "masks" / f"im{i}.png")
        if broken:
            (root / "images" / "im1.png").write_bytes(b"garbage")
        classes = ["road", "car", "road"] if name == "data_dup_classes" else ["a", "b", "c"]
        (root / "classes.yaml").write_text(yaml.safe_dump({"classes": classes}))
    # cost tables: good, NaN, all zero, a string entry, another class count
    good = mac_table("small", (32, 64), num_classes=8).to_dict()
    (ws / "mac.json").write_text(json.dumps(good))
    for name, change in (("nan", lambda d: d["table"][3].__setitem__(2, float("nan"))),
                         ("zero", lambda d: (d.__setitem__("table", [[0.0] * len(r) for r in d["table"]]),
                                             d.__setitem__("fixed", {k: 0.0 for k in d["fixed"]}))),
                         ("text", lambda d: d["table"][0].__setitem__(0, "fast")),
                         ("negative", lambda d: d["fixed"].__setitem__("stem", -1.0))):
        d = json.loads(json.dumps(good))
        change(d)
        (ws / f"lut_{name}.json").write_text(json.dumps(d))
    lat = dict(good, kind="latency", unit="ms", meta={"num_classes": 19})
    (ws / "lut_19_classes.json").write_text(json.dumps(lat))
    # a genotype whose inline macro has a stride of 3, and one with absurd channels
    from squeezenas.space.macro import get_space

    for name, change in (("stride3", ("stride", 3)), ("huge", ("channels", 10**7))):
        macro = get_space("small").to_dict()
        macro["stages"][0][change[0]] = change[1]
        (ws / f"geno_{name}.json").write_text(json.dumps({"macro": macro, "genotype": ["skip"] * 20}))
    (ws / "config_bad_type.yaml").write_text("lr: fast\n")
    (ws / "config_unknown.yaml").write_text("epoch: 3\n")
    (ws / "a_file").write_text("not a folder")
    ro = ws / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    return ws


# (command line, words the one error line must contain); {ws} is the workspace, {out} a fresh output folder
CASES = {
    "search: NaN in the table": (["search", *TINY_SEARCH, "--cost", "latency", "--lut", "{ws}/lut_nan.json",
                                  "--size", "32", "64", "--out", "{out}/s"], "lut_nan.json: table[3][2]"),
    "search: all-zero table": (["search", *TINY_SEARCH, "--cost", "latency", "--lut", "{ws}/lut_zero.json",
                                "--size", "32", "64", "--out", "{out}/s"], "every cost is 0"),
    "search: text in the table": (["search", *TINY_SEARCH, "--cost", "latency", "--lut", "{ws}/lut_text.json",
                                   "--out", "{out}/s"], "table[0][0] is 'fast'"),
    "search: negative cost": (["search", *TINY_SEARCH, "--cost", "latency", "--lut", "{ws}/lut_negative.json",
                               "--out", "{out}/s"], "fixed['stem'] is -1.0"),
    "search: table for 19 classes": (["search", *TINY_SEARCH, "--cost", "latency", "--lut",
                                      "{ws}/lut_19_classes.json", "--out", "{out}/s"], "built for 19 classes"),
    "search: resume of nothing": (["search", *TINY_SEARCH, "--out", "{out}/none", "--resume"], "nothing to resume"),
    "search: out is a file": (["search", *TINY_SEARCH, "--out", "{ws}/a_file"], "a_file is a file"),
    "search: read-only out": (["search", *TINY_SEARCH, "--out", "{ws}/readonly/s"], "not writable"),
    "train: wrong type in config": (["train", "--config", "{ws}/config_bad_type.yaml", "--model",
                                     "squeezenas_mac_small", *TINY_TRAIN, "--out", "{out}/t"], "lr: expected a number"),
    "train: unknown config key": (["train", "--config", "{ws}/config_unknown.yaml", "--model",
                                   "squeezenas_mac_small", *TINY_TRAIN, "--out", "{out}/t"], "did you mean 'epochs'"),
    "train: zero classes": (["train", "--model", "squeezenas_mac_small", *TINY_TRAIN, "--num-classes", "0",
                             "--out", "{out}/t"], "num_classes must be positive"),
    "train: repeated class names": (["train", "--model", "squeezenas_mac_small", "--dataset", "folder",
                                     "--data-root", "{ws}/data_dup_classes", "--out", "{out}/t"],
                                    "repeated: 'road'"),
    "train: genotype with stride 3": (["train", "--model", "{ws}/geno_stride3.json", *TINY_TRAIN,
                                       "--out", "{out}/t"], "stride 1 or 2"),
    "train: absurd channels": (["train", "--model", "{ws}/geno_huge.json", *TINY_TRAIN, "--out", "{out}/t"],
                               "channels in 1..4096"),
    "eval: report into a folder": (["eval", "--checkpoint", "{ws}/ckpt.pt", "--report", "{out}"], "is a folder"),
    "sample: an unfinished search": (["sample", "--search", "{ws}/unfinished", "--n", "2"], "finished 1 of its 2"),
    "sample: no search": (["sample", "--search", "{out}/nothing", "--n", "2"], "checkpoint.pt"),
    "lut build: size 0": (["lut", "build", "--space", "small", "--size", "0", "0", "--out", "{out}/t.json"],
                          "input_size must be"),
    "lut build: over a calibrated table": (["lut", "build", "--space", "small", "--size", "32", "64", "--out",
                                            "{ws}/calibrated.json"], "holds a calibrated table"),
    "lut calibrate: report not JSON": (["lut", "calibrate", "--lut", "{ws}/lut_timed.json", "--report",
                                        "{ws}/broken.png"], "broken.png: not a JSON check report"),
    "lut calibrate: report of another table": (["lut", "calibrate", "--lut", "{ws}/lut_timed.json", "--report",
                                                "{ws}/check_other.json"], "check_other.json: input_size is"),
    "info: size 0": (["info", "squeezenas_mac_small", "--size", "0", "0"], "size must be"),
    "info: zero classes": (["info", "squeezenas_mac_small", "--num-classes", "0"], "num_classes must be positive"),
    "bench: negative size": (["bench", "squeezenas_mac_small", "--size", "-1", "64"], "size must be"),
    "export: size 0": (["export", "squeezenas_mac_small", "--onnx", "{out}/m.onnx", "--size", "0", "64"],
                       "size must be"),
    "export: onnx names a folder": (["export", "squeezenas_mac_small", "--onnx", "{out}", "--size", "64", "64"],
                                    "is a folder"),
    "export: no output named": (["export", "squeezenas_mac_small", "--size", "64", "64"], "name at least one output"),
    "export: openvino file not .xml": (["export", "squeezenas_mac_small", "--size", "64", "64", "--openvino",
                                        "{out}/m.bin"], "name a .xml file"),
    "predict: a broken picture": (["predict", "squeezenas_mac_small", "--image", "{ws}/broken.png", "--out",
                                   "{out}/p.png"], "broken.png"),
    "predict: overwrite the input": (["predict", "squeezenas_mac_small", "--image", "{ws}/photo.png", "--out",
                                      "{ws}/photo.png"], "would overwrite the input"),
    "predict: cuda without cuda": (["predict", "squeezenas_mac_small", "--image", "{ws}/photo.png", "--out",
                                    "{out}/p.png", "--device", "cuda"], "no CUDA device"),
    "draw: genotype with stride 3": (["draw", "{ws}/geno_stride3.json", "--out", "{out}/n.png"], "stride 1 or 2"),
    "demo: unknown dataset": (["demo", "--dataset", "imagenet", "--out", "{out}/d"], "imagenet"),
    "demo: space file missing": (["demo", "--space", "{ws}/nope.yaml", "--out", "{out}/d"], "nope.yaml"),
    "demo: bad target fraction": (["demo", "--target-fraction", "2", "--out", "{out}/d"], "target_fraction"),
}


@pytest.fixture(scope="module")
def prepared(ws: Path) -> Path:
    """The inputs that take a run to make: a checkpoint, an unfinished search, a calibrated table."""
    assert main(["train", "--model", "squeezenas_mac_small", *TINY_TRAIN, "--out", str(ws / "run")]) == 0
    (ws / "ckpt.pt").write_bytes((ws / "run" / "best.pt").read_bytes())
    assert main(["search", *TINY_SEARCH, "--epochs", "2", "--stop-after", "1", "--out", str(ws / "unfinished")]) == 0
    d = json.loads((ws / "mac.json").read_text())
    d["meta"]["calibration"] = {"overhead_ms": 0.1, "scale": 1.0, "n_networks": 12, "fitted": "2026-11-29"}
    (ws / "calibrated.json").write_text(json.dumps(d))
    timing = {"backend": "eager", "device": "cpu", "dtype": "float32", "threads": 1, "statistic": "min"}
    (ws / "lut_timed.json").write_text(json.dumps(dict(d, kind="latency", unit="ms",
                                                       meta={"num_classes": 8, "timing": timing})))
    (ws / "check_other.json").write_text(json.dumps({"space": "small", "input_size": [64, 128], **timing,
                                                     "networks": []}))
    return ws


def test_a_bad_picture_found_while_searching_is_one_line(prepared, tmp_path, capsys):
    """Found by a DataLoader worker once the search runs: one line naming the file (the run folder keeps what a
    resumed search needs)."""
    argv = ["search", "--dataset", "folder", "--data-root", str(prepared / "data_bad_image"), "--crop", "32", "64",
            "--scale", "1", "1", "--batch-size", "4", "--epochs", "1", "--workers", "1", "--no-progress",
            "--no-tensorboard", "--size", "32", "64", "--out", str(tmp_path / "s")]
    capsys.readouterr()
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "im1.png" in err[0], err
    assert not (tmp_path / "s" / ".lock").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_for_users(prepared, tmp_path, capsys):
    _check(CASES["search: read-only out"], prepared, tmp_path, capsys)


@pytest.mark.parametrize("case", [c for c in CASES if c != "search: read-only out"])
def test_bad_input(case, prepared, tmp_path, capsys):
    if case == "predict: cuda without cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    _check(CASES[case], prepared, tmp_path, capsys)


def _check(case, ws: Path, out: Path, capsys) -> None:
    argv, words = case
    argv = [a.format(ws=ws, out=out) for a in argv]
    before = _tree(ws) | _tree(out)
    capsys.readouterr()
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and words in err[0], err
    assert _tree(ws) | _tree(out) == before


def _tree(folder: Path) -> set[tuple[str, int]]:
    """Every file below ``folder`` with its size and modification time: 'nothing new, nothing changed'."""
    return {(str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
