"""ONNX export: every op our networks use round-trips through onnxruntime, statically and with dynamic shapes."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from squeezenas.cost.timing.onnx import flatten_outputs
from squeezenas.deploy import EXPORTERS, as_logits, export_onnx, verify_onnx


class OpsNet(nn.Module):
    """A tiny segmentation-like net holding every op the search space and decoders use."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, padding=2, dilation=2, groups=8, bias=False),
                                nn.BatchNorm2d(8), nn.ReLU())
        self.gate = nn.Conv2d(8, 8, 1)
        self.fuse = nn.Conv2d(16, 8, 1, groups=2, bias=False)
        self.head = nn.Conv2d(8, classes, 1)
        for bn in (self.stem[1], self.dw[1]):  # non-trivial BN statistics so folding is exercised
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        low = self.stem(x)
        high = self.dw(low)
        pooled = F.avg_pool2d(high, kernel_size=5, stride=(2, 3), padding=2, count_include_pad=False)
        gate = torch.sigmoid(self.gate(pooled))
        gate = F.interpolate(gate, size=high.shape[-2:], mode="bilinear", align_corners=False)
        shifted = F.pad(low[:, :, 1:, 1:], (0, 1, 0, 1))  # factorized-reduce style shift
        y = self.fuse(torch.cat([high * gate, shifted], dim=1))
        out = F.interpolate(self.head(y), scale_factor=2, mode="bilinear", align_corners=True)
        return {"out": out, "aux": y}


# The dynamo exporter takes seconds per export (mostly first-call set-up): marked slow, still run by default.
EXPORTER_PARAMS = [pytest.param(e, marks=pytest.mark.slow) if e == "dynamo" else e for e in EXPORTERS]


@pytest.fixture(scope="module")
def net() -> OpsNet:
    torch.manual_seed(0)
    return OpsNet().eval()


@pytest.mark.parametrize("exporter", EXPORTER_PARAMS)
def test_static_export_matches_pytorch(net: OpsNet, tmp_path: Path, exporter: str) -> None:
    path = export_onnx(net, tmp_path / "net.onnx", (1, 3, 32, 48), exporter=exporter)
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # one self-contained file
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["logits"]
    assert verify_onnx(net, path, torch.rand(1, 3, 32, 48)) < 1e-4


@pytest.mark.parametrize("exporter", EXPORTER_PARAMS)
def test_dynamic_export_runs_at_two_sizes(net: OpsNet, tmp_path: Path, exporter: str) -> None:
    path = export_onnx(net, tmp_path / "net.onnx", (1, 3, 32, 48), dynamic=True, exporter=exporter)
    for shape in [(1, 3, 32, 48), (2, 3, 40, 64)]:
        assert verify_onnx(net, path, torch.rand(shape)) < 1e-4


def test_export_keeps_training_flag_and_rejects_bad_arguments(tmp_path: Path) -> None:
    model = OpsNet().train()
    export_onnx(model, tmp_path / "a.onnx", (1, 3, 16, 16), exporter="torchscript")
    assert model.training and model.stem[1].training
    with pytest.raises(ValueError, match="exporter.*'torchscript'"):
        export_onnx(model, tmp_path / "b.onnx", (1, 3, 16, 16), exporter="torchscrpt")
    with pytest.raises(ValueError, match="input_shape"):
        export_onnx(model, tmp_path / "c.onnx", (3, 16, 16))


def test_output_helpers() -> None:
    a, b = torch.zeros(1), torch.ones(2)
    assert as_logits({"out": a, "aux": b}) is a
    assert as_logits((a, b)) is a
    assert flatten_outputs({"out": a, "aux": (b, a)}) == (a, b, a)
    with pytest.raises(ValueError, match="'out'"):
        as_logits({"logits": a})



class SizeDependentPool(nn.Module):
    """LR-ASPP-style pooling: the window is clamped to the map, so below 6 px it follows the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = (min(6, x.shape[2]), min(6, x.shape[3]))
        pooled = F.avg_pool2d(x, kernel, stride=(2, 3), count_include_pad=False)
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("exporter", EXPORTER_PARAMS)
def test_dynamic_export_of_size_dependent_window_is_refused(tmp_path: Path, exporter: str) -> None:
    # The window is 4×5 at the example size: both exporters fix it there (TorchScript loudly, dynamo silently).
    with pytest.raises((RuntimeError, ValueError), match="dynamo|larger example"):
        export_onnx(SizeDependentPool(), tmp_path / "p.onnx", (1, 2, 4, 5), dynamic=True, exporter=exporter)
    # From an example where the window is already at its cap the export holds at every larger size.
    path = export_onnx(SizeDependentPool(), tmp_path / "q.onnx", (1, 2, 8, 8), dynamic=True, exporter=exporter)
    assert verify_onnx(SizeDependentPool(), path, torch.rand(2, 2, 12, 16)) < 1e-5
