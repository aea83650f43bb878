"""Bundle round trip: export ONNX parts and networks, run the standalone runner in a subprocess, import a table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from squeezenas.cost.bundle.export import export_bundle, import_results
from squeezenas.cost.lut import IDENTITY_KEY, LutError, load_lut, plan_lut
from squeezenas.cost.tables import ADAPTER_CONTEXT
from squeezenas.cost.timing import TimingConfig
from squeezenas.space import DecoderSpec, MacroArch, Stage

MACRO = MacroArch(name="tiny", stem_channels=8, stages=(Stage(8, 2, 2), Stage(16, 1, 2)), low_level_position=0,
                  last_channels=16, decoder=DecoderSpec("lr_aspp", 8), candidates=("k3_d1_e1_g2", "k5_d1_e3_g1", "skip"))
RUN = ["--threads", "1", "--warmup", "1", "--min-run-time", "0.005", "--min-repeats", "2", "--rounds", "1"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    export_bundle(MACRO, (32, 48), out, num_classes=3, networks=4, exporter="torchscript", progress=False)
    return out


def run_bundle(bundle, *args: str) -> subprocess.CompletedProcess:
    # -I: isolated mode, no squeezenas on the path; the runner must do with numpy and onnxruntime
    return subprocess.run([sys.executable, "-I", str(bundle / "run_bundle.py"), *RUN, *args], capture_output=True,
                          text=True, timeout=300)


def test_bundle_is_self_contained(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    plan = plan_lut(MACRO, (32, 48), TimingConfig(backend="onnxruntime"), num_classes=3)
    assert [p["key"] for p in manifest["parts"]] == list(plan.parts)
    assert all((bundle / p["file"]).is_file() for p in manifest["parts"] + manifest["networks"])
    assert len(manifest["networks"]) == 4 and (bundle / "README.txt").is_file()
    text = (bundle / "run_bundle.py").read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "torch" in line or "squeezenas" in line]


def test_round_trip(bundle, tmp_path):
    proc = run_bundle(bundle, "--out", str(tmp_path / "results.json"), "--rounds", "2")
    assert proc.returncode == 0, proc.stderr
    table, report = import_results(tmp_path / "results.json", tmp_path / "table.json")
    loaded = load_lut(tmp_path / "table.json", MACRO, (32, 48))
    assert loaded.table == table.table and loaded.meta["source"] == "bundle"
    assert loaded.meta["backend"] == "onnxruntime" and loaded.meta["threads"] == 1
    # two round-robin rounds on the device; the table keeps the fastest call (the CPU default statistic)
    stem = loaded.meta["entries"][loaded.meta["fixed_keys"]["stem"]]
    assert loaded.meta["rounds"] == 2 and loaded.meta["timing"]["statistic"] == "min"
    assert len(stem["round_values"]) == 2 and loaded.fixed["stem"] == stem["min_ms"] == min(stem["round_values"])
    plan = plan_lut(MACRO, (32, 48), TimingConfig(backend="onnxruntime"), num_classes=3)
    for row, keys in zip(table.table, plan.cells):
        for v, k in zip(row, keys):
            assert (v == 0) == (k == IDENTITY_KEY) and v >= 0
    assert all(v > 0 for k, v in table.fixed.items() if k != ADAPTER_CONTEXT)  # adapter_context: <= 0
    fp = loaded.meta["fingerprint"]
    assert fp["cpu_model"] and fp["onnxruntime"] and fp["provider"] == "CPUExecutionProvider"
    assert report["n"] == 4 and {"mape", "kendall_tau", "calibrated"} <= set(report)
    assert {"within_5pct", "within_10pct"} <= set(report["calibrated"])
    assert loaded.calibration["n_networks"] == 4
    assert not (tmp_path / "results.json.partial").exists()


def test_runner_resumes_and_refuses_other_settings(bundle, tmp_path):
    out = tmp_path / "results.json"
    partial = tmp_path / "results.json.partial"
    assert run_bundle(bundle, "--out", str(out), "--skip-networks").returncode == 0
    done = json.loads(out.read_text())
    # simulate a kill: a partial with all parts but one
    settings = done["settings"]
    parts = dict(done["parts"])
    parts.pop(next(iter(parts)))
    partial.write_text(json.dumps({"settings": settings, "state": {"parts": parts, "networks": {}}}))
    proc = run_bundle(bundle, "--out", str(out), "--skip-networks")
    assert proc.returncode == 0 and proc.stdout.count(" ms ") == 1  # only the missing part was timed
    partial.write_text(json.dumps({"settings": {**settings, "threads": 7}, "state": {"parts": {}, "networks": {}}}))
    proc = run_bundle(bundle, "--out", str(out))
    assert proc.returncode == 2 and "other settings" in proc.stderr


def test_import_errors(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(LutError, match="not squeezenas bundle results"):
        import_results(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError):
        import_results(tmp_path / "missing.json")


MICRO = MacroArch(name="micro", stem_channels=8, stages=(Stage(8, 1, 2),), low_level_position=0, last_channels=8,
                  decoder=DecoderSpec("lr_aspp", 8), candidates=("k3_d1_e1_g2", "skip"))


def _runtime(name: str):
    import importlib.util

    missing = importlib.util.find_spec(name) is None
    return pytest.param(name, marks=[pytest.mark.slow, pytest.mark.skipif(missing, reason=f"needs squeezenas[{name}]")])


# every part converted or lowered to XNNPACK (1-2 s each): marked slow, still run by default
@pytest.mark.parametrize("backend", [_runtime("openvino"), _runtime("executorch")])
def test_a_bundle_for_another_runtime(tmp_path, backend):
    """A bundle for OpenVINO or ExecuTorch carries that runtime's artefacts; its runner (no squeezenas) times them;
    the import gives a table of that backend whose keys match this version's plan."""
    out = tmp_path / "bundle"
    export_bundle(MICRO, (32, 48), out, num_classes=3, networks=0, progress=False, backend=backend)
    manifest = json.loads((out / "manifest.json").read_text())
    suffix = {"openvino": ".xml", "executorch": ".pte"}[backend]
    assert manifest["runtime"] == backend and all(p["file"].endswith(suffix) for p in manifest["parts"])
    assert [p["key"] for p in manifest["parts"]] == list(plan_lut(MICRO, (32, 48), TimingConfig(backend=backend),
                                                                  num_classes=3).parts)
    if backend == "openvino":
        assert all((out / p["file"]).with_suffix(".bin").is_file() for p in manifest["parts"])
    assert backend in (out / "README.txt").read_text()
    proc = run_bundle(out, "--out", str(tmp_path / "results.json"))
    assert proc.returncode == 0, proc.stderr
    table, report = import_results(tmp_path / "results.json", tmp_path / "table.json")
    assert table.meta["backend"] == backend and table.meta["fingerprint"][backend]
    assert all(v > 0 for k, v in table.fixed.items() if k != ADAPTER_CONTEXT)  # adapter_context: <= 0
    assert table.fixed.get(ADAPTER_CONTEXT, 0.0) <= 0 and report is None  # no check networks in this bundle


def test_a_bundle_only_for_runtimes_with_artefacts(tmp_path):
    with pytest.raises(ValueError, match="--backend"):
        export_bundle(MICRO, (32, 48), tmp_path, backend="eager")
