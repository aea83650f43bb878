import json

import onnx
import pytest

from squeezenas.cli.main import main


def test_export_zoo_with_released_weights_matches_onnxruntime(tmp_path, capsys, released_dir):
    out = tmp_path / "lat_small.onnx"
    rc = main(["export", "squeezenas_lat_small", "--weights", str(released_dir / "lat_small.pth"),
               "--onnx", str(out), "--size", "128", "256", "--exporter", "torchscript", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["verified"]
    assert d["max_abs_diff"] < 1e-3
    m = onnx.load(str(out))
    assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["logits"]


def test_export_genotype_file(tmp_path, capsys):
    from squeezenas.space import random_genotype

    random_genotype("small", 4).save(tmp_path / "g.json")
    rc = main(["export", str(tmp_path / "g.json"), "--num-classes", "11", "--onnx", str(tmp_path / "g.onnx"),
               "--size", "64", "128", "--exporter", "torchscript"])
    assert rc == 0
    assert "max |diff|" in capsys.readouterr().out
