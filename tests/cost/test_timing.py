"""The one timer: sane statistics, every backend, config errors naming the field; also the device fingerprint.

No assertion compares two timings: these tests run on shared, noisy CPUs.
"""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from squeezenas.cost.device import device_fingerprint, fingerprint_matches
from squeezenas.cost.timing import BACKENDS, Timing, TimingConfig, measure
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

    from squeezenas.cost.timing import OnnxModel, export_for_timing

    config = TimingConfig(backend="onnxruntime", threads=1, onnx_exporter="torchscript", **QUICK)
    model = export_for_timing(TwoOutputs(), (8, 12, 12), config, tmp_path, name="two")
    assert model.path == tmp_path / "two.onnx" and model.path.is_file()
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output0", "output1", "output2"]  # all outputs kept
    assert session.get_inputs()[0].shape == [1, 8, 12, 12]
    check_sane(measure(model, (8, 12, 12), config), config)
    with pytest.raises(ConfigError, match="takes input"):
        measure(model, (8, 16, 16), config)
    with pytest.raises(ConfigError, match="only the onnxruntime backend"):
        measure(OnnxModel(model.path), (8, 12, 12), TimingConfig(threads=1, **QUICK))


@pytest.mark.slow
def test_onnxruntime_backend_with_dynamo_exporter() -> None:
    config = TimingConfig(backend="onnxruntime", threads=1, **QUICK)
    check_sane(measure(tiny_block(), (8, 12, 12), config), config)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(backend="cuda_graph"), "backend"),
        (dict(backend="eagr"), "backend"),  # message suggests 'eager'
        (dict(dtype="fp16"), "dtype"),
        (dict(dtype="float16"), "dtype"),  # float16 on CPU
        (dict(device="gpu"), "device"),
        (dict(backend="onnxruntime", dtype="bfloat16"), "dtype"),
        (dict(backend="onnxruntime", channels_last=True), "channels_last"),
        (dict(onnx_exporter="tracer"), "onnx_exporter"),
        (dict(threads=0), "threads"),
        (dict(batch=0), "batch"),
        (dict(min_repeats=5, max_repeats=2), "max_repeats"),
        (dict(min_run_time=2.0, max_run_time=1.0), "max_run_time"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"TimingConfig\.{field}:"):
        TimingConfig(**kwargs)


def test_unknown_backend_suggests_close_name_and_config_round_trips() -> None:
    with pytest.raises(ConfigError, match="did you mean 'eager'"):
        TimingConfig(backend="eagr")
    assert set(BACKENDS) == {"eager", "cuda_graph", "onnxruntime"}
    config = TimingConfig(threads=2, dtype="bfloat16", min_run_time=0.1)
    assert TimingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="did you mean 'threads'"):
        TimingConfig.from_dict({"thread": 2})


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


def test_device_fingerprint_and_differences() -> None:
    a = device_fingerprint("cpu", threads=3)
    assert a["threads"] == 3 and a["torch"] == torch.__version__ and a["logical_cores"] >= 1
    assert a["cpu_model"] and json.loads(json.dumps(a)) == a
    assert fingerprint_matches(a, dict(a)) == []
    b = dict(a, threads=8, gpu="X")
    assert fingerprint_matches(a, b) == ["gpu: None != 'X'", "threads: 3 != 8"]


def test_cpu_timing_tunes_the_allocator(monkeypatch):
    """Every CPU measurement keeps freed memory in the heap (glibc): activations are not re-faulted per call."""
    import squeezenas.cost.timing as timing
    from squeezenas.utils import runtime

    calls = []
    monkeypatch.setattr(timing, "tune_cpu_allocator", lambda: calls.append(1) or True)
    measure(torch.nn.Conv2d(3, 4, 3), (3, 8, 8), TimingConfig(threads=1, min_run_time=0.0, warmup=1, min_repeats=2))
    assert calls == [1]
    assert runtime.tune_cpu_allocator() is runtime.tune_cpu_allocator()  # idempotent
