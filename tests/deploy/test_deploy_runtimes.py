"""OpenVINO and ExecuTorch exports: every op our networks use round-trips through the runtime (max abs diff
asserted); skipped cleanly where the runtime is not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from squeezenas.deploy import RUNTIME_SUFFIX, export_runtime, verify_runtime
from test_deploy_onnx import OpsNet

RUNTIMES = [pytest.param(r, marks=pytest.mark.skipif(importlib.util.find_spec(r) is None,
                                                    reason=f"needs squeezenas[{r}]")) for r in RUNTIME_SUFFIX]


@pytest.mark.parametrize("backend", RUNTIMES)
def test_export_matches_pytorch(backend: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = OpsNet().eval()
    path = export_runtime(net, tmp_path / f"net{RUNTIME_SUFFIX[backend]}", backend, (1, 3, 32, 48))
    assert path.is_file() and path.suffix == RUNTIME_SUFFIX[backend]
    assert verify_runtime(net, path, backend, torch.rand(1, 3, 32, 48)) < 1e-4
    assert not net.training


def test_unknown_runtime(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        export_runtime(OpsNet(), tmp_path / "x.bin", "tflite", (1, 3, 8, 8))
