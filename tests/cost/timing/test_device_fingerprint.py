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
    bundle = runner.fingerprint(1, "CPUExecutionProvider")
    shared = {"device", "cpu_model", "logical_cores", "machine", "os", "onnxruntime", "threads"}
    assert fingerprint_matches({k: here[k] for k in shared}, {k: bundle[k] for k in shared}) == []
