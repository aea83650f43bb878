"""The one timer: sane statistics from every backend, threads, inputs, repeats, the allocator; and the same
statistics as the bundle runner's.

No assertion compares two timings: these tests run on shared, noisy CPUs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from squeezenas.cost.bundle import runner
from squeezenas.cost.timing import BACKENDS, Timing, TimingConfig, measure
from squeezenas.cost.timing.timer import summarise
from squeezenas.utils.config import ConfigError

QUICK = dict(min_run_time=0.05, warmup=2)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_block() -> nn.Module:
    return nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8))


class TwoOutputs(nn.Module):
    """Returns a dict like torchvision's segmentation models, one entry a tuple."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        y = self.conv(x)
        return {"out": y, "aux": (torch.sigmoid(y), x.mean(dim=1, keepdim=True))}


def check_sane(t: Timing, config: TimingConfig) -> None:
    assert t.median_ms > 0 and t.iqr_ms >= 0
    assert t.min_ms <= t.p10_ms <= t.median_ms <= t.p90_ms
    assert config.min_repeats <= t.repeats <= config.max_repeats and t.calls_per_repeat >= 1
    assert (t.backend, t.device, t.dtype, t.batch) == (config.backend, config.device, config.dtype, config.batch)


def test_eager_cpu_stats_and_threads_restored() -> None:
    before = torch.get_num_threads()
    config = TimingConfig(threads=1, min_repeats=5, **QUICK)
    t = measure(tiny_block(), (8, 16, 16), config)
    check_sane(t, config)
    assert t.threads == 1 and t.input_shape == (1, 8, 16, 16)
    assert torch.get_num_threads() == before
    assert Timing.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_threads_none_records_current_count() -> None:
    assert measure(tiny_block(), (8, 8, 8), TimingConfig(**QUICK)).threads == torch.get_num_threads()


def test_torch_threads_while_timing_are_the_backends_choice(monkeypatch) -> None:
    """torch runs at the timed thread count unless the backend asks otherwise (ExecuTorch: one thread, so that
    torch's pool does not compete with XNNPACK's); the Timing records the runtime's threads either way."""
    seen: list[int] = []

    def call(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return x + 1

    before = torch.get_num_threads()
    config = TimingConfig(threads=2, **QUICK)
    assert measure(call, (8, 8, 8), config).threads == 2 and set(seen) == {2}
    monkeypatch.setattr(BACKENDS.get("eager"), "torch_threads", lambda threads: 1)
    seen.clear()
    assert measure(call, (8, 8, 8), config).threads == 2 and set(seen) == {1}
    assert torch.get_num_threads() == before
    assert BACKENDS.get("executorch").torch_threads(2) == 1
    assert all(BACKENDS.get(n).torch_threads(3) == 3 for n in ("cuda_graph", "onnxruntime", "openvino"))


def test_caller_module_left_untouched_and_bfloat16_channels_last_on_cpu() -> None:
    block = tiny_block().train()
    config = TimingConfig(dtype="bfloat16", channels_last=True, batch=2, **QUICK)
    t = measure(block, (8, 8, 8), config)
    check_sane(t, config)
    assert t.input_shape == (2, 8, 8, 8) and t.channels_last
    assert block.training and next(block.parameters()).dtype == torch.float32


def test_functions_tensors_and_structured_outputs() -> None:
    x = torch.rand(1, 8, 8, 8)
    assert measure(lambda v: (v * 2, {"a": v + 1}), x, TimingConfig(**QUICK)).calls_per_repeat >= 1
    assert measure(TwoOutputs(), (1, 8, 8, 8), TimingConfig(**QUICK)).input_shape == (1, 8, 8, 8)


def test_input_shape_and_batch_errors() -> None:
    with pytest.raises(ConfigError, match="TimingConfig.batch"):
        measure(tiny_block(), (2, 8, 8, 8), TimingConfig(**QUICK))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        measure(tiny_block(), (8, 8), TimingConfig(**QUICK))


def test_repeats_capped_by_max_repeats_and_max_run_time() -> None:
    t = measure(tiny_block(), (8, 8, 8), TimingConfig(min_run_time=5.0, min_repeats=2, max_repeats=3, warmup=1))
    assert t.repeats == 3
    # A "module" taking 20 ms with max_run_time 0.05 s stops after a few samples despite min_repeats=100.
    slow = TimingConfig(min_run_time=0.01, max_run_time=0.05, min_repeats=100, warmup=10)
    t = measure(lambda x: time.sleep(0.02), (1, 1, 1), slow)
    assert 1 <= t.repeats < 10 and t.calls_per_repeat == 1


def test_onnxruntime_backend_runs() -> None:
    before = torch.get_num_threads()
    config = TimingConfig(backend="onnxruntime", threads=1, onnx_exporter="torchscript", **QUICK)
    check_sane(measure(TwoOutputs(), (8, 12, 12), config), config)
    assert torch.get_num_threads() == before


def test_an_exported_model_is_timed_as_it_is(tmp_path) -> None:
    """export_for_timing writes the file the onnxruntime backend runs; measure times it without exporting again;
    other backends and another input shape are refused with the reason."""
    import onnxruntime as ort

    from squeezenas.cost.timing import Artefact, export_for_timing

    config = TimingConfig(backend="onnxruntime", threads=1, onnx_exporter="torchscript", **QUICK)
    model = export_for_timing(TwoOutputs(), (8, 12, 12), config, tmp_path, name="two")
    assert model.path == tmp_path / "two.onnx" and model.path.is_file() and model.backend == "onnxruntime"
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output0", "output1", "output2"]  # all outputs kept
    assert session.get_inputs()[0].shape == [1, 8, 12, 12]
    check_sane(measure(model, (8, 12, 12), config), config)
    with pytest.raises(ConfigError, match="takes input"):
        measure(model, (8, 16, 16), config)
    with pytest.raises(ConfigError, match="only the onnxruntime backend"):
        measure(Artefact(model.path, "onnxruntime"), (8, 12, 12), TimingConfig(threads=1, **QUICK))


@pytest.mark.slow
def test_onnxruntime_backend_with_dynamo_exporter() -> None:
    config = TimingConfig(backend="onnxruntime", threads=1, **QUICK)
    check_sane(measure(tiny_block(), (8, 12, 12), config), config)

@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_device_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="TimingConfig.device"):
        measure(tiny_block(), (8, 8, 8), TimingConfig(device="cuda", **QUICK))


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("backend", ["eager", "cuda_graph"])
def test_cuda_backends(backend: str, dtype: str) -> None:
    config = TimingConfig(backend=backend, device="cuda", dtype=dtype, channels_last=True, **QUICK)
    check_sane(measure(TwoOutputs(), (8, 32, 32), config), config)


