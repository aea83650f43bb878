"""What a latency table times: the parts of a space at a resolution (each candidate at each distinct input
shape, stem, last conv, decoder), the modules that time them, and each one's canonical key."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from squeezenas.cost.tables import producer_groups
from squeezenas.cost.timing.config import BACKENDS, TimingConfig
from squeezenas.models.blocks import build_op
from squeezenas.models.builder import Stem, init_weights
from squeezenas.models.heads import build_decoder, conv_bn_relu
from squeezenas.space.macro import MacroArch
from squeezenas.space.ops import parse_op

IDENTITY_KEY = "identity"  # cells where ``skip`` is the identity: 0 ms, nothing is timed


@dataclass(frozen=True)
class Part:
    """One timed module: a candidate at a position, or a fixed part; ``key`` names everything that changes its cost."""

    key: str
    kind: str  # "op", "stem", "last_conv" or "decoder"
    input_shape: tuple[int, ...]  # (N, C, H, W) of the timed input (the decoder's is its packed input)
    op: str = ""  # candidate code ("op" parts)
    c_in: int = 0
    c_out: int = 0
    stride: int = 1
    decoder: dict = field(default_factory=dict, hash=False, compare=False)  # decoder parts: name, shapes, classes
    adapter: str = ""  # key of the adapter timed before this op ("adapter" context), whose time is subtracted
    after: int = 1  # the adapter's groups: 1, the depthwise adapter; g > 1, a 1×1 conv of g groups ("layout")

    def build(self, channels_last: bool = False) -> nn.Module:
        """The module to time, initialised as in a network of the space."""
        if self.kind == "op":
            module = build_op(self.op, self.c_in, self.c_out, self.stride)
            if self.adapter:
                module = nn.Sequential(adapter_conv(self.c_in, self.after), module)
        elif self.kind == "adapter":
            module = adapter_conv(self.c_in, self.after)
        elif self.kind == "stem":
            module = Stem(self.c_out)
        elif self.kind == "last_conv":
            module = conv_bn_relu(self.c_in, self.c_out)
        elif self.kind == "decoder":
            d = self.decoder
            head = build_decoder(d["name"], d["high"][0], d["low"][0], d["num_classes"], d["channels"])
            module = PackedDecoder(head, tuple(d["high"]), tuple(d["low"]), tuple(d["out_size"]), self.input_shape[0],
                                   channels_last)
        else:
            raise ValueError(f"unknown part kind {self.kind!r}")
        init_weights(module)
        return module.eval()


def adapter_conv(channels: int, groups: int = 1) -> nn.Module:
    """The cheapest convolution (1×1 depthwise) that hands an op its input the way a preceding block would; with
    ``groups`` > 1, a 1×1 convolution of that many groups, as a block ending in a grouped convolution would.

    ONNX Runtime's CPU provider runs convolutions in a blocked layout (NCHWc); a whole network converts to it
    once, after the stem, and back once, at the end, and fuses each residual add into the block's last
    convolution. A block exported alone instead pays a layout conversion of its input and of its output and an
    unfused add: about a third of its time at 128×256, and the same for every candidate at a position. Timing
    ``adapter → op`` and subtracting ``adapter`` alone gives the op's cost in the network's context; what is
    left, output conversions of different shapes, telescopes along the network to a constant (the
    calibration's overhead).

    It runs grouped, not depthwise, convolutions in the plain layout: a block ending in one hands the next block
    its output in the plain layout, and that block pays the conversion (and an unfused residual add). The
    "layout" context also times every op after a grouped adapter; the difference of the two contexts is the
    table's pair term (``CostTable.pairs``).
    """
    return nn.Conv2d(channels, channels, 1, groups=channels if groups == 1 else groups, bias=False)


CONTEXTS = ("alone", "adapter", "layout")
ADAPTER_CONTEXTS = ("adapter", "layout")  # ops timed after an adapter whose time is subtracted


def default_context(config: TimingConfig) -> str:
    """The backend's own (``RuntimeBackend.context``): "adapter" for openvino and executorch, whose layout
    conversions at a part's boundaries do not happen inside a network, "layout" for onnxruntime, whose also happen
    inside one after a grouped convolution; "alone" for PyTorch backends."""
    return BACKENDS.get(config.backend).context


class PackedDecoder(nn.Module):
    """A decoder whose two inputs (high, low) arrive packed in one flat tensor (N, 1, 1, L).

    The one timer (and an exported ONNX model) takes one input; a constant second input would be folded away
    by onnxruntime. Unpacking is two views in PyTorch (free) and two Slice+Reshape in ONNX (a copy of the
    features, ~1 MB at 360×480: well under 1% of the network). ``low`` comes first; ``high`` starts at a
    64-element boundary so both stay aligned. With ``channels_last`` the features are packed as NHWC and
    viewed back as channels-last NCHW tensors, as the network would hand them over.
    """

    def __init__(self, decoder: nn.Module, high: tuple[int, int, int], low: tuple[int, int, int],
                 out_size: tuple[int, int], batch: int = 1, channels_last: bool = False):
        super().__init__()
        self.decoder = decoder
        self.high, self.low, self.out_size, self.batch = high, low, out_size, batch
        self.channels_last = channels_last
        self.n_low, self.offset = math.prod(low), packed_offset(low)

    def _unpack(self, flat: torch.Tensor, start: int, chw: tuple[int, int, int]) -> torch.Tensor:
        c, h, w = chw
        part = flat[:, start:start + c * h * w]
        if self.channels_last:
            return part.reshape(self.batch, h, w, c).permute(0, 3, 1, 2)
        return part.reshape(self.batch, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(self.batch, -1)
        low = self._unpack(flat, 0, self.low)
        high = self._unpack(flat, self.offset, self.high)
        return self.decoder(high, low, self.out_size)


def packed_offset(low: Sequence[int]) -> int:
    """Where ``high`` starts in a packed decoder input: after ``low``, rounded up to 64 elements (256 bytes)."""
    return -(-math.prod(low) // 64) * 64


def _suffix(config: TimingConfig) -> str:
    layout = "nhwc" if config.channels_last else "nchw"
    return f"{config.dtype}|{layout}|{config.backend}"


def _shape(s: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in s)


def output_sizes(macro: MacroArch, height: int, width: int) -> list[tuple[int, int]]:
    """Spatial size of every position's output for a network input of height × width."""
    sizes = macro.input_sizes(height, width)
    return [(math.ceil(h / 2), math.ceil(w / 2)) if p.stride == 2 else (h, w)
            for p, (h, w) in zip(macro.positions(), sizes)]


@dataclass
class LutPlan:
    """What a table of (macro, size, config) times: a key per cell, a key per fixed part, the distinct parts."""

    macro: MacroArch
    input_size: tuple[int, int]
    num_classes: int
    config: TimingConfig
    cells: list[list[str]]  # [position][candidate] → key (IDENTITY_KEY for the identity skip)
    fixed: dict[str, str]  # part name → key
    parts: dict[str, Part]  # key → part, in first-use order (stem, positions, last_conv, decoder, adapters)
    context: str = "alone"  # "alone": ops timed by themselves; "adapter": after an adapter, its time subtracted
    # "layout" context: [position][candidate] → key of the op timed after a grouped adapter, per groups g > 1
    # (the first position's block before is the stem: its keys are the plain cells', a pair term of 0)
    after: dict[int, list[list[str]]] = field(default_factory=dict)


def plan_lut(macro: MacroArch, input_size: tuple[int, int], config: TimingConfig, num_classes: int = 19,
             context: str | None = None) -> LutPlan:
    """The cells, fixed parts and distinct parts of a latency table; nothing is built or timed.

    ``context`` ("alone", "adapter" or "layout", default ``default_context(config)``) says how candidate ops are
    timed; see ``adapter_conv``. Fixed parts are always timed alone: their cost is the same in every network.
    """
    context = context or default_context(config)
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    h, w = (int(v) for v in input_size)
    n, sfx = config.batch, _suffix(config)
    parts: dict[str, Part] = {}
    adapters: dict[str, Part] = {}

    def add(part: Part) -> str:
        parts.setdefault(part.key, part)
        return part.key

    fixed: dict[str, str] = {}
    stem_in = (n, 3, h, w)
    fixed["stem"] = add(Part(f"stem|cin=3|cout={macro.stem_channels}|s=2|in={_shape(stem_in)}|{sfx}", "stem",
                             stem_in, c_in=3, c_out=macro.stem_channels, stride=2))
    def op_row(p, shape: tuple[int, ...], groups: int) -> list[str]:
        row = []
        for code in macro.candidates:
            if parse_op(code).is_skip and p.is_identity_skip:
                row.append(IDENTITY_KEY)
                continue
            adapter, after = "", ""
            if context in ADAPTER_CONTEXTS:
                name = "dw1x1" if groups == 1 else f"pw1x1g{groups}"
                adapter = f"adapter={name}|c={p.c_in}|in={_shape(shape)}|{sfx}"
                adapters.setdefault(adapter, Part(adapter, "adapter", shape, c_in=p.c_in, c_out=p.c_in,
                                                  after=groups))
                after = "" if groups == 1 else f"|after=g{groups}"
            key = f"op={code}|cin={p.c_in}|cout={p.c_out}|s={p.stride}|in={_shape(shape)}{after}|{sfx}"
            row.append(add(Part(key, "op", shape, op=code, c_in=p.c_in, c_out=p.c_out, stride=p.stride,
                                adapter=adapter, after=groups)))
        return row

    handed_on = {producer_groups(code, p.stride) for p in macro.positions() for code in macro.candidates}
    grouped = sorted(g for g in handed_on if g > 1) if context == "layout" else []
    cells, after = [], {g: [] for g in grouped}
    for i, (p, (ph, pw)) in enumerate(zip(macro.positions(), macro.input_sizes(h, w))):
        shape = (n, p.c_in, ph, pw)
        cells.append(op_row(p, shape, 1))
        for g in grouped:
            after[g].append(cells[-1] if i == 0 else op_row(p, shape, g))
    outs = output_sizes(macro, h, w)
    high_hw, low_hw = outs[-1], outs[macro.low_level_position]
    if macro.last_channels:
        c_last = macro.stages[-1].channels
        last_in = (n, c_last, *high_hw)
        fixed["last_conv"] = add(Part(f"last_conv|cin={c_last}|cout={macro.last_channels}|s=1|in={_shape(last_in)}|{sfx}",
                                      "last_conv", last_in, c_in=c_last, c_out=macro.last_channels))
    high, low = (macro.high_channels, *high_hw), (macro.low_channels, *low_hw)
    dec = macro.decoder
    packed = (n, 1, 1, packed_offset(low) + math.prod(high))
    key = (f"decoder={dec.name}|ch={dec.channels}|high={_shape(high)}|low={_shape(low)}|out={h}x{w}"
           f"|classes={num_classes}|n={n}|{sfx}")
    fixed["decoder"] = add(Part(key, "decoder", packed, decoder={
        "name": dec.name, "channels": dec.channels, "high": list(high), "low": list(low), "out_size": [h, w],
        "num_classes": num_classes}))
    parts.update(adapters)
    return LutPlan(macro, (h, w), num_classes, config, cells, fixed, parts, context, after)
