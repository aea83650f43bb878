"""ONNX Runtime as a runtime backend: the ONNX export, and the session and bindings it is timed with (those of
the bundle runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenas.cost.bundle.runner import bind, session_options
from squeezenas.cost.timing.backends import RuntimeBackend, TimedCall, host_clock
from squeezenas.cost.timing.config import BACKENDS, TimingConfig
from squeezenas.cost.timing.onnx import export_module, flatten_outputs
from squeezenas.utils.config import ConfigError

class OnnxRuntimeBackend(RuntimeBackend):
    """Sequential execution, ``threads`` intra-op threads and all graph optimisations (BN folding, fusions), as a
    deployment configures a session; input and outputs bound once. onnxruntime synchronises its own CUDA stream,
    so a host clock is right."""

    name = "onnxruntime"
    suffix = ".onnx"
    module = "onnxruntime"
    extra = "onnxruntime"  # a dependency of squeezenas itself; named for symmetry
    # ORT's CPU provider runs convolutions in a blocked layout (NCHWc) and converts once per network, but at both
    # ends of a part timed alone: ops are timed after an adapter whose time is subtracted (lut.plan.adapter_conv).
    # Grouped (not depthwise) convolutions and a stride-2 skip's slices and concat stay in the plain layout, with
    # conversions around them inside a network too: ops are also timed after a grouped adapter, the difference kept
    # as a pair term (CostTable.pairs, producer_groups).
    context = "layout"

    def check(self, config: TimingConfig) -> str | None:
        return self.float32_in_own_layout(config)  # on the CPU or CUDA (onnxruntime-gpu)

    def version(self) -> str | None:
        import onnxruntime

        return onnxruntime.__version__

    def export(self, module: nn.Module, example: torch.Tensor, path: Path, config: TimingConfig) -> Path:
        with torch.no_grad():
            n_outputs = len(flatten_outputs(module(example)))
        return export_module(module, path, example, output_names=[f"output{i}" for i in range(n_outputs)],
                             exporter=config.onnx_exporter)

    def session(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
        x_cpu = x.detach().float().cpu().contiguous()
        session = ort_session(path, config, threads)
        expected = session.get_inputs()[0].shape
        if all(isinstance(d, int) for d in expected) and tuple(expected) != tuple(x_cpu.shape):
            raise ConfigError(f"measure: the ONNX model takes input {tuple(expected)}, "
                              f"the timed input is {tuple(x_cpu.shape)}")
        binding, bound_input = ort_binding(session, x_cpu.numpy(), config.device)
        return TimedCall(lambda: session.run_with_iobinding(binding), host_clock, keep=(session, binding, bound_input))

    def run(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int = 1) -> list[torch.Tensor]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4  # failures surface as exceptions; no duplicate log lines
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outputs = session.run(None, {session.get_inputs()[0].name: x.float().cpu().numpy()})
        return [torch.from_numpy(np.asarray(o)) for o in outputs]

    def input_shape(self, path: Path) -> tuple[Any, ...]:
        """The file's one input shape (None for dynamic dimensions); ValueError naming the file otherwise."""
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable or invalid models
            raise ValueError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: {e})") from e
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{path}: expected one input, got {[(i.name, i.shape) for i in inputs]}")
        return tuple(d if isinstance(d, int) else None for d in inputs[0].shape)


BACKENDS.register("onnxruntime", OnnxRuntimeBackend())


def ort_session(path: str | Path, config: TimingConfig, threads: int) -> Any:
    """A session as a deployment configures it (``session_options``) on the configured device."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                   providers=_providers(config.device))
    if config.device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ConfigError("TimingConfig.device: onnxruntime could not start CUDAExecutionProvider "
                          f"(session providers: {session.get_providers()})")
    return session


def ort_binding(session: Any, x: np.ndarray, device: str) -> tuple[Any, Any]:
    """The input bound on the device once, outputs left there (``bind``); the binding and the bound input."""
    return bind(session, x, device, torch.cuda.current_device() if device == "cuda" else 0)


def _providers(device: str) -> list[Any]:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ConfigError("TimingConfig.device: 'cuda' with the onnxruntime backend needs onnxruntime-gpu "
                          f"(available providers: {ort.get_available_providers()})")
    return [("CUDAExecutionProvider", {"device_id": torch.cuda.current_device()}), "CPUExecutionProvider"]
