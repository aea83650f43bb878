"""Training checkpoints: plain, weights-only loadable dicts that hold enough to rebuild, resume and colour a network.

A checkpoint (``last.pt`` / ``best.pt``) is a dict of plain values and tensors only (``torch.load(...,
weights_only=True)`` reads it):

- ``format`` "squeezenas-train", ``version`` 1
- ``model``: the network's state dict (CPU tensors, no ``module.`` prefix)
- ``genotype``: the genotype dict (networks of the search space) and/or ``model_name`` (zoo entries)
- ``num_classes``, ``classes`` (names), ``palette`` (RGB per class), ``dataset``
- ``optimizer``, ``scheduler``, ``scaler`` (None without CUDA AMP) state dicts
- ``epoch`` (epochs completed), ``step`` (optimizer steps taken), ``best_miou``, ``best_epoch``
- ``metrics``: the last validation's numbers, ``history``: one dict of numbers per epoch (the CSV log)
- ``config``: the run's TrainConfig as a plain dict

There is no RNG state: sampling order and augmentation are re-seeded from (seed, epoch, rank) at every epoch,
so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from squeezenas.models.weights import CheckpointError, read_state_dict
from squeezenas.utils.io import atomic_torch_save, safe_torch_load

FORMAT = "squeezenas-train"
VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (the old file stays whole until the new one is complete)."""
    atomic_torch_save({"format": FORMAT, "version": VERSION, **state}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint weights-only; errors name the file and what is wrong with it."""
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a squeezenas training checkpoint (no format {FORMAT!r})")
    for key in ("model", "optimizer", "scheduler", "epoch", "config"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: the checkpoint has no {key!r} entry")
    return ckpt


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tensors detached onto the CPU (so a checkpoint loads on any machine)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def classifier_key(state: dict[str, torch.Tensor], num_classes: int) -> str | None:
    """A tensor whose first dimension is the number of classes (a classifier weight), to name in errors."""
    keys = [k for k, v in state.items() if k.endswith("weight") and v.ndim == 4 and v.shape[0] == num_classes]
    return keys[-1] if keys else None


def check_num_classes(model: nn.Module, model_classes: int, expected: int, source: str, hint: str = "") -> None:
    """A network made for ``model_classes`` cannot score a dataset of ``expected`` classes; name the tensor."""
    if model_classes == expected:
        return
    key = classifier_key(model.state_dict(), model_classes)
    where = f" ({key!r} has shape {tuple(model.state_dict()[key].shape)})" if key else ""
    raise CheckpointError(f"{source} holds a {model_classes}-class network{where} but the dataset has "
                          f"{expected} classes{hint}")


@dataclass
class InitReport:
    """What ``init_from`` did with each tensor of the network and of the checkpoint."""

    source: str
    loaded: list[str] = field(default_factory=list)  # same name and shape: copied
    reinitialised: list[str] = field(default_factory=list)  # same name, other shape (e.g. classifiers): kept fresh
    missing: list[str] = field(default_factory=list)  # in the network, not in the checkpoint: kept fresh
    unused: list[str] = field(default_factory=list)  # in the checkpoint, no place in the network

    def summary(self) -> str:
        lines = [f"init-from {self.source}: loaded {len(self.loaded)} tensors, re-initialised "
                 f"{len(self.reinitialised)} (shape differs), {len(self.missing)} not in the checkpoint, "
                 f"{len(self.unused)} checkpoint tensors unused"]
        for title, keys in (("re-initialised", self.reinitialised), ("not in the checkpoint", self.missing),
                            ("unused", self.unused)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                lines.append(f"  {title}: {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "loaded": self.loaded, "reinitialised": self.reinitialised,
                "missing": self.missing, "unused": self.unused}


def init_from_checkpoint(model: nn.Module, path: str | Path) -> InitReport:
    """Copy every tensor of ``path`` whose name and shape match into ``model``; the rest keeps its fresh init.

    ``path`` is a checkpoint of ours or a released SqueezeNAS one (keys converted). With another number of
    classes the classifier convolutions differ in shape and stay freshly initialised. BatchNorm's
    ``num_batches_tracked`` counters are not reported. A checkpoint sharing no tensor with the network is an
    error (it is for another architecture).
    """
    sd, _ = read_state_dict(path)
    own = model.state_dict()
    report = InitReport(str(path))
    to_load = {}
    for key, value in own.items():
        if key not in sd:
            if not key.endswith("num_batches_tracked"):
                report.missing.append(key)
        elif tuple(sd[key].shape) != tuple(value.shape):
            report.reinitialised.append(f"{key} {tuple(sd[key].shape)}→{tuple(value.shape)}")
        else:
            to_load[key] = sd[key]
            if not key.endswith("num_batches_tracked"):
                report.loaded.append(key)
    report.unused = [k for k in sd if k not in own]
    if not report.loaded:
        raise CheckpointError(f"{path}: no tensor matches the network by name and shape "
                              f"(first checkpoint key {next(iter(sd), None)!r}); is it for another architecture?")
    model.load_state_dict(to_load, strict=False)
    return report
