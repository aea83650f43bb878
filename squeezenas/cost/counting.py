"""MAC and parameter counting with the published convention: convolutions only, out_elements·k_h·k_w·C_in/groups."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from squeezenas.models.resolve import resolve_model
from squeezenas.utils.config import pair


@dataclass
class LayerCost:
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int]
    groups: int
    macs: int
    params: int


@dataclass
class CostReport:
    """Per-convolution rows, totals and a breakdown by part (stem, position i, last_conv, decoder)."""

    input_size: tuple[int, int]
    layers: list[LayerCost]
    macs: int
    params: int
    parts: dict[str, dict[str, int]] = field(default_factory=dict)  # part → {"macs", "params"}

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict:
        return {
            "input_size": list(self.input_size), "macs": self.macs, "gmacs": round(self.gmacs, 4),
            "params": self.params, "parts": self.parts,
            "layers": [{**vars(l), "in_shape": list(l.in_shape), "out_shape": list(l.out_shape),
                        "kernel": list(l.kernel)} for l in self.layers],
        }


_POSITION = re.compile(r"^encoder\.blocks\.(\d+)(\.|$)")


def part_of(name: str) -> str:
    """Which part of a SqueezeNAS network a module or parameter belongs to."""
    m = _POSITION.match(name)
    if m:
        return f"position.{m[1]}"
    for prefix in ("encoder.stem", "encoder.last_conv", "decoder"):
        if name == prefix or name.startswith(prefix + "."):
            return prefix.removeprefix("encoder.")
    return "other"


def conv_macs(conv: nn.Conv2d, out_shape: tuple[int, ...]) -> int:
    """out_elements (per image) · k_h · k_w · C_in / groups."""
    out_elems = 1
    for d in out_shape[1:]:
        out_elems *= d
    k_h, k_w = conv.kernel_size
    return out_elems * k_h * k_w * conv.in_channels // conv.groups


@torch.no_grad()
def count_convs(module: nn.Module, input_shape: tuple[int, ...], on_meta: bool = True) -> list[LayerCost]:
    """Trace one forward on zeros of ``input_shape`` (N, C, H, W) and count every convolution, in call order.

    With ``on_meta`` the module runs on a copy on the meta device, so counting a 20-GMAC network is instant
    and the weights are not touched.
    """
    net = copy.deepcopy(module).to("meta") if on_meta else module
    device = torch.device("meta") if on_meta else next(module.parameters()).device
    layers: list[LayerCost] = []
    hooks = []
    for name, mod in net.named_modules():
        if isinstance(mod, nn.Conv2d):
            def hook(m, inp, out, name=name):
                layers.append(LayerCost(
                    name=name, kind="conv", in_shape=tuple(inp[0].shape), out_shape=tuple(out.shape),
                    kernel=tuple(m.kernel_size), groups=m.groups, macs=conv_macs(m, tuple(out.shape)),
                    params=sum(p.numel() for p in m.parameters(recurse=False)),
                ))
            hooks.append(mod.register_forward_hook(hook))
    was_training = net.training
    net.eval()
    try:
        net(torch.zeros(*input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return layers


def count_costs(model: nn.Module, input_size: tuple[int, int], on_meta: bool = True) -> CostReport:
    """Count every convolution of one batch-1 forward at ``input_size`` (H, W) (``count_convs``), in total and
    by part of the network."""
    layers = count_convs(model, (1, 3, *input_size), on_meta)
    parts: dict[str, dict[str, int]] = {}
    for l in layers:
        parts.setdefault(part_of(l.name), {"macs": 0, "params": 0})["macs"] += l.macs
    for name, p in model.named_parameters():
        parts.setdefault(part_of(name), {"macs": 0, "params": 0})["params"] += p.numel()
    return CostReport(input_size=tuple(input_size), layers=layers, macs=sum(l.macs for l in layers),
                      params=sum(p.numel() for p in model.parameters()), parts=parts)


def network_report(model_spec: str, size: tuple[int, int], num_classes: int | None = None) -> dict:
    """MACs and parameters of a zoo name, genotype file or checkpoint at ``size``: totals, fixed parts, every
    searched position (its candidate, channels, stride, input size) and every convolution (``squeezenas info``)."""
    size = pair("size", tuple(size))
    r = resolve_model(model_spec, num_classes=num_classes)
    report = count_costs(r.model, tuple(size))
    positions = []
    if r.genotype is not None:
        macro = r.genotype.macro_arch
        sizes = macro.input_sizes(*size)
        for p, code, hw in zip(macro.positions(), r.genotype.ops, sizes):
            part = report.parts.get(f"position.{p.index}", {"macs": 0, "params": 0})
            positions.append({"index": p.index, "op": code, "c_in": p.c_in, "c_out": p.c_out, "stride": p.stride,
                              "input_hw": list(hw), "macs": part["macs"], "params": part["params"]})
    d = report.to_dict()
    return {"name": r.name, "macro": r.genotype.macro_name if r.genotype else None, "num_classes": r.num_classes,
            "input_size": list(size), "macs": report.macs, "gmacs": round(report.gmacs, 4), "params": report.params,
            "parts": {k: v for k, v in d["parts"].items() if not k.startswith("position.")},
            "positions": positions, "layers": d["layers"]}
