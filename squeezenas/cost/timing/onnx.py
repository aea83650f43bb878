"""The low-level ONNX export every caller shares: one input "input", named outputs, one self-contained file.

The timer exports a part with all its outputs (``FlatOutputs``), a bundle exports parts and networks the same
way, and ``deploy`` exports a network's logits; all three go through ``export_module``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from squeezenas.utils.registry import unknown_name_message

# Exporter choice (torch 2.14): the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, built on
# ``torch.export``) is the default. It is the supported path; the TorchScript exporter (``dynamo=False``) emits a
# DeprecationWarning saying it will be removed. Both export every op our networks use (convs, BN, depthwise and
# dilated convs, bilinear interpolate with align_corners True/False, avg_pool2d with count_include_pad=False,
# sigmoid, concat, F.pad) and match PyTorch to ~1e-7 in onnxruntime. Only the dynamo exporter makes our real
# networks dynamic in H/W: LR-ASPP's pooling kernel depends on the input size (min(49, h)), which the TorchScript
# exporter refuses to export symbolically. The dynamo exporter also gives a cleaner graph (BN folded, shape
# arithmetic resolved at export time), but takes seconds per export (a whole network: 5-20 s static) against
# ~0.1 s for TorchScript, so ``exporter="torchscript"`` stays available for callers that export hundreds of tiny
# static blocks (the onnxruntime timing backend, see ``TimingConfig.onnx_exporter``).
EXPORTERS = ("dynamo", "torchscript")
INPUT_NAME = "input"


def flatten_outputs(out: Any) -> tuple[torch.Tensor, ...]:
    """All tensors of a (nested) tensor/tuple/list/dict output, in order (dicts by insertion order)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, dict):
        return tuple(t for v in out.values() for t in flatten_outputs(v))
    if isinstance(out, (tuple, list)):
        return tuple(t for v in out for t in flatten_outputs(v))
    raise TypeError(f"model output contains a {type(out).__name__}, not a tensor")


class FlatOutputs(nn.Module):
    """Wraps a model so that it returns a flat tuple of all its output tensors (for timing any block)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return flatten_outputs(self.model(x))


def export_module(
    module: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    *,
    output_names: Sequence[str],
    dynamic: bool = False,
    opset: int | None = None,
    exporter: str = "dynamo",
) -> Path:
    """Export a one-input module in eval mode to a single self-contained ONNX file.

    ``dynamic=True`` makes batch, height and width dynamic; ``opset=None`` takes the exporter's default.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: {unknown_name_message('ONNX exporter', exporter, EXPORTERS)}")
    if example.dim() != 4:
        raise ValueError(f"input_shape: expected (N, C, H, W), got {tuple(example.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with eval_mode(module), torch.no_grad():
        if exporter == "dynamo":
            _export_dynamo(module, path, example, list(output_names), dynamic, opset)
        else:
            _export_torchscript(module, path, example, list(output_names), dynamic, opset)
    return path


def _export_dynamo(module: nn.Module, path: Path, example: torch.Tensor, output_names: list[str],
                   dynamic: bool, opset: int | None) -> None:
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        dynamic_shapes = ({0: dim("batch"), 2: dim("height"), 3: dim("width")},)
    # external_data=False: one self-contained file (our networks are far below ONNX's 2 GB protobuf limit).
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints progress lines
        torch.onnx.export(module, (example,), str(path), dynamo=True, verbose=False, input_names=[INPUT_NAME],
                          output_names=output_names, opset_version=opset, dynamic_shapes=dynamic_shapes,
                          external_data=False)


def _export_torchscript(module: nn.Module, path: Path, example: torch.Tensor, output_names: list[str],
                        dynamic: bool, opset: int | None) -> None:
    dynamic_axes = None
    if dynamic:
        axes = {0: "batch", 2: "height", 3: "width"}
        dynamic_axes = {INPUT_NAME: axes, **{name: axes for name in output_names}}
    with warnings.catch_warnings():
        # The deprecation notice, and constant-folding notes about Slice that do not affect the result.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=[INPUT_NAME],
                              output_names=output_names, opset_version=opset, dynamic_axes=dynamic_axes,
                              do_constant_folding=True)
        except torch.onnx.errors.SymbolicValueError as e:
            if not dynamic:
                raise
            raise RuntimeError("the TorchScript exporter cannot make this model's shapes dynamic (an op whose "
                               "parameters depend on the input size, e.g. LR-ASPP's pooling kernel); "
                               "use exporter='dynamo'") from e


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then the module's own training flags back (each submodule's)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
