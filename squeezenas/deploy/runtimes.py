"""Exporting a network to OpenVINO IR (.xml + .bin) or an ExecuTorch program (.pte, XNNPACK) for deployment, and
checking the file against PyTorch with that runtime: the artefacts the timing backends of ``cost.timing`` time."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from squeezenas.cost.timing.backends import export_artefact
from squeezenas.cost.timing.config import BACKENDS, TimingConfig
from squeezenas.cost.timing.onnx import eval_mode
from squeezenas.deploy.onnx import LogitsOnly, _example_input

# runtime → the file suffix it ships (the option of `squeezenas export` is --RUNTIME)
RUNTIME_SUFFIX = {"openvino": ".xml", "executorch": ".pte"}


def export_runtime(model: nn.Module, path: str | Path, backend: str, input_shape: Sequence[int]) -> Path:
    """Export ``model`` in eval mode, one input (N, C, H, W) of fixed shape, one output (the logits), to the
    runtime ``backend`` ("openvino", "executorch"), as its timing backend exports it; the runtime must be
    installed (an error names the extra otherwise)."""
    if backend not in RUNTIME_SUFFIX:
        raise ValueError(f"backend: expected one of {sorted(RUNTIME_SUFFIX)}, got {backend!r}")
    with eval_mode(model):
        return export_artefact(LogitsOnly(model), _example_input(model, input_shape).float().cpu(), path,
                               TimingConfig(backend=backend))


def verify_runtime(model: nn.Module, path: str | Path, backend: str, input: torch.Tensor) -> float:
    """Max absolute difference between the model's logits (PyTorch, float32, CPU) and the file's output in its
    runtime on ``input``: the check that an export is faithful, not a benchmark."""
    config = TimingConfig(backend=backend)
    with eval_mode(model):
        return BACKENDS.get(backend).parity(LogitsOnly(model), Path(path), input, config)
