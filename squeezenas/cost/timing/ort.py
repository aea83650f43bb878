"""onnxruntime as a timing target: an exported model timed as it is (``OnnxModel``), the export that makes one,
and the session and bindings the onnxruntime backend runs it with (those of the bundle runner)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from squeezenas.cost.bundle.runner import bind, session_options
from squeezenas.cost.timing.config import TimingConfig, make_input
from squeezenas.cost.timing.onnx import FlatOutputs, export_module
from squeezenas.utils.config import ConfigError


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
    x = make_input(inputs, TimingConfig.from_dict({**config.to_dict(), "device": "cpu", "dtype": "float32",
                                                   "channels_last": False}))
    module = _onnx_ready(module_or_fn)
    with torch.no_grad():
        n_outputs = len(FlatOutputs(module)(x))
    path = export_module(FlatOutputs(module), Path(directory) / f"{name}.onnx", x,
                         output_names=[f"output{i}" for i in range(n_outputs)], exporter=config.onnx_exporter)
    return OnnxModel(path)


def ort_session(path: str | Path, config: TimingConfig, threads: int) -> ort.InferenceSession:
    """A session as a deployment configures it (``session_options``) on the configured device."""
    session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                   providers=_providers(config.device))
    if config.device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ConfigError("TimingConfig.device: onnxruntime could not start CUDAExecutionProvider "
                          f"(session providers: {session.get_providers()})")
    return session


def ort_binding(session: ort.InferenceSession, x: np.ndarray, device: str) -> tuple[Any, Any]:
    """The input bound on the device once, outputs left there (``bind``); the binding and the bound input."""
    return bind(session, x, device, torch.cuda.current_device() if device == "cuda" else 0)


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


def _providers(device: str) -> list[Any]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ConfigError("TimingConfig.device: 'cuda' with the onnxruntime backend needs onnxruntime-gpu "
                          f"(available providers: {ort.get_available_providers()})")
    return [("CUDAExecutionProvider", {"device_id": torch.cuda.current_device()}), "CPUExecutionProvider"]
