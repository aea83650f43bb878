"""Prediction pictures: bad requests are refused by name before anything is written or overwritten."""

import pytest
import torch
from PIL import Image

from squeezenas.cli.main import main


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (64, 48), (120, 130, 140)).save(path)
    return path


@pytest.mark.parametrize("args,message", [
    (["--out", "{photo}"], "would overwrite the input picture"),
    (["--out", "{dir}/x.png", "--size", "0", "0"], "size must be"),
    (["--out", "{dir}/x.jpg"], "written as a .png"),
])
def test_predict_refuses_by_name(photo, capsys, args, message):
    before = {p.name: p.read_bytes() for p in photo.parent.iterdir()}
    args = [a.format(photo=photo, dir=photo.parent) for a in args]
    assert main(["predict", "squeezenas_lat_small", "--image", str(photo), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert {p.name: p.read_bytes() for p in photo.parent.iterdir()} == before


def test_predict_folder_needs_an_output_folder(photo, capsys):
    assert main(["predict", "squeezenas_lat_small", "--image", str(photo.parent),
                 "--out", str(photo.parent / "out.png")]) == 2
    assert "needs an output folder" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_predict_on_cuda_without_cuda(photo, capsys):
    assert main(["predict", "squeezenas_lat_small", "--image", str(photo), "--out", str(photo.parent / "p.png"),
                 "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
