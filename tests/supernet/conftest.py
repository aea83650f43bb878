"""Supernet tests run PyTorch's own depthwise backward unless a test turns the compiled CPU kernel on (building
it takes ~45 s the first time on a machine; test_cpu_kernels.py does)."""

import pytest

from squeezenas.supernet import cpu_kernels


@pytest.fixture(autouse=True)
def _no_compiled_kernels(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "ENABLED", False)
