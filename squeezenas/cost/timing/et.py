"""ExecuTorch as a runtime backend (``pip install 'squeezenas[executorch]'``): the program (.pte) lowered to the
XNNPACK delegate, run by ExecuTorch's Python runtime with ``threads`` threads in XNNPACK's pool."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import torch
from torch import nn

from squeezenas.cost.bundle.runner import executorch_threads
from squeezenas.cost.timing.backends import RuntimeBackend, TimedCall, host_clock
from squeezenas.cost.timing.config import BACKENDS, TimingConfig
from squeezenas.utils.config import ConfigError


class ExecuTorchBackend(RuntimeBackend):
    """ExecuTorch's documented flow: ``torch.export`` → ``to_edge_transform_and_lower`` with the
    ``XnnpackPartitioner`` (every op of our networks is delegated) → ``to_executorch`` → .pte; run with
    ``executorch.runtime``: ``Runtime.get().load_program(...).load_method("forward").execute((x,))``."""

    name = "executorch"
    suffix = ".pte"
    module = "executorch.runtime"
    extra = "executorch"
    # XNNPACK computes in NHWC and the delegate converts at its boundaries: once per network, but at both ends
    # of a part timed alone; ops are timed after an adapter, as for onnxruntime.
    context = "adapter"

    def check(self, config: TimingConfig) -> str | None:
        if config.device != "cpu":
            return f"device: the executorch backend (XNNPACK) runs on the CPU, got device={config.device!r}"
        return self.float32_in_own_layout(config)  # XNNPACK computes in NHWC inside the delegate

    def torch_threads(self, threads: int) -> int:
        # the Python bindings hand the outputs back as torch tensors, inside the timed call; with torch's pool at 2
        # threads as well, its worker competes with XNNPACK's: a call's 90th percentile was 1.6x its median
        # instead of 1.05x, and a network's fastest call moved 1.45x between rounds instead of 1.27x
        # (bench/results/lut/torch_threads/). A deployment runs no torch pool beside the runtime.
        return 1

    def require(self) -> ModuleType | None:
        # executorch's import registers enums that torch's pytree logs about, and warns that its bindings are
        # experimental: neither is about the measurement
        with _quiet_torch_log(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return super().require()

    def version(self) -> str | None:
        self.require()
        from executorch import version

        return version.__version__

    def export(self, module: nn.Module, example: torch.Tensor, path: Path, config: TimingConfig) -> Path:
        self.require()
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        with torch.no_grad():
            program = torch.export.export(module.eval(), (example,))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the serializer's use of importlib.resources
            lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
        path.write_bytes(lowered.buffer)
        return path

    def method(self, path: Path, threads: int) -> tuple[Any, Any]:
        """The program and its "forward" method (which needs the program alive), loaded from the file's bytes,
        with XNNPACK's pool at ``threads`` threads."""
        runtime = self.require()
        with _quiet_stderr():  # the C++ runtime logs CPU probing and pool resets to stderr
            executorch_threads(threads)  # the bundle runner's
            try:
                program = runtime.Runtime.get().load_program(Path(path).read_bytes())
                return program, program.load_method("forward")
            except RuntimeError as e:
                raise ValueError(f"{path}: ExecuTorch cannot load it ({e})") from e

    def session(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
        program, method = self.method(path, threads)
        x_cpu = x.detach().float().cpu().contiguous()
        expected = method.metadata.input_tensor_meta(0).sizes()
        if tuple(expected) != tuple(x_cpu.shape):
            raise ConfigError(f"measure: the ExecuTorch program takes input {tuple(expected)}, "
                              f"the timed input is {tuple(x_cpu.shape)}")
        inputs = (x_cpu,)
        return TimedCall(lambda: method.execute(inputs), host_clock, keep=(program, method, x_cpu))

    def run(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int = 1) -> list[torch.Tensor]:
        program, method = self.method(path, threads)
        outputs = [t.clone() for t in method.execute((x.float().cpu().contiguous(),))]
        del method, program  # the method first: it uses the program
        return outputs

    def input_shape(self, path: Path) -> tuple[Any, ...]:
        """The program's one input shape; ValueError naming the file otherwise."""
        program, method = self.method(path, 1)
        meta = method.metadata
        if meta.num_inputs() != 1:
            raise ValueError(f"{path}: expected one input, got {meta.num_inputs()}")
        return tuple(meta.input_tensor_meta(0).sizes())


@contextlib.contextmanager
def _quiet_torch_log() -> Iterator[None]:
    logger = logging.getLogger("torch.utils._pytree")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the duration (C++ log lines; Python exceptions still propagate)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a descriptor
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


BACKENDS.register("executorch", ExecuTorchBackend())
