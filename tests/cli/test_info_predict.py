import json

import pytest
from PIL import Image

from squeezenas.cli.main import main


def test_info_json(capsys):
    assert main(["info", "squeezenas_mac_small", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert isinstance(d["macs"], int) and isinstance(d["params"], int)
    assert abs(d["macs"] / 3.01e9 - 1) < 0.005
    assert len(d["positions"]) == 20 and d["positions"][10]["op"] == "skip"


def test_info_table_on_genotype_file(tmp_path, capsys):
    from squeezenas.space import random_genotype

    random_genotype("large", 0).save(tmp_path / "g.json")
    assert main(["info", str(tmp_path / "g.json"), "--size", "360", "480"]) == 0
    out = capsys.readouterr().out
    assert "position 21" in out and "GMACs" in out


def test_info_unknown_name(capsys):
    assert main(["info", "squeezenas_tiny"]) == 2
    assert "unknown model 'squeezenas_tiny'" in capsys.readouterr().err


def test_predict_writes_pictures(tmp_path):
    img = Image.new("RGB", (96, 64), (120, 130, 140))
    img.save(tmp_path / "a.png")
    out = tmp_path / "pred.png"
    assert main(["predict", "squeezenas_lat_small", "--image", str(tmp_path / "a.png"), "--out", str(out),
                 "--size", "64", "96"]) == 0
    assert Image.open(out).size == (96, 64)
    assert (tmp_path / "pred_overlay.png").is_file()


def test_predict_with_released_weights_on_folder(tmp_path, released_dir, camvid_root):
    names = sorted((camvid_root / "val").iterdir())[:2]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for n in names:
        Image.open(n).save(folder / n.name)
    assert main(["predict", "squeezenas_lat_small", "--weights", str(released_dir / "lat_small.pth"),
                 "--image", str(folder), "--out", str(tmp_path / "out"), "--size", "256", "512"]) == 0
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 4
