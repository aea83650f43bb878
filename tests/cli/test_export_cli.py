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


def test_export_needs_an_output_of_the_right_kind(tmp_path, capsys):
    """No output, a file of the wrong suffix, or --dynamic without ONNX: one line naming the option, exit 2."""
    assert main(["export", "squeezenas_mac_small", "--size", "64", "64"]) == 2
    assert "--onnx M.onnx, --openvino M.xml or --executorch M.pte" in capsys.readouterr().err
    assert main(["export", "squeezenas_mac_small", "--openvino", str(tmp_path / "m.bin"), "--size", "64", "64"]) == 2
    assert "--openvino" in capsys.readouterr().err and not (tmp_path / "m.bin").exists()
    assert main(["export", "squeezenas_mac_small", "--executorch", str(tmp_path / "m.pte"), "--dynamic"]) == 2
    assert "--dynamic applies to the ONNX export" in capsys.readouterr().err


def test_export_to_several_runtimes_at_once(tmp_path, capsys):
    """Every file asked for is written and verified in its own runtime (max abs diff of the logits)."""
    pytest.importorskip("openvino")
    from squeezenas.space import random_genotype

    random_genotype("small", 1).save(tmp_path / "g.json")
    assert main(["export", str(tmp_path / "g.json"), "--num-classes", "7", "--size", "64", "96", "--exporter",
                 "torchscript", "--onnx", str(tmp_path / "m.onnx"), "--openvino", str(tmp_path / "m.xml"),
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [f["runtime"] for f in d["files"]] == ["onnxruntime", "openvino"] and d["verified"]
    assert all(f["max_abs_diff"] < 1e-4 and f["bytes"] > 0 for f in d["files"])
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file()
