"""TimingConfig: errors naming the field, close-name suggestions, JSON round trips, threads made explicit."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from squeezenas.cost.timing import BACKENDS, TimingConfig
from squeezenas.utils.config import ConfigError


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
        (dict(backend="openvino", device="cuda"), "device"),
        (dict(backend="openvino", dtype="float16"), "dtype"),  # f16 is for OpenVINO's GPU, not its CPU
        (dict(backend="executorch", dtype="bfloat16"), "dtype"),
        (dict(backend="executorch", channels_last=True), "channels_last"),
        (dict(runtime_device="GPU"), "runtime_device"),  # only OpenVINO has devices of its own
        (dict(statistic="mode"), "statistic"),
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
    assert set(BACKENDS) == {"eager", "cuda_graph", "onnxruntime", "openvino", "executorch"}
    assert TimingConfig(backend="openvino", dtype="float16", runtime_device="GPU").runtime_device == "GPU"
    config = TimingConfig(threads=2, dtype="bfloat16", min_run_time=0.1)
    assert TimingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="did you mean 'threads'"):
        TimingConfig.from_dict({"thread": 2})


def test_resolved_makes_threads_and_statistic_explicit():
    """threads: torch's count (what a deployment here uses); statistic: the min on CPU, the median on CUDA."""
    config = TimingConfig(min_run_time=0.1)
    resolved = config.resolved()
    assert resolved.threads == torch.get_num_threads() and resolved.statistic == "min"
    assert dataclasses.replace(resolved, threads=None, statistic=None) == config
    assert TimingConfig(threads=3, statistic="p10").resolved() == TimingConfig(threads=3, statistic="p10")
    cuda = TimingConfig(device="cuda", threads=1)  # a config can be read where it cannot run
    assert cuda.resolved().statistic == "median"


def test_a_missing_runtime_names_its_extra(monkeypatch):
    """An optional runtime that is not installed is a one-line error naming the extra that installs it."""
    import sys

    from squeezenas.cost.timing import RuntimeMissing, check_available

    monkeypatch.setitem(sys.modules, "openvino", None)  # what Python does for a package that is not installed
    with pytest.raises(RuntimeMissing, match=r"pip install 'squeezenas\[openvino\]'"):
        check_available(TimingConfig(backend="openvino"))
    assert isinstance(RuntimeMissing("x"), ConfigError)  # the CLI's one-line error, exit 2
