"""The one builder: (macro-architecture, genotype, classes) → a segmentation network."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from squeezenas.models.blocks import build_op
from squeezenas.models.heads import build_decoder, conv_bn_relu
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch


class Stem(nn.Sequential):
    """3×3 conv, stride 2 → BN → ReLU."""

    def __init__(self, c_out: int):
        super().__init__(nn.Conv2d(3, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """Stem, one module per searched position, optional last 1×1 conv. ``blocks`` may be any per-position
    modules with the right shapes (the supernet passes superblocks)."""

    def __init__(self, macro: MacroArch, blocks: list[nn.Module]):
        super().__init__()
        if len(blocks) != macro.num_positions:
            raise ValueError(f"{macro.name}: {macro.num_positions} positions but {len(blocks)} blocks")
        self.low_level_position = macro.low_level_position
        self.stem = Stem(macro.stem_channels)
        self.blocks = nn.ModuleList(blocks)
        self.last_conv = conv_bn_relu(macro.stages[-1].channels, macro.last_channels) if macro.last_channels else None

    def forward(self, x: torch.Tensor, per_block: Sequence[Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (high, low): the encoder output and the low-level feature for the decoder. ``per_block[i]``
        is handed to block i (the supernet's mixture weights or sampled candidate of that position)."""
        x = self.stem(x)
        low = x
        for i, block in enumerate(self.blocks):
            x = block(x) if per_block is None else block(x, per_block[i])
            if i == self.low_level_position:
                low = x
        if self.last_conv is not None:
            x = self.last_conv(x)
        return x, low

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of every searched position, in order."""
        x, feats = self.stem(x), []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class SegmentationNet(nn.Module):
    """Encoder + decoder; ``forward(x)`` returns logits (N, classes, H, W) at the input resolution."""

    def __init__(self, macro: MacroArch, blocks: list[nn.Module], num_classes: int):
        super().__init__()
        self.macro = macro
        self.num_classes = num_classes
        self.encoder = Encoder(macro, blocks)
        self.decoder = build_decoder(macro.decoder.name, macro.high_channels, macro.low_channels, num_classes,
                                     macro.decoder.channels)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        high, low = self.encoder(x)
        return self.decoder(high, low, x.shape[-2:])


class SqueezeNASNet(SegmentationNet):
    """A discrete network of the space: one candidate per position."""

    def __init__(self, genotype: Genotype, num_classes: int):
        macro = genotype.macro_arch
        blocks = [build_op(code, p.c_in, p.c_out, p.stride) for code, p in zip(genotype.ops, macro.positions())]
        super().__init__(macro, blocks, num_classes)
        self.genotype = genotype


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, BN weight 1 and bias 0, as in the released code."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_model(macro: str | MacroArch | Genotype, genotype: Genotype | list[str] | tuple[str, ...] | None = None,
                num_classes: int = 19) -> SqueezeNASNet:
    """Build the network for ``genotype`` on ``macro``.

    Accepts ``build_model("small", [codes...], 19)``, ``build_model(macro_arch, codes, 11)`` or
    ``build_model(genotype, num_classes=11)``.
    """
    if isinstance(macro, Genotype):
        if genotype is not None:
            raise TypeError("pass either a Genotype or (macro, codes), not both")
        geno = macro
    else:
        if genotype is None:
            raise TypeError("build_model needs a genotype (one candidate code per position)")
        if isinstance(genotype, Genotype):
            name = macro.name if isinstance(macro, MacroArch) else macro
            if genotype.macro_name != name:
                raise ValueError(f"genotype is for macro {genotype.macro_name!r}, not {name!r}")
            geno = genotype
        else:
            geno = Genotype(macro, tuple(genotype))
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    return SqueezeNASNet(geno, num_classes)
