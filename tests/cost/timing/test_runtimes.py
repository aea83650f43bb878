"""The runtime backends behind one interface: export, session, timed call and parity with PyTorch, for every runtime
that writes an artefact (onnxruntime, OpenVINO, ExecuTorch). Skipped cleanly where an optional runtime is missing.

No assertion compares two timings: these tests run on shared, noisy CPUs.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from squeezenas.cost.timing import BACKENDS, Artefact, TimingConfig, export_for_timing, measure
from squeezenas.utils.config import ConfigError

QUICK = dict(threads=1, min_run_time=0.02, warmup=2, min_repeats=3, onnx_exporter="torchscript")


def runtime(name: str):
    """A pytest param of a backend, skipped when its runtime is not installed."""
    module = BACKENDS.get(name).module
    missing = importlib.util.find_spec(module.split(".")[0]) is None
    return pytest.param(name, marks=pytest.mark.skipif(missing, reason=f"needs squeezenas[{BACKENDS.get(name).extra}]"))


RUNTIMES = [runtime(n) for n in ("onnxruntime", "openvino", "executorch")]


class Block(nn.Module):
    """A block with every kind of op the parts use: dilated depthwise conv, BN, ReLU6, residual add, two outputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
                                  nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU6(), nn.Conv2d(16, 8, 1, bias=False))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so that folding is exercised
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x + self.conv(x)
        return y, torch.sigmoid(y.mean(dim=1, keepdim=True))


@pytest.mark.parametrize("name", RUNTIMES)
def test_export_parity_and_timing(name: str, tmp_path) -> None:
    """The artefact computes what PyTorch does (every output, max abs diff asserted) and is timed as it is; the
    caller's torch threads are left alone; another input shape is refused with the reason."""
    torch.manual_seed(0)
    block, backend = Block().eval(), BACKENDS.get(name)
    config = TimingConfig(backend=name, **QUICK)
    artefact = export_for_timing(block, (8, 12, 20), config, tmp_path, name="block")
    assert artefact == Artefact(tmp_path / f"block{backend.suffix}", name) and artefact.path.is_file()
    x = torch.randn(1, 8, 12, 20)
    assert backend.parity(block, artefact.path, x, config) < 1e-4
    assert backend.input_shape(artefact.path) == (1, 8, 12, 20)
    before = torch.get_num_threads()
    t = measure(artefact, (8, 12, 20), config)
    assert t.median_ms > 0 and t.min_ms <= t.median_ms and t.backend == name and t.threads == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="takes input"):
        measure(artefact, (8, 16, 16), config)
    with pytest.raises(ConfigError, match=f"only the {name} backend"):
        measure(artefact, (8, 12, 20), TimingConfig(threads=1, min_run_time=0.01))


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_module_is_exported_for_its_timing(name: str) -> None:
    """``measure`` of a module with an artefact backend exports it into a temporary folder first."""
    config = TimingConfig(backend=name, **QUICK)
    assert measure(Block(), (8, 8, 8), config).median_ms > 0


def test_backend_interface_and_contexts() -> None:
    """Every registered backend says what it runs; the runtimes that run an artefact time ops after an adapter,
    onnxruntime (grouped convolutions in another layout) also after a grouped one."""
    assert {n for n in BACKENDS if BACKENDS.get(n).suffix} == {"onnxruntime", "openvino", "executorch"}
    assert {BACKENDS.get(n).suffix for n in ("onnxruntime", "openvino", "executorch")} == {".onnx", ".xml", ".pte"}
    for name in BACKENDS:
        backend = BACKENDS.get(name)
        expected = "layout" if name == "onnxruntime" else "adapter" if backend.suffix else "alone"
        assert backend.name == name and backend.context == expected
        assert backend.extra or not backend.module
    with pytest.raises(ConfigError, match="nothing to export"):
        export_for_timing(Block(), (8, 8, 8), TimingConfig(), "unused")


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs squeezenas[openvino]")
def test_openvino_runs_in_the_precision_asked_for(tmp_path) -> None:
    """The precision is the config's, never the plugin's choice (bf16 on CPUs with AVX-512 BF16 or AMX)."""
    backend = BACKENDS.get("openvino")
    artefact = export_for_timing(Block(), (8, 8, 8), TimingConfig(backend="openvino"), tmp_path)
    compiled = backend.compiled(artefact.path, TimingConfig(backend="openvino"), 1)
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    with pytest.raises(ConfigError, match="runtime_device"):
        backend.compiled(artefact.path, TimingConfig(backend="openvino", runtime_device="NO_SUCH_DEVICE"), 1)
