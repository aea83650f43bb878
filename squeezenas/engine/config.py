"""The train and eval commands' configs (one frozen dataclass each, loadable from YAML, overridable from the CLI),
and the pieces every command's config shares: data and run fields, and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from squeezenas.utils.config import ConfigError, load_mapping, pair, positive, resolve_config, to_dict

SCHEDULES = ("step", "poly")
DEVICES = ("auto", "cpu", "cuda")  # and "cuda:N"


# --- pieces every command's config shares: fields written once, checked once ---------------------------------


@dataclass(frozen=True)
class DataFields:
    """Which data a command reads."""

    dataset: str = "camvid"  # a registered dataset: camvid, cityscapes, folder, synthetic
    data_root: str | None = None  # the dataset's folder (not needed for synthetic)
    data_options: dict[str, Any] = field(default_factory=dict)  # extra dataset arguments (synthetic: num_samples, size)


@dataclass(frozen=True)
class RunFields:
    """Where and how a command runs."""

    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda" or "cuda:N"; under torchrun each process takes its GPU
    progress: bool = True  # tqdm progress bars


def check_fields(cfg: Any) -> None:
    """The checks of every shared or common field ``cfg`` has; the messages name the field."""
    names = {f.name for f in fields(cfg)}
    if "device" in names and cfg.device not in DEVICES and not _cuda_index(cfg.device):
        raise ConfigError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {cfg.device!r}")
    if "data_options" in names and not isinstance(cfg.data_options, dict):
        raise ConfigError(f"data_options must be a mapping, got {cfg.data_options!r}")
    if "workers" in names:
        positive("workers", cfg.workers, allow_zero=True)
    for name in ("crop", "size", "val_size"):
        if name in names and getattr(cfg, name) is not None:
            pair(name, getattr(cfg, name))
    if "scale" in names and not 0 < cfg.scale[0] <= cfg.scale[1]:
        raise ConfigError(f"scale must be (low, high) with 0 < low <= high, got {cfg.scale}")


def _cuda_index(device: str) -> bool:
    return device.startswith("cuda:") and device[5:].isdigit()


@dataclass(frozen=True)
class TrainConfig(DataFields, RunFields):
    """Everything a training run depends on; written to ``out/config.yaml`` and into every checkpoint.
    ``dataset``, ``data_root``, ``data_options``: ``DataFields``; ``device``, ``progress``: ``RunFields``."""

    # what to train, on what
    model: str = ""  # zoo name | genotype .json/.yaml | checkpoint of ours (its weights are the start)
    num_classes: int | None = None  # None: the dataset's; must equal it when given
    out: str = ""  # run folder: config.yaml, last.pt, best.pt, log.csv, train.log, tb/
    # schedule (paper recipe: SGD momentum 0.9, lr 0.05, wd 1e-5, lr ÷10 at 50% and 75% of the epochs)
    epochs: int = 100
    batch_size: int = 8  # per process; the global batch is batch_size × world size
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-5
    schedule: str = "step"  # "step" (÷10 at 50% and 75% of the epochs) or "poly" ((1 - t/T)^poly_power per step)
    poly_power: float = 0.9
    # data pipeline
    crop: tuple[int, int] = (768, 768)  # training crop (H, W) after random scaling; padded with ignore if larger
    scale: tuple[float, float] = (0.5, 2.0)  # random rescaling range before the crop
    color_jitter: float = 0.0  # random brightness, contrast and saturation factors in [1 - j, 1 + j] (0: none)
    class_weights: str | None = None  # "auto": the loss weighs classes by median frequency in the training
    #                                   split (rare classes count more; written to out/class_weights.json);
    #                                   "sqrt": by its square root (milder)
    workers: int = 4  # DataLoader worker processes per training process (0: load in the main process)
    max_steps_per_epoch: int | None = None  # cap the steps of an epoch (smoke runs); None: the whole split
    # validation
    val_split: str = "val"
    val_every: int = 1  # validate every N epochs; the last epoch is always validated
    val_size: tuple[int, int] | None = None  # run the network at (H, W) during validation; scored at full resolution
    # hardware
    amp: bool = False  # mixed precision: float16 autocast + grad scaling on CUDA, bfloat16 autocast on CPU
    channels_last: bool = True  # NHWC weights and inputs (on CUDA only)
    sync_bn: bool = True  # SyncBatchNorm across processes (CUDA only; on CPU rank 0's BN statistics are broadcast)
    # run management
    seed: int = 0  # initialisation, sampling order and augmentation derive from (seed, epoch, rank)
    resume: bool = False  # continue from out/last.pt
    init_from: str | None = None  # checkpoint whose matching tensors initialise the network (fine-tuning)
    log_every: int = 10  # TensorBoard loss/lr every N steps
    tensorboard: bool = True  # TensorBoard logs in out/tb

    def __post_init__(self) -> None:
        check_train_config(self)


@dataclass(frozen=True)
class EvalConfig(DataFields, RunFields):
    """An evaluation: a trained network scored on one split at full resolution, batch 1."""

    checkpoint: str = ""  # checkpoint of ours (or, with ``model``, any weights file including released ones)
    model: str | None = None  # zoo name or genotype when ``checkpoint`` does not say which network it holds
    dataset: str | None = None  # None: the dataset the checkpoint was trained on
    data_root: str | None = None  # None: the training run's data root (same dataset)
    split: str = "val"  # val, test, or part of a split (SPLIT:only=GLOB, SPLIT:without=GLOB)
    size: tuple[int, int] | None = None  # run the network at (H, W); labels are still scored at full resolution
    amp: bool = False  # mixed precision (float16 on CUDA, bfloat16 on CPU)
    channels_last: bool = True  # on CUDA only
    workers: int = 2  # DataLoader worker processes
    max_images: int | None = None  # score only N images, evenly strided over the split (quick checks)
    class_map: str | None = None  # score a network trained on other classes through a map of its classes onto
    #                               the data's, e.g. "cityscapes-camvid" (the released networks on CamVid)
    report: str | None = None  # write the JSON report here

    def __post_init__(self) -> None:
        check_fields(self)
        positive("max_images", self.max_images)


def check_train_config(cfg: TrainConfig) -> None:
    """Value checks that need no files; the messages name the field."""
    check_fields(cfg)
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    if cfg.class_weights not in (None, "auto", "sqrt"):
        raise ConfigError(f"class_weights must be 'auto', 'sqrt' or unset, got {cfg.class_weights!r}")
    if not 0 <= cfg.color_jitter < 1:
        raise ConfigError(f"color_jitter must lie in [0, 1), got {cfg.color_jitter}")
    for name in ("epochs", "batch_size", "val_every", "log_every", "max_steps_per_epoch", "num_classes"):
        positive(name, getattr(cfg, name))
    if cfg.lr <= 0 or cfg.weight_decay < 0 or not 0 <= cfg.momentum < 1:
        raise ConfigError(f"need lr > 0, weight_decay >= 0 and 0 <= momentum < 1 "
                          f"(got {cfg.lr}, {cfg.weight_decay}, {cfg.momentum})")


def resolve_train_config(overrides: dict[str, Any], path: str | Path | None = None) -> TrainConfig:
    """The config of a run: defaults ← (with ``resume``) the run's saved ``out/config.yaml`` ← ``path`` ←
    ``overrides``, so ``squeezenas train --out DIR --resume`` alone continues a run (``--epochs`` may be raised)."""
    resume = overrides.get("resume") or (path is not None and load_mapping(path).get("resume"))
    if not resume:
        return resolve_config(TrainConfig, overrides, path)
    out = overrides.get("out") or (load_mapping(path).get("out") if path is not None else None)
    if not out:
        raise ConfigError("resume needs the run folder: --out DIR")
    return resolve_config(TrainConfig, overrides, path, resume_from=Path(out) / "config.yaml")


def config_to_yaml(cfg: Any) -> str:
    """The resolved config as YAML (what is written to ``out/config.yaml``)."""
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)

