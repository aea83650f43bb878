"""ONNX export of segmentation networks (input "input", output "logits") and a check against onnxruntime."""

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


def flatten_outputs(out: Any) -> tuple[torch.Tensor, ...]:
    """All tensors of a (nested) tensor/tuple/list/dict output, in order (dicts by insertion order)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, dict):
        return tuple(t for v in out.values() for t in flatten_outputs(v))
    if isinstance(out, (tuple, list)):
        return tuple(t for v in out for t in flatten_outputs(v))
    raise TypeError(f"model output contains a {type(out).__name__}, not a tensor")


class LogitsOnly(nn.Module):
    """Wraps a model so that it returns only its logits tensor (what a deployed network outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_logits(self.model(x))


class FlatOutputs(nn.Module):
    """Wraps a model so that it returns a flat tuple of all its output tensors (for timing any block)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return flatten_outputs(self.model(x))


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
    """Export a one-input module to a single self-contained ONNX file; the lower level of ``export_onnx``."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: {unknown_name_message('ONNX exporter', exporter, EXPORTERS)}")
    if example.dim() != 4:
        raise ValueError(f"input_shape: expected (N, C, H, W), got {tuple(example.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _eval_mode(module), torch.no_grad():
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


def verify_onnx(model: nn.Module, path: str | Path, input: torch.Tensor) -> float:
    """Max absolute difference between the model's logits and onnxruntime's first output on ``input``.

    Runs on onnxruntime's CPU provider in float32: the check that an export is faithful, not a benchmark.
    """
    return _compare(model, path, input)[0]


def _compare(model: nn.Module, path: str | Path, input: torch.Tensor) -> tuple[float, float]:
    """(max abs difference, max abs PyTorch logit) between PyTorch and onnxruntime on ``input``."""
    import onnxruntime as ort

    with _eval_mode(model), torch.inference_mode():
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


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then the module's own training flags back (each submodule's)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
