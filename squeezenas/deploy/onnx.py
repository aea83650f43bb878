"""Exporting a network to ONNX for deployment (input "input", output "logits") and checking the file against
PyTorch with onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from squeezenas.cost.timing.onnx import export_module, eval_mode

LOGITS_NAME = "logits"


def as_logits(out: Any) -> torch.Tensor:
    """The logits tensor of a model output: a tensor, a dict's "out" entry, or a tuple's first element."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        if "out" not in out:
            raise ValueError(f"model returned a dict without an 'out' entry (keys: {sorted(out)})")
        return as_logits(out["out"])
    if isinstance(out, (tuple, list)) and out:
        return as_logits(out[0])
    raise TypeError(f"cannot take logits from a model output of type {type(out).__name__}")


class LogitsOnly(nn.Module):
    """Wraps a model so that it returns only its logits tensor (what a deployed network outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_logits(self.model(x))


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int],
    *,
    dynamic: bool = False,
    opset: int | None = None,
    exporter: str = "dynamo",
    check_dynamic: bool = True,
) -> Path:
    """Export ``model`` in eval mode with one input "input" (N, C, H, W) and one output "logits".

    Models returning a dict (torchvision style, ``{"out": ...}``) or a tuple are wrapped to return the logits
    tensor. ``dynamic=True`` makes batch, height and width dynamic; ``opset=None`` takes the exporter's default.
    A dynamic export is then run at a larger batch and size against PyTorch (``check_dynamic``), because both
    exporters silently fix size-dependent parameters at their example value: LR-ASPP's pooling window is
    clamped to feature maps under 49 px, so below a 784 px input it follows the input size and an export
    traced there is wrong at other sizes. Export such networks from an example of at least 784×784.
    """
    path = export_module(LogitsOnly(model), path, _example_input(model, input_shape), output_names=[LOGITS_NAME],
                         dynamic=dynamic, opset=opset, exporter=exporter)
    if dynamic and check_dynamic:
        _check_dynamic(model, path, tuple(int(s) for s in input_shape))
    return path


def _check_dynamic(model: nn.Module, path: Path, input_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless the dynamic export matches PyTorch at one more batch and a larger H×W."""
    n, c, h, w = input_shape
    # Multiples of 32 keep every stride of a segmentation network integral.
    shape = (n + 1, c, h + 32 * max(1, h // 128), w + 32 * max(1, w // 128))
    hint = ("the exporter fixed a size-dependent parameter at its example value (e.g. LR-ASPP's pooling window "
            "below a 784 px input); export from a larger example, or with dynamic=False")
    try:
        diff, scale = _compare(model, path, torch.rand(shape))
    except Exception as e:  # onnxruntime rejects the shapes, or the output shape differs
        raise ValueError(f"{path}: dynamic export fails at input {shape} ({type(e).__name__}); {hint}") from e
    if diff > 1e-4 * max(1.0, scale):
        raise ValueError(f"{path}: dynamic export differs from PyTorch at input {shape} by {diff:.3g}; {hint}")


def verify_onnx(model: nn.Module, path: str | Path, input: torch.Tensor) -> float:
    """Max absolute difference between the model's logits and onnxruntime's first output on ``input``.

    Runs on onnxruntime's CPU provider in float32: the check that an export is faithful, not a benchmark.
    """
    return _compare(model, path, input)[0]


def _compare(model: nn.Module, path: str | Path, input: torch.Tensor) -> tuple[float, float]:
    """(max abs difference, max abs PyTorch logit) between PyTorch and onnxruntime on ``input``."""
    import onnxruntime as ort

    with eval_mode(model), torch.inference_mode():
        expected = as_logits(model(input.to(_device_of(model)))).float().cpu()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures surface as exceptions; no duplicate log lines
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: input.float().cpu().numpy()})[0])
    if got.shape != expected.shape:
        raise ValueError(f"{path}: onnxruntime output shape {tuple(got.shape)} != PyTorch {tuple(expected.shape)}")
    return (got - expected).abs().max().item(), expected.abs().max().item()


def _example_input(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4:
        raise ValueError(f"input_shape: expected (N, C, H, W), got {shape}")
    return torch.rand(shape, device=_device_of(model))


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
