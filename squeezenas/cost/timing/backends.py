"""The runtime backend interface — export the runtime's artefact, open a session, the timed call, parity with
PyTorch — and the two PyTorch backends (eager, a replayed CUDA graph). onnxruntime, OpenVINO and ExecuTorch
implement it in ort.py, ov.py and et.py."""

from __future__ import annotations

import copy
import importlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch
from torch import nn

from squeezenas.cost.timing.config import BACKENDS, DTYPES, TimingConfig
from squeezenas.cost.timing.onnx import flatten_outputs
from squeezenas.utils.config import ConfigError

_GRAPH_CAPTURE_WARMUP = 3  # eager calls on a side stream before capture (lazy init, cuDNN autotuning)

Clock = Callable[[Callable[[], Any], int], float]  # seconds that n calls of a call take


class RuntimeMissing(ConfigError):
    """The backend's runtime is not installed; the message names the extra that installs it."""


@dataclass
class TimedCall:
    """A prepared zero-argument call and the clock that times ``n`` calls of it (seconds)."""

    call: Callable[[], Any]
    clock: Clock
    keep: tuple[Any, ...] = ()  # objects that must outlive the timing (graph inputs/outputs, sessions, temp dirs)

    def time(self, n: int) -> float:
        return self.clock(self.call, n)


@dataclass(frozen=True)
class Artefact:
    """A file a runtime runs (ONNX model, OpenVINO IR, ExecuTorch program), timed as it is, without exporting.

    ``export_for_timing`` makes one; timing one module several times (a table's rounds and retries, a check's
    networks) then exports it once: an export takes longer than the timing itself.
    """

    path: Path
    backend: str