@pytest.mark.cuda
@cuda
def test_cuda_onnxruntime_backend() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without CUDAExecutionProvider")
    config = TimingConfig(backend="onnxruntime", device="cuda", onnx_exporter="torchscript", **QUICK)
    check_sane(measure(tiny_block(), (8, 32, 32), config), config)


def test_cpu_timing_tunes_the_allocator(monkeypatch):
    """Every CPU measurement keeps freed memory in the heap (glibc): activations are not re-faulted per call."""
    import squeezenas.cost.timing.timer as timer

    calls = []
    monkeypatch.setattr(timer, "tune_cpu_allocator", lambda: calls.append(1) or True)
    measure(torch.nn.Conv2d(3, 4, 3), (3, 8, 8), TimingConfig(threads=1, min_run_time=0.0, warmup=1, min_repeats=2))
    assert calls == [1]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_tuned_allocator_serves_large_blocks_from_the_heap():
    """After tuning, a 64 MiB allocation is no mmapped block of its own (glibc would unmap it on free)."""
    from squeezenas.utils import runtime

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc without mallinfo2 (before 2.33)")
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    assert runtime.tune_cpu_allocator() is True
    before = libc.mallinfo2().hblks
    block = libc.malloc(64 << 20)
    try:
        assert libc.mallinfo2().hblks == before
    finally:
        libc.free(block)


def test_allocator_tuning_is_applied_once(monkeypatch):
    """The three mallopt settings are made on the first call only; later calls report the tuning done."""
    from squeezenas.utils import runtime

    settings = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            settings.append((param, value))
            return 1

    monkeypatch.setattr(runtime, "_tuned", False)
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: FakeLibc())
    assert runtime.tune_cpu_allocator() is True
    assert settings == [(runtime._M_MMAP_MAX, 0), (runtime._M_TRIM_THRESHOLD, 2**31 - 1),
                        (runtime._M_TOP_PAD, 256 << 20)]
    assert runtime.tune_cpu_allocator() is True and len(settings) == 3


@pytest.mark.parametrize("samples", [[1e-3], [2e-3, 1e-3], [0.5e-3, 4e-3, 1e-3, 1.5e-3, 1.1e-3, 9e-3, 1e-3]])
def test_timer_and_bundle_runner_report_the_same_statistics(samples):
    """The same per-call samples give the same median, p10, p90, min, mean and IQR in a table measured here and
    in one imported from a bundle."""
    timing = summarise(samples, 7, TimingConfig(threads=1), 1, (1, 3, 8, 8))
    assert timing.statistics() == runner.statistics(samples, 7)
    ms = np.asarray(samples) * 1e3
    assert timing.median_ms == float(np.median(ms)) and timing.min_ms == float(ms.min())
    assert timing.iqr_ms == float(np.percentile(ms, 75) - np.percentile(ms, 25))
    assert (timing.repeats, timing.calls_per_repeat) == (len(samples), 7)

