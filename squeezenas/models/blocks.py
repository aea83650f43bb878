"""Candidate blocks: the inverted residual, the shape-changing forms of ``skip``, and the one op builder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from squeezenas.space.ops import OpSpec, parse_op


class InvertedResidual(nn.Module):
    """1×1 (groups g) → BN → ReLU → k×k depthwise (stride s, dilation d) → BN → ReLU → 1×1 (groups g) → BN.

    ``op`` keeps the indices of the released networks (0/1 conv-BN, 3/4 depthwise conv-BN, 6/7 conv-BN) so
    their checkpoints load by renaming only the prefix. A residual is added when s = 1 and C_in = C_out.
    """

    def __init__(self, spec: OpSpec, c_in: int, c_out: int, stride: int):
        super().__init__()
        hidden, g = spec.hidden(c_in), spec.groups
        if c_in % g or hidden % g or c_out % g:
            raise ValueError(f"{spec.code}: channels in/hidden/out {c_in}/{hidden}/{c_out} not divisible by groups {g}")
        pad = spec.dilation * (spec.kernel - 1) // 2
        self.op = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, groups=g, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, spec.kernel, stride, pad, dilation=spec.dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c_out, 1, groups=g, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op(x)
        return x + out if self.residual else out


class Identity(nn.Module):
    """``skip`` where stride is 1 and channels are kept: the network simply skips the position."""

    residual = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ChannelSkip(nn.Module):
    """``skip`` with stride 1 but a channel change: ReLU → 1×1 conv → BN."""

    residual = False

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """``skip`` with stride 2: ReLU, two 1×1 stride-2 convs (the second on the input shifted by one pixel in
    both axes, zero-padded back to size so odd sizes work), each followed by BN, outputs concatenated."""

    residual = False

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"skip with stride 2 needs an even number of output channels, got {c_out}")
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn_a = nn.BatchNorm2d(c_out // 2)
        self.bn_b = nn.BatchNorm2d(c_out // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return torch.cat([self.bn_a(self.conv_a(x)), self.bn_b(self.conv_b(shifted))], dim=1)


def build_op(op: str | OpSpec, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The module for candidate ``op`` at a position with (C_in, C_out, stride); used by every network and the supernet."""
    spec = parse_op(op) if isinstance(op, str) else op
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    if not spec.is_skip:
        return InvertedResidual(spec, c_in, c_out, stride)
    if stride == 2:
        return FactorizedReduce(c_in, c_out)
    return Identity() if c_in == c_out else ChannelSkip(c_in, c_out)
