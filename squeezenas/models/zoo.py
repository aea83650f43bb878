"""The model zoo: the six published SqueezeNAS networks and the MobileNetV3 LR-ASPP baseline, by name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from squeezenas.models.builder import build_model
from squeezenas.models.weights import load_weights
from squeezenas.space.genotype import Genotype
from squeezenas.utils.registry import Registry


@dataclass(frozen=True)
class ZooEntry:
    """A named network and what is known about it."""

    name: str
    builder: Callable[[int], nn.Module]  # num_classes → network
    genotype: Genotype | None = None  # None for networks outside the search space
    num_classes: int = 19
    dataset: str = "cityscapes"
    published_gmacs: float | None = None  # at 1024×2048
    published_miou: float | None = None  # Cityscapes val class mIoU (%) of the released weights
    published_latency_ms: float | None = None
    latency_device: str | None = None  # where published_latency_ms was measured
    released_weights: str | None = None  # file name of the released checkpoint, if one exists
    notes: str = ""
    extra: dict = field(default_factory=dict)


ZOO: Registry[ZooEntry] = Registry("model")


def _published() -> dict:
    return json.loads(resources.files("squeezenas.models").joinpath("published_nets.json").read_text())


def _register_published() -> None:
    for name, rec in _published().items():
        if name.startswith("_"):
            continue
        geno = Genotype(rec["macro"], tuple(rec["genotype"]))
        ZOO.register(name, ZooEntry(
            name=name,
            builder=lambda n, g=geno: build_model(g, num_classes=n),
            genotype=geno,
            published_gmacs=rec.get("published_gmacs"),
            published_miou=rec.get("cityscapes_val_class_miou"),
            published_latency_ms=rec.get("xavier_latency_ms"),
            latency_device="NVIDIA Xavier (30 W), batch 1",
            released_weights=rec.get("weights"),
        ))


class TorchvisionLRASPP(nn.Module):
    """torchvision's LR-ASPP on a MobileNetV3-Large or -Small backbone (dilated last stage, as in the MobileNetV3
    paper's segmentation networks), returning a logits tensor instead of a dict."""

    def __init__(self, num_classes: int, backbone: str = "large"):
        super().__init__()
        from torchvision.models import mobilenet_v3_large, mobilenet_v3_small
        from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

        build = {"large": mobilenet_v3_large, "small": mobilenet_v3_small}[backbone]
        # the same construction as torchvision's lraspp_mobilenet_v3_large, for either backbone
        self.net = _lraspp_mobilenetv3(build(weights=None, dilated=True), num_classes)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


_register_published()
for _size in ("large", "small"):
    ZOO.register(f"mobilenetv3_{_size}_lraspp", ZooEntry(
        name=f"mobilenetv3_{_size}_lraspp",
        builder=lambda num_classes, size=_size: TorchvisionLRASPP(num_classes, size),
        notes=f"Architecture-transfer baseline: LR-ASPP on torchvision's MobileNetV3-{_size.capitalize()}, "
              "trained from scratch.",
    ))


def list_models() -> list[str]:
    return sorted(ZOO.names())


def get_model_entry(name: str) -> ZooEntry:
    return ZOO.get(name)


def get_model(name: str, *, weights: str | Path | None = None, num_classes: int = 19) -> nn.Module:
    """Build zoo network ``name``; ``weights`` is a checkpoint of ours or a released SqueezeNAS one (strict)."""
    entry = ZOO.get(name)
    model = entry.builder(num_classes)
    if weights is not None:
        load_weights(model, weights)
    return model
