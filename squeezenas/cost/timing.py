"""One timer for every latency figure: warm-up, synchronisation, enough repeats and robust statistics."""

from __future__ import annotations

import copy
import math
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from squeezenas.export import EXPORTERS, FlatOutputs, export_module
from squeezenas.utils.config import ConfigError, from_dict, to_dict
from squeezenas.utils.registry import Registry, unknown_name_message
from squeezenas.utils.runtime import tune_cpu_allocator

# The lookup-table builder and the end-to-end benchmark both call ``measure``, so a predicted latency (sum of
# timed blocks) and a measured one (the whole network) come from the same procedure by construction.
#
# How a measurement runs (the structure of ``torch.utils.benchmark.Timer.blocked_autorange``, kept here because
# that function cannot bound the repeats from both sides, sets one thread unless told otherwise, and times CUDA
# with a host clock after a device-wide synchronise):
#
# 1. prepare: a copy of the module in eval mode on the device, dtype and memory format asked for (or a captured
#    CUDA graph, or an onnxruntime session of its ONNX export), and a random input;
# 2. warm up: ``warmup`` untimed calls (cut short for slow modules), which also tell how long one call takes;
# 3. sample: each sample times ``calls_per_repeat`` back-to-back calls, so that a sample lasts at least ~0.1 ms
#    and timer overhead stays negligible; a module whose call is longer than that gets true per-call samples.
#    CUDA work is timed with CUDA events on the current stream, everything else with ``time.perf_counter``;
# 4. stop once both ``min_run_time`` seconds and ``min_repeats`` samples are reached, or at ``max_repeats``, or
#    after ``max_run_time`` seconds whatever the count (a module that takes seconds is not repeated needlessly);
# 5. report the median per-call time and its spread (IQR, 10th/90th percentiles) over the samples.

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEVICES = ("cpu", "cuda")
# The per-call figure that tables, checks and the demo use. "median" is the default; "min" and "p10" are the
# robust choice on a machine whose speed wanders (a VM on a shared host, see docs/LATENCY.md): contention only
# ever adds time, so the fastest calls are the ones it disturbed least.
STATISTICS = ("median", "min", "p10")
_SAMPLE_TARGET_S = 1e-4  # a sample lasts at least this long: perf_counter/event overhead stays well below 1%
_MAX_CALLS_PER_SAMPLE = 1000
_GRAPH_CAPTURE_WARMUP = 3  # eager calls on a side stream before capture (lazy init, cuDNN autotuning)


@dataclass(frozen=True)
class TimingConfig:
    """How to time a module; every field that changes the measured cost is here and recorded in ``Timing``."""

    backend: str = "eager"  # "eager" (PyTorch), "cuda_graph" (replay of a captured CUDA graph), "onnxruntime"
    device: str = "cpu"  # "cpu" or "cuda" (the current CUDA device)
    dtype: str = "float32"  # "float32"; "float16"/"bfloat16" on CUDA; "bfloat16" also on CPU with eager
    channels_last: bool = False  # NHWC memory format for weights and input (eager and cuda_graph)
    threads: int | None = None  # CPU threads (torch intra-op, ORT intra_op_num_threads); None: torch's current
    batch: int = 1  # batch size N of the timed input
    warmup: int = 10  # untimed calls first (allocator, caches, cuDNN autotuning); cut short for slow modules
    min_run_time: float = 0.5  # seconds of sampling at least (together with min_repeats)
    max_run_time: float = 10.0  # seconds after which sampling stops, even below min_repeats
    min_repeats: int = 10  # samples at least, unless max_run_time is reached first
    max_repeats: int = 10_000  # samples at most
    onnx_exporter: str = "dynamo"  # ONNX exporter of the onnxruntime backend; "torchscript" exports ~10x faster
    statistic: str = "median"  # per-call figure a table or check keeps: median, min or p10 (see STATISTICS)

    def __post_init__(self) -> None:
        for check in (_check_names, _check_combination, _check_numbers):
            check(self)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimingConfig:
        return from_dict(cls, data, "TimingConfig")


