"""`squeezenas lut build/check/export/import` and `squeezenas bench` on tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from squeezenas.cli.main import main
from squeezenas.cost.lut import load_lut, plan_lut
from squeezenas.cost.timing import TimingConfig
from squeezenas.cost.tables import ADAPTER_CONTEXT
from squeezenas.space import DecoderSpec, MacroArch, Stage

TINY = MacroArch(name="tiny", stem_channels=8, stages=(Stage(8, 2, 2), Stage(16, 1, 2)), low_level_position=0,
                 last_channels=16, decoder=DecoderSpec("lr_aspp", 8), candidates=("k3_d1_e1_g2", "k5_d1_e3_g1", "skip"))
# no re-measuring on a busy CI; one round and the median unless a test is about the defaults
QUICK = ["--threads", "1", "--min-run-time", "0.01", "--max-other-cpu", "-1", "--rounds", "1", "--statistic", "median"]


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY.to_dict()))
    return str(path)


def test_build_then_check_json_and_calibrate(tmp_path, space_file, capsys):
    out = tmp_path / "lut.json"
    assert main(["lut", "build", "--space", space_file, "--size", "32", "64", *QUICK, "--out", str(out), "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    table = load_lut(out, TINY, (32, 64))
    assert table.meta["threads"] == 1 and table.meta["timing"]["min_run_time"] == 0.01
    assert main(["lut", "check", "--lut", str(out), "--samples", "4", "--json", "--calibrate",
                 "--max-other-cpu", "-1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"mape", "kendall_tau", "raw", "calibrated", "networks"} <= set(report) and report["n"] == 4
    for figures in (report["raw"], report["calibrated"]):
        assert 0 <= figures["within_5pct"] <= figures["within_10pct"] <= 1
    assert {"predicted_ms", "measured_ms", "genotype"} <= set(report["networks"][0])
    assert load_lut(out).calibration["n_networks"] == 4
    assert main(["lut", "check", "--lut", str(out), "--samples", "3", "--quiet", "--max-other-cpu", "-1"]) == 0
    text = capsys.readouterr().out
    assert "Kendall tau" in text and "LOO" in text and "stored calibration" in text
    # raw, calibrated (held out), the rounds' repeatability (twice the table's one round), stored; a warning
    # that the rounds do not repeat may add a line
    figures = [line for line in text.splitlines() if "within 5%" in line and "warning" not in line]
    assert len(figures) == 4 and "within 10%" in text


def test_defaults_are_the_normalised_median_of_sixteen_rounds(tmp_path, space_file, capsys):
    """Without --statistic and --rounds a CPU table keeps the fastest call of each of 16 round-robin rounds and
    the speed-normalised median of the rounds (the settings that hold on a noisy machine) and says so; the check
    times its networks the same way, in twice as many rounds."""
    out = tmp_path / "lut.json"
    assert main(["lut", "build", "--space", space_file, "--size", "32", "64", "--threads", "1", "--min-run-time",
                 "0.01", "--max-other-cpu", "-1", "--out", str(out), "--quiet"]) == 0
    assert "min per call, speed-normalised median of 16 rounds" in capsys.readouterr().out
    table = load_lut(out, TINY, (32, 64))
    assert table.meta["timing"]["statistic"] == "min" and table.meta["rounds"] == 16
    stem = table.meta["entries"][table.meta["fixed_keys"]["stem"]]
    normalised = sorted(v / f for v, f in zip(stem["round_values"], stem["round_speeds"]))
    assert table.fixed["stem"] == stem["min_ms"] == pytest.approx((normalised[7] + normalised[8]) / 2, rel=1e-3)
    assert main(["lut", "check", "--lut", str(out), "--samples", "3", "--json", "--max-other-cpu", "-1",
                 "--out", str(tmp_path / "check.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["statistic"] == "min" and report["rounds"] == 32
    assert load_lut(out).calibration is None  # a check stores nothing without --calibrate ...
    assert main(["lut", "calibrate", "--lut", str(out), "--report", str(tmp_path / "check.json")]) == 0
    assert "stored calibration" in capsys.readouterr().out  # ... and its saved report can be applied later
    stored = load_lut(out).calibration
    assert (stored["overhead_ms"], stored["scale"]) == pytest.approx(
        (report["calibration_fit"]["overhead_ms"], report["calibration_fit"]["scale"]))
    with pytest.raises(SystemExit):
        main(["lut", "build", "--space", space_file, "--size", "32", "64", "--statistic", "mode",
              "--out", str(tmp_path / "x.json")])
    assert "invalid choice: 'mode'" in capsys.readouterr().err


def test_build_errors(tmp_path, capsys):
    assert main(["lut", "build", "--space", "smal", "--size", "32", "64", "--out", str(tmp_path / "x.json")]) == 2
    assert "small" in capsys.readouterr().err
    assert main(["lut", "build", "--space", "small", "--size", "32", "64", "--backend", "cuda_graph",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "TimingConfig.backend" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_build_resumes_from_the_command_line(tmp_path, space_file):
    """Kill a real build process mid-way, then the same command finishes it from the partial file."""
    out = tmp_path / "lut.json"
    partial = tmp_path / "lut.json.partial"
    cmd = [sys.executable, "-m", "squeezenas.cli.main", "lut", "build", "--space", space_file, "--size", "32", "64",
           "--threads", "1", "--min-run-time", "0.1", "--max-other-cpu", "-1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        import time

        deadline = time.time() + 120
        while not partial.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert partial.exists() and not out.exists()
    done = len(json.loads(partial.read_text())["entries"])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stdout and not partial.exists()
    table = load_lut(out)
    assert len(table.meta["entries"]) > done


def test_export_import(tmp_path, space_file, capsys):
    bundle = tmp_path / "bundle"
    assert main(["lut", "export", "--space", space_file, "--size", "32", "64", "--networks", "3",
                 "--onnx-exporter", "torchscript", "--out", str(bundle), "--quiet"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    plan = plan_lut(TINY, (32, 64), TimingConfig(backend="onnxruntime"), num_classes=19)
    assert [p["key"] for p in manifest["parts"]] == list(plan.parts) and len(manifest["networks"]) == 3
    assert manifest["context"] == "layout" and any(p["kind"] == "adapter" for p in manifest["parts"])
    assert manifest["after_keys"] == {"2": plan.after[2]}
    res = subprocess.run([sys.executable, str(bundle / "run_bundle.py"), "--threads", "1", "--warmup", "1",
                          "--min-run-time", "0.005", "--min-repeats", "2", "--out", str(tmp_path / "results.json")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    capsys.readouterr()
    assert main(["lut", "import", str(tmp_path / "results.json"), "--out", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "Kendall tau" in out
    table = load_lut(tmp_path / "t.json", TINY, (32, 64))
    assert table.meta["source"] == "bundle" and table.calibration["n_networks"] == 3
    assert list(table.pairs) == [2] and table.pairs[2][0] == [0.0] * len(TINY.candidates)  # after the stem


def test_bench_json_fields(tmp_path, capsys):
    from squeezenas.space import random_genotype

    random_genotype("small", 0).save(tmp_path / "g.json")
    assert main(["bench", str(tmp_path / "g.json"), "--size", "64", "128", *QUICK, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("median_ms", "iqr_ms", "p10_ms", "p90_ms", "repeats", "gmacs", "gmac_per_s", "peak_memory_mb",
                "peak_memory_delta_mb", "memory_kind", "threads", "backend", "fingerprint", "input_size"):
        assert key in r, key
    assert r["median_ms"] > 0 and r["gmac_per_s"] > 0 and r["peak_memory_mb"] > 0 and r["threads"] == 1
    assert main(["bench", "mobilenetv3_large_lraspp", "--size", "64", "128", *QUICK, "--no-memory"]) == 0
    out = capsys.readouterr().out
    assert "GMAC/s" in out and " ms median (IQR " in out
    default = ["--threads", "1", "--min-run-time", "0.01", "--max-other-cpu", "-1"]  # 16 rounds
    assert main(["bench", str(tmp_path / "g.json"), "--size", "64", "128", *default, "--no-memory",
                 "--backend", "onnxruntime", "--onnx-exporter", "torchscript", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    normalised = sorted(v / f for v, f in zip(r["round_values"], r["round_speeds"]))
    assert r["statistic"] == "min" and r["rounds"] == 16
    assert r["latency_ms"] == pytest.approx((normalised[7] + normalised[8]) / 2, rel=1e-3)  # speeds rounded
    # the statistic's field holds the normalised figure; the others are the kept round's own (its median may lie
    # below the normalised figure when that round ran fast)
    assert r["backend"] == "onnxruntime" and r["min_ms"] == pytest.approx(r["latency_ms"]) and r["median_ms"] > 0


def test_bench_an_exported_onnx_file(tmp_path, capsys):
    """`bench MODEL.onnx` times the file itself with onnxruntime, at its own input size; wrong uses name the file."""
    from squeezenas.deploy import export_onnx
    from squeezenas.models import build_model
    from squeezenas.space import random_genotype

    path = export_onnx(build_model(random_genotype("small", 0), num_classes=5), tmp_path / "net.onnx", (1, 3, 64, 96),
                       exporter="torchscript")
    ort = ["--backend", "onnxruntime", *QUICK]
    assert main(["bench", str(path), *ort, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["name"] == "net" and r["input_size"] == [64, 96] and r["gmacs"] is None and r["median_ms"] > 0
    assert r["peak_memory_mb"] > 0 and r["backend"] == "onnxruntime"
    assert main(["bench", str(path), *ort, "--no-memory"]) == 0
    assert " ms median " in capsys.readouterr().out
    assert main(["bench", str(path), *QUICK]) == 2  # eager cannot run a file
    assert "net.onnx" in capsys.readouterr().err
    assert main(["bench", str(path), *ort, "--size", "32", "32"]) == 2  # the file's shape is fixed
    assert "takes input" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert main(["bench", str(tmp_path / "bad.onnx"), *ort]) == 2
    assert "bad.onnx" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.onnx"), *ort]) == 2
    assert "missing.onnx" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.onnx"), *ort, "--size", "64", "96"]) == 2  # checked with --size too
    assert "no such ONNX file" in capsys.readouterr().err


MICRO = MacroArch(name="micro", stem_channels=8, stages=(Stage(8, 1, 2),), low_level_position=0, last_channels=8,
                  decoder=DecoderSpec("lr_aspp", 8), candidates=("k3_d1_e1_g2", "skip"))


def _runtime(name: str, slow: bool = False):
    import importlib.util

    marks = [pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"needs squeezenas[{name}]")]
    return pytest.param(name, marks=marks + ([pytest.mark.slow] if slow else []))


# Each part is converted (OpenVINO, ~1 s) or lowered to XNNPACK (ExecuTorch, 1-2 s): a round trip takes 10-40 s
# on 2 cores, so both are marked slow (and still run by default)
@pytest.mark.parametrize("backend", [_runtime("openvino", slow=True), _runtime("executorch", slow=True)])
def test_a_deployment_runtime_end_to_end(tmp_path, capsys, backend):
    """lut build/check --backend, export --BACKEND (verified against PyTorch), bench of the exported file."""
    from squeezenas.space import Genotype

    space = tmp_path / "micro.json"
    space.write_text(json.dumps(MICRO.to_dict()))
    out = tmp_path / "lut.json"
    assert main(["lut", "build", "--space", str(space), "--size", "32", "64", "--backend", backend, *QUICK,
                 "--out", str(out), "--quiet"]) == 0
    table = load_lut(out, MICRO, (32, 64))
    assert table.meta["backend"] == backend and table.meta["context"] == "adapter"
    # the fixed parts cost time; adapter_context, where a row of differences went below 1 µs, gives some back
    assert table.meta["fingerprint"][backend] and all(v > 0 for k, v in table.fixed.items() if k != ADAPTER_CONTEXT)
    assert table.fixed.get(ADAPTER_CONTEXT, 0.0) <= 0
    capsys.readouterr()
    assert main(["lut", "check", "--lut", str(out), "--samples", "3", "--json", "--max-other-cpu", "-1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == backend and all(r["measured_ms"] > 0 for r in report["networks"])
    Genotype(MICRO, ("k3_d1_e1_g2",)).save(tmp_path / "g.json")
    suffix = {"openvino": ".xml", "executorch": ".pte"}[backend]
    artefact = tmp_path / f"net{suffix}"
    assert main(["export", str(tmp_path / "g.json"), f"--{backend}", str(artefact), "--size", "32", "64",
                 "--num-classes", "5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["verified"] and d["files"][0]["runtime"] == backend and d["files"][0]["max_abs_diff"] < 1e-4
    assert main(["bench", str(artefact), "--backend", backend, *QUICK, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["input_size"] == [32, 64] and r["gmacs"] is None and r["median_ms"] > 0 and r["backend"] == backend
    assert main(["bench", str(artefact), *QUICK]) == 2  # eager cannot run the file
    assert f"--backend {backend}" in capsys.readouterr().err


def test_build_summary_names_the_adapter_context_in_the_fixed_cost():
    from types import SimpleNamespace

    from squeezenas.cli.lut import _context_note

    assert _context_note(SimpleNamespace(fixed={"stem": 0.3})) == ""
    assert _context_note(SimpleNamespace(fixed={"stem": 0.3, "adapter_context": -0.184})) == \
        " (of which adapter_context -0.184 ms)"
