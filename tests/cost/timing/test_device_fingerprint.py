"""The device fingerprint stored with every latency table, and how two fingerprints differ."""

from __future__ import annotations

import json

import torch

from squeezenas.cost.bundle import runner
from squeezenas.cost.timing import device_fingerprint, fingerprint_matches


def test_device_fingerprint_and_differences() -> None:
    a = device_fingerprint("cpu", threads=3)
    assert a["threads"] == 3 and a["torch"] == torch.__version__ and a["logical_cores"] >= 1
    assert a["cpu_model"] and json.loads(json.dumps(a)) == a
    assert fingerprint_matches(a, dict(a)) == []
    b = dict(a, threads=8, gpu="X")
    assert fingerprint_matches(a, b) == ["gpu: None != 'X'", "threads: 3 != 8"]


def test_fingerprint_reads_the_cpu_as_the_bundle_runner_does():
    """A table imported from a bundle compares with this machine field by field."""
    here = device_fingerprint("cpu", threads=1)
    bundle = runner.fingerprint(1, "onnxruntime", "CPUExecutionProvider")
    shared = {"device", "cpu_model", "logical_cores", "machine", "os", "onnxruntime", "threads"}
    assert fingerprint_matches({k: here[k] for k in shared}, {k: bundle[k] for k in shared}) == []


def test_fingerprint_records_the_runtime_of_the_backend():
    """OpenVINO and ExecuTorch tables record their runtime's version (and OpenVINO's own device); eager and
    onnxruntime tables keep the fields they always had."""
    import pytest

    assert device_fingerprint("cpu", 1, backend="eager") == device_fingerprint("cpu", 1)
    assert device_fingerprint("cpu", 1, backend="onnxruntime") == device_fingerprint("cpu", 1)
    openvino = pytest.importorskip("openvino")
    fp = device_fingerprint("cpu", 1, backend="openvino", runtime_device="GPU")
    assert fp["openvino"] == openvino.__version__ and fp["runtime_device"] == "GPU"
    assert runner.fingerprint(1, "openvino")["openvino"] == openvino.__version__
