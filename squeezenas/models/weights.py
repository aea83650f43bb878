"""Loading weights strictly: our checkpoints (weights-only .pt, .safetensors) and the released SqueezeNAS ones."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from squeezenas.utils.io import safe_torch_load

# Released key prefix → ours. Blocks keep their inner indices (op.0/1/3/4/6/7).
_RELEASED_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^encoder\.conv1\.", "encoder.stem."),
    (r"^encoder\.residuals\.", "encoder.blocks."),
    (r"^decoder\._1x1_TL\.conv\.", "decoder.project.0."),
    (r"^decoder\._1x1_TL\.bn\.", "decoder.project.1."),
    (r"^decoder\._1x1_BL\.", "decoder.gate."),
    (r"^decoder\._1x1_TR\.", "decoder.high_classifier."),
    (r"^decoder\._1x1_BR\.", "decoder.low_classifier."),
    # depthwise-ASPP decoder of the original code (xlarge)
    (r"^decoder\._1x1_1_conv\.conv\.", "decoder.aspp.branch1x1.0."),
    (r"^decoder\._1x1_1_conv\.bn\.", "decoder.aspp.branch1x1.1."),
    (r"^decoder\._3x3_(\d)_conv\.conv\.", lambda m: f"decoder.aspp.atrous.{int(m[1]) - 1}.0."),
    (r"^decoder\._3x3_(\d)_conv\.bn\.", lambda m: f"decoder.aspp.atrous.{int(m[1]) - 1}.1."),
    (r"^decoder\._1x1_2_conv\.conv\.", "decoder.aspp.project.0."),
    (r"^decoder\._1x1_2_conv\.bn\.", "decoder.aspp.project.1."),
    (r"^lowlevel1x1\.", "decoder.low_proj."),
    (r"^logits2\.conv\.", "decoder.fuse.0."),
    (r"^logits2\.bn\.", "decoder.fuse.1."),
    (r"^logits3\.", "decoder.classifier."),
)


class CheckpointError(ValueError):
    """A checkpoint does not match the network it is loaded into."""


def is_released_state_dict(sd: dict) -> bool:
    return any(k.startswith(("encoder.conv1.", "encoder.residuals.")) for k in sd)


def convert_released_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an original SqueezeNAS checkpoint to ours (values untouched)."""
    out = {}
    for key, value in sd.items():
        if key.startswith("module."):  # saved from DataParallel
            key = key[len("module."):]
        new = key
        for pattern, repl in _RELEASED_RENAMES:
            new, n = re.subn(pattern, repl, key)
            if n:
                break
        out[new] = value
    return out


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict in our key names, metadata) from a .safetensors file, our checkpoint or a released .pth."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        try:
            with safe_open(str(path), "pt") as f:
                meta = dict(f.metadata() or {})
            return load_file(str(path)), meta
        except Exception as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    obj = safe_torch_load(path)
    meta: dict = {}
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        meta = {k: v for k, v in obj.items() if k not in ("model", "optimizer", "scheduler", "scaler")}
        obj = obj["model"]
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (or a checkpoint with a 'model' entry)")
    if is_released_state_dict(obj):
        obj = convert_released_state_dict(obj)
        meta.setdefault("format", "squeezenas-released")
    return obj, meta


def load_state_dict_strict(model: nn.Module, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Every tensor of ``sd`` must be used and every shape must match; errors name the key.

    BatchNorm's ``num_batches_tracked`` counters may be missing (not all exporters keep them).
    """
    own = model.state_dict()
    unexpected = [k for k in sd if k not in own]
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    if unexpected:
        raise CheckpointError(f"{source}: tensor {unexpected[0]!r} has no place in the network "
                              f"({len(unexpected)} unexpected key(s); is it for another architecture?)")
    if missing:
        raise CheckpointError(f"{source}: the network's {missing[0]!r} is missing from the checkpoint "
                              f"({len(missing)} missing key(s); is it for another architecture?)")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{source}: {k!r} has shape {tuple(v.shape)} in the checkpoint but "
                                  f"{tuple(own[k].shape)} in the network (another architecture or number of classes?)")
    model.load_state_dict(sd, strict=False)


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load ``path`` into ``model`` strictly; returns the checkpoint's metadata."""
    sd, meta = read_state_dict(path)
    load_state_dict_strict(model, sd, source=str(path))
    return meta
