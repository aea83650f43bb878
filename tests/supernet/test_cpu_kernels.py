"""The compiled depthwise weight gradient equals PyTorch's (it is built on first use, ~45 s, then cached)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from squeezenas.space import CANDIDATES
from squeezenas.space.macro import PositionSpec
from squeezenas.supernet import SuperBlock, cpu_kernels

pytestmark = pytest.mark.slow


@pytest.fixture
def kernels(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "ENABLED", True)
    if not cpu_kernels.available():
        pytest.skip("CPU kernel could not be built here (compiler or ninja missing)")


@pytest.mark.parametrize("k,stride,dil,size", [(5, 1, 1, (9, 11)), (5, 2, 1, (9, 11)), (5, 2, 1, (8, 8)),
                                               (7, 1, 2, (10, 7))])
def test_depthwise_gradients(kernels, k, stride, dil, size):
    x = torch.randn(3, 12, *size).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(12, 1, k, k, requires_grad=True)
    pad = dil * (k - 1) // 2
    y = cpu_kernels.depthwise_conv2d(x, w, stride, pad, dil)
    assert y.grad_fn is not None and "DepthwiseConv" in type(y.grad_fn).__name__
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, w), g)
    rx, rw = torch.autograd.grad(F.conv2d(x, w, None, stride, pad, dil, 12), (x, w), g)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-4)


def test_superblock_with_kernel(kernels):
    torch.manual_seed(0)
    ref = SuperBlock(PositionSpec(0, 8, 16, 2, 0), CANDIDATES, fused=False).to(memory_format=torch.channels_last)
    fused = copy.deepcopy(ref)
    fused.fused = True
    x = torch.randn(4, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    w = torch.softmax(torch.randn(4, len(CANDIDATES)), -1)
    for block in (ref, fused):
        block(x, w).square().sum().backward()
    for (name, a), (_, b) in zip(ref.named_parameters(), fused.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-4, msg=name)
