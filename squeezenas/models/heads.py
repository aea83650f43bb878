"""Decoders of the released networks: LR-ASPP (small, large) and depthwise ASPP with low-level fusion (xlarge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The released networks pool the stride-16 features with a 49×49 window, stride (16, 20). At a 1024×2048 input
# (a 64×128 map) that gives a 1×4 map of local contexts; 49 is the feature size of the ~769×769 training crops
# (MobileNetV3's LR-ASPP), where the same pooling is global. We keep the window and clamp it to the map, so the
# released behaviour is exact at 1024×2048 and smaller inputs (crops, CamVid's 360×480) get global pooling.
LRASPP_POOL_KERNEL = (49, 49)
LRASPP_POOL_STRIDE = (16, 20)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class LRASPP(nn.Module):
    """a = ReLU(BN(1×1(high))); b = sigmoid(1×1(avgpool(high))) resized to a; logits = cls(up×2(a·b)) + cls(low)."""

    def __init__(self, high_channels: int, low_channels: int, num_classes: int, channels: int = 128):
        super().__init__()
        self.project = conv_bn_relu(high_channels, channels)
        self.gate = nn.Conv2d(high_channels, channels, 1)
        self.high_classifier = nn.Conv2d(channels, num_classes, 1)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)

    def forward(self, high: torch.Tensor, low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        a = self.project(high)
        h, w = high.shape[-2:]
        kernel = (min(LRASPP_POOL_KERNEL[0], h), min(LRASPP_POOL_KERNEL[1], w))
        b = F.avg_pool2d(high, kernel, stride=LRASPP_POOL_STRIDE, count_include_pad=False)
        b = torch.sigmoid(self.gate(b))
        b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
        # ×2 in the released code; resizing to the low-level map is the same at even sizes and also fits odd ones.
        x = F.interpolate(a * b, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.high_classifier(x) + self.low_classifier(low)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class DepthwiseASPP(nn.Module):
    """ASPP whose 3×3 atrous branches are grouped (groups = channels), plus image pooling without a conv."""

    def __init__(self, in_channels: int, channels: int = 160, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        self.branch1x1 = conv_bn_relu(in_channels, channels)
        self.atrous = nn.ModuleList(
            conv_bn_relu(in_channels, channels, 3, padding=r, dilation=r, groups=channels) for r in rates
        )
        self.project = conv_bn_relu(channels * (1 + len(rates)) + in_channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True).expand_as(x)  # global average, nearest-upsampled back
        return self.project(torch.cat([self.branch1x1(x), *(b(x) for b in self.atrous), pooled], dim=1))


class ASPPDecoder(nn.Module):
    """Depthwise ASPP at stride 16 → ×4 to the low-level map → concat with 1×1(low) → 3×3 depthwise → classes."""

    def __init__(self, high_channels: int, low_channels: int, num_classes: int, channels: int = 160):
        super().__init__()
        self.aspp = DepthwiseASPP(high_channels, channels)
        self.low_proj = nn.Conv2d(low_channels, low_channels, 1)
        fused = channels + low_channels
        self.fuse = conv_bn_relu(fused, fused, 3, padding=1, groups=fused)
        self.classifier = nn.Conv2d(fused, num_classes, 1)

    def forward(self, high: torch.Tensor, low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(self.aspp(high), size=low.shape[-2:], mode="bilinear", align_corners=True)
        x = self.classifier(self.fuse(torch.cat([x, self.low_proj(low)], dim=1)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


DECODER_CLASSES: dict[str, type[nn.Module]] = {"lr_aspp": LRASPP, "aspp": ASPPDecoder}


def build_decoder(name: str, high_channels: int, low_channels: int, num_classes: int, channels: int) -> nn.Module:
    try:
        cls = DECODER_CLASSES[name]
    except KeyError:
        raise KeyError(f"unknown decoder {name!r} (known: {', '.join(DECODER_CLASSES)})") from None
    return cls(high_channels, low_channels, num_classes, channels)