class RuntimeBackend:
    """A runtime that times a module as a deployment runs it.

    ``export`` writes the runtime's artefact of a one-input module (``suffix``; None for PyTorch backends, which
    time the module itself); ``session`` opens it with the configured threads and device and returns the timed
    call with its inputs bound once; ``run`` makes one call and returns the outputs (for ``parity``, the max abs
    difference from PyTorch). ``check`` names what a config asks that the runtime cannot do; ``require`` imports
    the runtime, or says which extra installs it.
    """

    name = ""
    suffix: str | None = None  # the artefact's file suffix
    module = ""  # the Python package of the runtime, imported lazily ("" for torch)
    extra = ""  # the squeezenas extra that installs it: pip install squeezenas[extra]
    context = "alone"  # how a latency table times ops by default (lut.plan.CONTEXTS)

    def check(self, config: TimingConfig) -> str | None:
        """"field: what is wrong" when ``config`` asks what this runtime cannot do, else None."""
        return None

    def float32_in_own_layout(self, config: TimingConfig) -> str | None:
        """The check of a runtime that runs float32 artefacts in a layout of its own, on ``device`` alone."""
        if config.dtype != "float32":
            return f"dtype: the {self.name} backend times float32 models only, got {config.dtype!r}"
        if config.channels_last:
            return f"channels_last: the {self.name} backend picks its own layout; use channels_last=False"
        if config.runtime_device is not None:
            return f"runtime_device: only the openvino backend has devices of its own, not {self.name!r}"
        return None

    def require(self) -> ModuleType | None:
        """The runtime's package, imported now; RuntimeMissing naming the extra when it is not installed."""
        if not self.module:
            return None
        try:
            return importlib.import_module(self.module)
        except ImportError as e:
            raise RuntimeMissing(f"the {self.name} backend needs {self.module.split('.')[0]}, which is not "
                                 f"installed ({e}); pip install 'squeezenas[{self.extra}]'") from None

    def version(self) -> str | None:
        """The runtime's version, recorded in a table's device fingerprint."""
        return None

    def torch_threads(self, threads: int) -> int:
        """torch's intra-op threads while this runtime is timed at ``threads`` threads: the same, unless torch
        runs inside the timed call and its idle workers would compete with the runtime's own pool."""
        return threads

    def export(self, module: nn.Module, example: torch.Tensor, path: Path, config: TimingConfig) -> Path:
        raise NotImplementedError(f"the {self.name} backend times the PyTorch module itself; it writes no file")

    def session(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
        raise NotImplementedError

    def run(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int = 1) -> list[torch.Tensor]:
        raise NotImplementedError

    def prepare(self, target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
        """The timed call of a module, a function or an artefact: a module is exported first into a temporary
        folder that lives as long as the call."""
        if isinstance(target, Artefact):
            if target.backend != self.name:
                raise ConfigError(f"TimingConfig.backend: {target.path} is a {target.backend} artefact; only the "
                                  f"{target.backend} backend times it, not {self.name!r}")
            return self.session(target.path, x, config, threads)
        folder = tempfile.TemporaryDirectory(prefix="squeezenas-timing-")
        artefact = export_for_timing(target, x, config, folder.name)
        timed = self.session(artefact.path, x, config, threads)
        timed.keep += (folder,)
        return timed

    def parity(self, module: nn.Module, path: Path, x: torch.Tensor, config: TimingConfig) -> float:
        """Max absolute difference between every output of ``module`` (PyTorch, float32, CPU) and the
        artefact's on input ``x``; a different number or shape of outputs is a ValueError naming the file."""
        with torch.inference_mode():
            expected = flatten_outputs(copy.deepcopy(module).float().cpu().eval()(x.float().cpu()))
        got = self.run(path, x.float().cpu(), config)
        if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
            raise ValueError(f"{path}: {self.name} outputs {[tuple(g.shape) for g in got]}, PyTorch "
                             f"{[tuple(e.shape) for e in expected]}")
        return max(float((g.float() - e).abs().max()) for g, e in zip(got, expected))


def export_for_timing(module_or_fn: nn.Module | Callable[[torch.Tensor], Any], inputs: Any, config: TimingConfig,
                      directory: str | Path, name: str = "module") -> Artefact:
    """Export ``module_or_fn`` as the configured backend times it (float32, every output kept) to
    ``directory/name`` + the backend's suffix; ``measure`` with that config then times the returned artefact."""
    from squeezenas.cost.timing.config import make_input
    from squeezenas.cost.timing.onnx import FlatOutputs

    backend = BACKENDS.get(config.backend)
    if backend.suffix is None:
        raise ConfigError(f"TimingConfig.backend: {config.backend!r} times the PyTorch module; there is nothing "
                          "to export")
    backend.require()
    cpu = TimingConfig.from_dict({**config.to_dict(), "device": "cpu", "dtype": "float32", "channels_last": False,
                                  "runtime_device": None})
    x = make_input(inputs, cpu)
    path = Path(directory) / f"{name}{backend.suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    backend.export(FlatOutputs(_export_ready(module_or_fn)), x, path, config)
    return Artefact(path, config.backend)


def _export_ready(target: Any) -> nn.Module:
    """A float32 CPU copy of the module in eval mode (or a module wrapping the function) for export."""
    if isinstance(target, nn.Module):
        return copy.deepcopy(target).float().cpu().eval()
    if not callable(target):
        raise TypeError(f"measure: expected an nn.Module or a callable, got {type(target).__name__}")
    return _FunctionModule(target)


class _FunctionModule(nn.Module):
    """Lets a plain function go through an exporter."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(x)


def export_artefact(module: nn.Module, example: torch.Tensor, path: str | Path, config: TimingConfig) -> Path:
    """Write the configured backend's artefact of ``module`` (already returning what the file should) at
    ``path``: what ``deploy`` ships and ``export_for_timing`` times."""
    backend = BACKENDS.get(config.backend)
    backend.require()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return backend.export(module, example, path, config)


# --- PyTorch ----------------------------------------------------------------------------------------------


class _TorchBackend(RuntimeBackend):
    """Times the PyTorch module itself (a copy in eval mode on the configured device, dtype and layout)."""

    def check(self, config: TimingConfig) -> str | None:
        if config.runtime_device is not None:
            return f"runtime_device: only the openvino backend has devices of its own, not {self.name!r}"
        if config.device == "cpu" and config.dtype == "float16":
            return "dtype: 'float16' needs device='cuda' (on CPU use 'bfloat16' with the eager backend)"
        return None

    def prepare(self, target: Any, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
        return self.timed(_prepare_module(target, config), x, config)

    def timed(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor, config: TimingConfig) -> TimedCall:
        raise NotImplementedError


class EagerBackend(_TorchBackend):
    """Plain PyTorch calls; CUDA timed with events (includes kernel launch overhead, as at deployment)."""

    name = "eager"

    def timed(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor, config: TimingConfig) -> TimedCall:
        return TimedCall(lambda: fn(x), cuda_event_clock() if config.device == "cuda" else host_clock)


class CudaGraphBackend(_TorchBackend):
    """Capture one call in a CUDA graph after warm-up on a side stream (as torch.cuda.graphs advises); replay it."""

    name = "cuda_graph"

    def check(self, config: TimingConfig) -> str | None:
        if config.device != "cuda":
            return f"backend: 'cuda_graph' needs device='cuda', got device={config.device!r}"
        return super().check(config)

    def timed(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor, config: TimingConfig) -> TimedCall:
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
        return TimedCall(graph.replay, cuda_event_clock(), keep=(graph, x, out))


BACKENDS.register("eager", EagerBackend())
BACKENDS.register("cuda_graph", CudaGraphBackend())


def _prepare_module(target: Any, config: TimingConfig) -> Callable[[torch.Tensor], Any]:
    """A copy of the module in eval mode on the configured device/dtype/layout; functions as they are."""
    if isinstance(target, Artefact):
        raise ConfigError(f"TimingConfig.backend: {target.path} is a {target.backend} artefact; only the "
                          f"{target.backend} backend times it, not {config.backend!r}")
    if not isinstance(target, nn.Module):
        if not callable(target):
            raise TypeError(f"measure: expected an nn.Module or a callable, got {type(target).__name__}")
        return target
    module = copy.deepcopy(target).eval().to(device=config.device, dtype=DTYPES[config.dtype])
    if config.channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def host_clock(call: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return time.perf_counter() - start


def cuda_event_clock() -> Clock:
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
