"""How a module is timed (``TimingConfig``), what one measurement reports (``Timing``), and the timed input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from squeezenas.cost.timing.onnx import EXPORTERS
from squeezenas.utils.config import ConfigError, from_dict, to_dict
from squeezenas.utils.registry import Registry, unknown_name_message

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEVICES = ("cpu", "cuda")
# The per-call figure that tables, checks and benchmarks keep. On a CPU the default is "min": a machine whose speed
# wanders (a VM on a shared host, a laptop, anything else running) only ever adds time, so the fastest calls are
# the ones it disturbed least; measured, the min of one network wanders by ±1.5% where its median wanders by ±14%
# (docs/LATENCY.md). On CUDA the default is the median (kernels timed by events; clocks, not neighbours, vary).
STATISTICS = ("median", "min", "p10")
# Round-robin rounds of every part and network (lut build/check, bench) by default: on a CPU each figure is the
# speed-normalised median of 16 short rounds (0.1 s each, ``min_run_time``): this VM's speed changes every few
# seconds by up to 1.6x, and many short rounds, each divided by the speed measured around it, cancel that where 4
# long rounds' fastest did not (docs/LATENCY.md, bench/paired_reference.py, cost/timing/rounds.py). A board's
# bundle keeps its runner's own ROUNDS (4, the fastest round): it does not record when each round was taken.
CPU_ROUNDS = 16
CUDA_ROUNDS = 1
# The statistics of one measurement, as ``Timing`` holds them and a latency-table entry keeps them.
STAT_FIELDS = ("median_ms", "iqr_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms", "repeats", "calls_per_repeat")
# Runtime backends by name (``backends.RuntimeBackend``): eager and cuda_graph (backends.py), onnxruntime (ort.py),
# openvino (ov.py), executorch (et.py); the package imports them all, so the registry is filled before any config
# is checked against it. The optional runtimes are imported only when one is used.
BACKENDS: Registry[Any] = Registry("timing backend")


@dataclass(frozen=True)
class TimingConfig:
    """How to time a module; every field that changes the measured cost is here and recorded in ``Timing``."""

    backend: str = "eager"  # runtime: "eager" (PyTorch), "cuda_graph", "onnxruntime", "openvino", "executorch"
    device: str = "cpu"  # "cpu" or "cuda" (the current CUDA device)
    runtime_device: str | None = None  # the runtime's own device name (OpenVINO: "GPU", "GPU.1", "NPU"); None: device
    dtype: str = "float32"  # "float32"; "float16"/"bfloat16" on CUDA; "bfloat16" also on CPU with eager
    channels_last: bool = False  # NHWC memory format for weights and input (eager and cuda_graph)
    threads: int | None = None  # CPU threads of the runtime (torch intra-op, ORT intra-op, OpenVINO inference, XNNPACK
    # pool); None: torch's current count, what a deployment on this machine uses (its physical cores)
    batch: int = 1  # batch size N of the timed input
    warmup: int = 10  # untimed calls first (allocator, caches, cuDNN autotuning); cut short for slow modules
    min_run_time: float = 0.1  # seconds of sampling at least (together with min_repeats), per round
    max_run_time: float = 10.0  # seconds after which sampling stops, even below min_repeats
    min_repeats: int = 10  # samples at least, unless max_run_time is reached first
    max_repeats: int = 10_000  # samples at most
    onnx_exporter: str = "dynamo"  # ONNX exporter of the onnxruntime backend; "torchscript" exports ~10x faster
    statistic: str | None = None  # per-call figure a table or check keeps: median, min or p10; None: min on CPU,
    # median on CUDA (see STATISTICS)

    def __post_init__(self) -> None:
        for check in (_check_names, _check_combination, _check_numbers):
            check(self)

    def resolved(self) -> TimingConfig:
        """This config with ``threads`` (torch's current intra-op count when None) and ``statistic`` (min on CPU,
        median on CUDA when None) made explicit, as a table or a benchmark records it."""
        return dataclasses.replace(self, threads=self.threads or torch.get_num_threads(),
                                   statistic=self.statistic or default_statistic(self.device))

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

    def statistics(self) -> dict[str, Any]:
        """The statistics alone (``STAT_FIELDS``): what a latency-table entry keeps of a timing."""
        return {k: getattr(self, k) for k in STAT_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        return from_dict(cls, data, "Timing")

    def __str__(self) -> str:
        return (f"{self.median_ms:.4g} ms (IQR {self.iqr_ms:.2g}, n={self.repeats}x{self.calls_per_repeat}; "
                f"{self.backend} {self.device} {self.dtype}, {self.threads} threads)")


def default_statistic(device: str) -> str:
    """The per-call figure kept when none is asked for: "min" on CPU, "median" on CUDA (see STATISTICS)."""
    return "median" if device == "cuda" else "min"


def default_rounds(config: TimingConfig) -> int:
    """Round-robin rounds of every part and network when none are asked for: 16 on CPU, 1 on CUDA."""
    return CUDA_ROUNDS if config.device == "cuda" else CPU_ROUNDS


def stat_key(statistic: str) -> str:
    """The field of ``Timing`` (and of table entries) holding ``statistic``: "median" → "median_ms"."""
    if statistic not in STATISTICS:
        raise ValueError(unknown_name_message("statistic", statistic, STATISTICS))
    return f"{statistic}_ms"


def make_input(inputs: Sequence[int] | torch.Tensor, config: TimingConfig) -> torch.Tensor:
    """The timed input: the example tensor or a seeded random one, on the configured device/dtype/layout.

    A shape (C, H, W) gets ``config.batch`` prepended; (N, C, H, W) and a tensor must have N == ``config.batch``.
    """
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
    if c.statistic is not None and c.statistic not in STATISTICS:
        raise _error("statistic", unknown_name_message("statistic", c.statistic, STATISTICS))


def _check_combination(c: TimingConfig) -> None:
    """What the backend cannot run (``RuntimeBackend.check``: device, dtype, layout), named by field."""
    message = BACKENDS.get(c.backend).check(c)
    if message:
        field_name, _, text = message.partition(": ")
        raise _error(field_name, text)


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


def check_available(c: TimingConfig) -> None:
    """Checks that depend on this machine, made before measuring (a config may be read where it cannot run): a
    CUDA device, and the backend's runtime (``RuntimeMissing`` naming the extra that installs it)."""
    if c.device == "cuda" and not torch.cuda.is_available():
        raise _error("device", "'cuda' asked for but torch.cuda.is_available() is False")
    BACKENDS.get(c.backend).require()
