"""The timing backends: eager PyTorch, a replayed CUDA graph, onnxruntime; each prepares a call and its clock."""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from squeezenas.cost.timing.config import BACKENDS, DTYPES, TimingConfig
from squeezenas.cost.timing.ort import OnnxModel, export_for_timing, ort_binding, ort_session
from squeezenas.utils.config import ConfigError

_GRAPH_CAPTURE_WARMUP = 3  # eager calls on a side stream before capture (lazy init, cuDNN autotuning)

Clock = Callable[[Callable[[], Any], int], float]  # seconds that n calls of a call take


@dataclass
class TimedCall:
    """A prepared zero-argument call and the clock that times ``n`` calls of it (seconds)."""

    call: Callable[[], Any]
    clock: Clock
    keep: tuple[Any, ...] = ()  # objects that must outlive the timing (graph inputs/outputs, sessions)

    def time(self, n: int) -> float:
        return self.clock(self.call, n)


@BACKENDS.register("eager")
def _eager(target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
    """Plain PyTorch calls; CUDA timed with events (includes kernel launch overhead, as at deployment)."""
    fn = _prepare_module(target, config)
    return TimedCall(lambda: fn(x), _cuda_event_clock() if config.device == "cuda" else _host_clock)


@BACKENDS.register("cuda_graph")
def _cuda_graph(target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
    """Capture one call in a CUDA graph after warm-up on a side stream (as torch.cuda.graphs advises); replay it."""
    fn = _prepare_module(target, config)
    with torch.inference_mode():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(_GRAPH_CAPTURE_WARMUP):
                fn(x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn(x)  # static output: replays overwrite it
    torch.cuda.synchronize()
    return TimedCall(graph.replay, _cuda_event_clock(), keep=(graph, x, out))


@BACKENDS.register("onnxruntime")
def _onnxruntime(target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
    """Export to ONNX (all outputs kept) in a temp dir, unless given an ``OnnxModel``, and run an InferenceSession
    with bound inputs/outputs.

    Sequential execution, ``threads`` intra-op threads and all graph optimisations (BN folding, fusions), as a
    deployment would configure it. onnxruntime synchronises its own CUDA stream, so a host clock is right.
    """
    x_cpu = x.detach().float().cpu().contiguous()
    if isinstance(target, OnnxModel):
        session = ort_session(target.path, config, threads)
    else:
        with tempfile.TemporaryDirectory(prefix="squeezenas-timing-") as tmp:
            model = export_for_timing(target, x_cpu, config, tmp)
            session = ort_session(model.path, config, threads)
    expected = session.get_inputs()[0].shape
    if all(isinstance(d, int) for d in expected) and tuple(expected) != tuple(x_cpu.shape):
        raise ConfigError(f"measure: the ONNX model takes input {tuple(expected)}, "
                          f"the timed input is {tuple(x_cpu.shape)}")
    binding, bound_input = ort_binding(session, x_cpu.numpy(), config.device)
    return TimedCall(lambda: session.run_with_iobinding(binding), _host_clock, keep=(session, binding, bound_input))


def _prepare_module(target: Any, config: TimingConfig) -> Callable[[torch.Tensor], Any]:
    """A copy of the module in eval mode on the configured device/dtype/layout; functions as they are."""
    if isinstance(target, OnnxModel):
        raise ConfigError(f"TimingConfig.backend: {target.path} is an ONNX model; only the onnxruntime backend "
                          f"times one, not {config.backend!r}")
    if not isinstance(target, nn.Module):
        if not callable(target):
            raise TypeError(f"measure: expected an nn.Module or a callable, got {type(target).__name__}")
        return target
    module = copy.deepcopy(target).eval().to(device=config.device, dtype=DTYPES[config.dtype])
    if config.channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def _host_clock(call: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return time.perf_counter() - start


def _cuda_event_clock() -> Clock:
    """Times ``n`` calls between two CUDA events on the current stream; waits only for the end event."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def clock(call: Callable[[], Any], n: int) -> float:
        start.record()
        for _ in range(n):
            call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return clock