@dataclass
class Timing:
    """Per-call latency statistics of one measurement, with the settings that produced it (JSON-ready)."""

    median_ms: float  # median per-call time over the samples
    iqr_ms: float  # interquartile range (p75 - p25) of the samples
    p10_ms: float  # 10th percentile
    p90_ms: float  # 90th percentile
    mean_ms: float
    min_ms: float
    repeats: int  # number of samples
    calls_per_repeat: int  # back-to-back calls averaged in each sample
    backend: str
    device: str
    dtype: str
    threads: int  # CPU threads in effect (config.threads, or torch's count when that was None)
    batch: int
    channels_last: bool
    input_shape: tuple[int, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        return from_dict(cls, data, "Timing")

    def __str__(self) -> str:
        return (f"{self.median_ms:.4g} ms (IQR {self.iqr_ms:.2g}, n={self.repeats}x{self.calls_per_repeat}; "
                f"{self.backend} {self.device} {self.dtype}, {self.threads} threads)")


def stat_key(statistic: str) -> str:
    """The field of ``Timing`` (and of table entries) holding ``statistic``: "median" → "median_ms"."""
    if statistic not in STATISTICS:
        raise ValueError(unknown_name_message("statistic", statistic, STATISTICS))
    return f"{statistic}_ms"


@dataclass
class _Runner:
    """A prepared zero-argument call and the clock that times ``n`` calls of it (seconds)."""

    call: Callable[[], Any]
    clock: Callable[[Callable[[], Any], int], float]
    keep: tuple[Any, ...] = ()  # objects that must outlive the timing (graph inputs/outputs, sessions)


Backend = Callable[[Any, torch.Tensor, TimingConfig, int], _Runner]
BACKENDS: Registry[Backend] = Registry("timing backend")


def measure(
    module_or_fn: nn.Module | Callable[[torch.Tensor], Any],
    inputs: Sequence[int] | torch.Tensor,
    config: TimingConfig | None = None,
) -> Timing:
    """Time one forward call of ``module_or_fn`` on one input tensor.

    ``inputs`` is an example tensor or a shape: (C, H, W) gets ``config.batch`` prepended, (N, C, H, W) must
    have N == ``config.batch``. Modules are copied (the caller's module is not moved, cast or switched to eval);
    plain functions are called as they are, on an input of the configured device, dtype and layout.
    """
    config = config or TimingConfig()
    _check_available(config)
    if config.device == "cpu":
        # glibc returns freed blocks above its mmap/trim thresholds to the kernel, so a network's activations
        # are page-faulted and zeroed again on every call, more so in a whole network than in one part timed
        # alone: 15-20 ms instead of 11.5-13 for one Small network at 128×256 (docs/LATENCY.md). Deployed
        # runtimes keep their memory (ORT's arena, jemalloc/tcmalloc); so does every timing here.
        tune_cpu_allocator()
    example = _make_input(inputs, config)
    threads = config.threads or torch.get_num_threads()
    with _torch_threads(threads):
        runner = BACKENDS.get(config.backend)(module_or_fn, example, config, threads)
        with torch.inference_mode():
            samples, number = _sample(runner, config)
    return _summarise(samples, number, config, threads, tuple(example.shape))


# --- backends -----------------------------------------------------------------------------------------------


@BACKENDS.register("eager")
def _eager(target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> _Runner:
    """Plain PyTorch calls; CUDA timed with events (includes kernel launch overhead, as at deployment)."""
    fn = _prepare_module(target, config)
    return _Runner(lambda: fn(x), _clock(config.device))


@BACKENDS.register("cuda_graph")
def _cuda_graph(target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> _Runner:
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
    return _Runner(graph.replay, _cuda_event_clock(), keep=(graph, x, out))


@BACKENDS.register("onnxruntime")
def _onnxruntime(target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> _Runner:
    """Export to ONNX (all outputs kept) in a temp dir, unless given an ``OnnxModel``, and run an InferenceSession
    with bound inputs/outputs.

    Sequential execution, ``threads`` intra-op threads and all graph optimisations (BN folding, fusions), as a
    deployment would configure it. onnxruntime synchronises its own CUDA stream, so a host clock is right.
    """
    import onnxruntime as ort

    x_cpu = x.detach().float().cpu().contiguous()
    if isinstance(target, OnnxModel):
        session = _ort_session(ort, target.path, config, threads)
    else:
        with tempfile.TemporaryDirectory(prefix="squeezenas-timing-") as tmp:
            model = export_for_timing(target, x_cpu, config, tmp)
            session = _ort_session(ort, model.path, config, threads)
    expected = session.get_inputs()[0].shape
    if all(isinstance(d, int) for d in expected) and tuple(expected) != tuple(x_cpu.shape):
        raise ConfigError(f"measure: the ONNX model takes input {tuple(expected)}, "
                          f"the timed input is {tuple(x_cpu.shape)}")
    binding, bound_input = _ort_binding(ort, session, x_cpu.numpy(), config.device)
    return _Runner(lambda: session.run_with_iobinding(binding), _host_clock, keep=(session, binding, bound_input))


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX file that the onnxruntime backend times as it is, without exporting anything.

    ``export_for_timing`` makes one; timing one module several times (a table's rounds and retries, a check's
    networks) then exports it once: an export with the dynamo exporter takes longer than the timing itself.
    """

    path: Path


def export_for_timing(module_or_fn: nn.Module | Callable[[torch.Tensor], Any], inputs: Sequence[int] | torch.Tensor,
                      config: TimingConfig, directory: str | Path, name: str = "module") -> OnnxModel:
    """Export ``module_or_fn`` as the onnxruntime backend times it (float32, every output kept) to
    ``directory/name.onnx``; ``measure`` with an onnxruntime config then times the returned ``OnnxModel``."""
    x = _make_input(inputs, TimingConfig.from_dict({**config.to_dict(), "device": "cpu", "dtype": "float32",
                                                    "channels_last": False}))
    module = _onnx_ready(module_or_fn)
    with torch.no_grad():
        n_outputs = len(FlatOutputs(module)(x))
    path = export_module(FlatOutputs(module), Path(directory) / f"{name}.onnx", x,
                         output_names=[f"output{i}" for i in range(n_outputs)], exporter=config.onnx_exporter)
    return OnnxModel(path)


def _ort_session(ort: Any, path: str | Path, config: TimingConfig, threads: int) -> Any:
    session = ort.InferenceSession(str(path), sess_options=_ort_options(ort, threads),
                                   providers=_ort_providers(ort, config.device))
    if config.device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ConfigError("TimingConfig.device: onnxruntime could not start CUDAExecutionProvider "
                          f"(session providers: {session.get_providers()})")
    return session


def _onnx_ready(target: Any) -> nn.Module:
    """A float32 CPU copy of the module (or a module wrapping the function) for export."""
    if isinstance(target, nn.Module):
        return copy.deepcopy(target).float().cpu().eval()
    return _FunctionModule(target)


class _FunctionModule(nn.Module):
    """Lets a plain function go through the ONNX exporter."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(x)


def _ort_options(ort: Any, threads: int) -> Any:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    return opts


def _ort_providers(ort: Any, device: str) -> list[Any]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ConfigError("TimingConfig.device: 'cuda' with the onnxruntime backend needs onnxruntime-gpu "
                          f"(available providers: {ort.get_available_providers()})")
    return [("CUDAExecutionProvider", {"device_id": torch.cuda.current_device()}), "CPUExecutionProvider"]


def _ort_binding(ort: Any, session: Any, x: np.ndarray, device: str) -> tuple[Any, Any]:
    """Input placed on the device once; outputs left on the device: no host copies inside the timed call.

    Returns the binding and the bound input buffer, which must stay alive as long as the binding is used.
    """
    binding = session.io_binding()
    name = session.get_inputs()[0].name
    device_id = torch.cuda.current_device() if device == "cuda" else 0
    if device == "cuda":
        x = ort.OrtValue.ortvalue_from_numpy(x, "cuda", device_id)
        binding.bind_ortvalue_input(name, x)
    else:
        binding.bind_cpu_input(name, x)
    for out in session.get_outputs():
        binding.bind_output(out.name, device, device_id)
    return binding, x


# --- preparing module and input --------------------------------------------------------------------------


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


def _make_input(inputs: Sequence[int] | torch.Tensor, config: TimingConfig) -> torch.Tensor:
    """The timed input: the example tensor or a seeded random one, on the configured device/dtype/layout."""
    if isinstance(inputs, torch.Tensor):
        x = inputs.detach()
    else:
        x = torch.randn(_full_shape(inputs, config), generator=torch.Generator().manual_seed(0))
    if x.shape[0] != config.batch:
        raise ConfigError(f"TimingConfig.batch: is {config.batch} but the input has batch {x.shape[0]} "
                          f"(shape {tuple(x.shape)})")
    x = x.to(device=config.device, dtype=DTYPES[config.dtype] if x.is_floating_point() else x.dtype)
    if config.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _full_shape(shape: Sequence[int], config: TimingConfig) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return (config.batch, *shape)
    if len(shape) == 4:
        return shape
    raise ValueError(f"measure: input shape must be (C, H, W) or (N, C, H, W), got {shape}")


# --- clocks, warm-up, sampling, statistics ---------------------------------------------------------------


def _host_clock(call: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return time.perf_counter() - start


def _cuda_event_clock() -> Callable[[Callable[[], Any], int], float]:
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


def _clock(device: str) -> Callable[[Callable[[], Any], int], float]:
    return _cuda_event_clock() if device == "cuda" else _host_clock


def _sample(runner: _Runner, config: TimingConfig) -> tuple[list[float], int]:
    """Warm up, then collect per-call times (seconds) of samples of ``number`` calls each."""
    number = _calls_per_sample(_warm_up(runner, config))
    if config.device == "cuda":
        torch.cuda.synchronize()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < config.max_repeats:
        samples.append(runner.clock(runner.call, number) / number)
        elapsed = time.perf_counter() - start
        if elapsed >= config.max_run_time or (len(samples) >= config.min_repeats and elapsed >= config.min_run_time):
            break
    return samples, number


def _warm_up(runner: _Runner, config: TimingConfig) -> float:
    """Run the warm-up calls (at least one, to calibrate); return the typical time of one warm call.

    A slow module stops warming up after two calls once ``min_run_time`` has passed: its first calls already
    amortise lazy initialisation, and ten more multi-second calls would buy nothing.
    """
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(max(config.warmup, 1)):
        times.append(runner.clock(runner.call, 1))
        if len(times) >= min(config.warmup, 2) and time.perf_counter() - start >= config.min_run_time:
            break
    return float(np.median(times[len(times) // 2:]))  # the later, warm calls


def _calls_per_sample(per_call_s: float) -> int:
    if per_call_s <= 0:
        return _MAX_CALLS_PER_SAMPLE
    return max(1, min(_MAX_CALLS_PER_SAMPLE, math.ceil(_SAMPLE_TARGET_S / per_call_s)))


def _summarise(samples: list[float], number: int, config: TimingConfig, threads: int,
               shape: tuple[int, ...]) -> Timing:
    ms = np.asarray(samples) * 1e3
    p10, p25, p50, p75, p90 = (float(v) for v in np.percentile(ms, [10, 25, 50, 75, 90]))
    return Timing(median_ms=p50, iqr_ms=p75 - p25, p10_ms=p10, p90_ms=p90, mean_ms=float(ms.mean()),
                  min_ms=float(ms.min()), repeats=len(samples), calls_per_repeat=number, backend=config.backend,
                  device=config.device, dtype=config.dtype, threads=threads, batch=config.batch,
                  channels_last=config.channels_last, input_shape=shape)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set for the duration and restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --- config checks ---------------------------------------------------------------------------------------


def _error(name: str, message: str) -> ConfigError:
    return ConfigError(f"TimingConfig.{name}: {message}")


def _check_names(c: TimingConfig) -> None:
    if c.backend not in BACKENDS:
        raise _error("backend", unknown_name_message("timing backend", c.backend, BACKENDS.names()))
    if c.device not in DEVICES:
        raise _error("device", unknown_name_message("device", c.device, DEVICES))
    if c.dtype not in DTYPES:
        raise _error("dtype", unknown_name_message("dtype", c.dtype, DTYPES))
    if c.onnx_exporter not in EXPORTERS:
        raise _error("onnx_exporter", unknown_name_message("ONNX exporter", c.onnx_exporter, EXPORTERS))
    if c.statistic not in STATISTICS:
        raise _error("statistic", unknown_name_message("statistic", c.statistic, STATISTICS))


def _check_combination(c: TimingConfig) -> None:
    if c.backend == "cuda_graph" and c.device != "cuda":
        raise _error("backend", f"'cuda_graph' needs device='cuda', got device={c.device!r}")
    if c.backend == "onnxruntime" and c.dtype != "float32":
        raise _error("dtype", f"the onnxruntime backend times float32 models only, got {c.dtype!r}")
    if c.backend == "onnxruntime" and c.channels_last:
        raise _error("channels_last", "the onnxruntime backend picks its own layout; use channels_last=False")
    if c.device == "cpu" and c.dtype == "float16":
        raise _error("dtype", "'float16' needs device='cuda' (on CPU use 'bfloat16' with the eager backend)")


def _check_numbers(c: TimingConfig) -> None:
    if c.threads is not None and c.threads < 1:
        raise _error("threads", f"must be None or >= 1, got {c.threads}")
    for name in ("batch", "min_repeats"):
        if getattr(c, name) < 1:
            raise _error(name, f"must be >= 1, got {getattr(c, name)}")
    if c.warmup < 0:
        raise _error("warmup", f"must be >= 0, got {c.warmup}")
    if c.min_run_time < 0:
        raise _error("min_run_time", f"must be >= 0, got {c.min_run_time}")
    if c.max_run_time < c.min_run_time or c.max_run_time <= 0:
        raise _error("max_run_time", f"must be > 0 and >= min_run_time ({c.min_run_time}), got {c.max_run_time}")
    if c.max_repeats < c.min_repeats:
        raise _error("max_repeats", f"must be >= min_repeats ({c.min_repeats}), got {c.max_repeats}")


def _check_available(c: TimingConfig) -> None:
    """Checks that depend on this machine, made when measuring (a config may be read where it cannot run)."""
    if c.device == "cuda" and not torch.cuda.is_available():
        raise _error("device", "'cuda' asked for but torch.cuda.is_available() is False")
