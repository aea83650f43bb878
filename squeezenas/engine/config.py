"""The train and eval commands' configs: one frozen dataclass each, loadable from YAML, overridable from the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from squeezenas.utils.config import ConfigError, check_keys, from_dict, load_mapping, to_dict

C = TypeVar("C")
SCHEDULES = ("step", "poly")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; written to ``out/config.yaml`` and into every checkpoint."""

    # what to train, on what
    model: str = ""  # zoo name | genotype .json/.yaml | checkpoint of ours (its weights are the start)
    dataset: str = "camvid"  # a registered dataset: camvid, cityscapes, folder, synthetic
    data_root: str | None = None  # the dataset's folder (not needed for synthetic)
    data_options: dict[str, Any] = field(default_factory=dict)  # extra dataset arguments (synthetic: num_samples, size)
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
    workers: int = 4  # DataLoader worker processes per training process (0: load in the main process)
    max_steps_per_epoch: int | None = None  # cap the steps of an epoch (smoke runs); None: the whole split
    # validation
    val_split: str = "val"
    val_every: int = 1  # validate every N epochs; the last epoch is always validated
    val_size: tuple[int, int] | None = None  # run the network at (H, W) during validation; scored at full resolution
    # hardware
    device: str = "auto"  # "auto" (cuda if available), "cpu" or "cuda"; under torchrun each process takes its GPU
    amp: bool = False  # mixed precision: float16 autocast + grad scaling on CUDA, bfloat16 autocast on CPU
    channels_last: bool = True  # NHWC weights and inputs (on CUDA only)
    sync_bn: bool = True  # SyncBatchNorm across processes (CUDA only; on CPU rank 0's BN statistics are broadcast)
    # run management
    seed: int = 0  # initialisation, sampling order and augmentation derive from (seed, epoch, rank)
    resume: bool = False  # continue from out/last.pt
    init_from: str | None = None  # checkpoint whose matching tensors initialise the network (fine-tuning)
    log_every: int = 10  # TensorBoard loss/lr every N steps
    progress: bool = True  # tqdm progress bars
    tensorboard: bool = True

    def __post_init__(self) -> None:
        check_train_config(self)


@dataclass(frozen=True)
class EvalConfig:
    """An evaluation: a trained network scored on one split at full resolution, batch 1."""

    checkpoint: str = ""  # checkpoint of ours (or, with ``model``, any weights file including released ones)
    model: str | None = None  # zoo name or genotype when ``checkpoint`` does not say which network it holds
    dataset: str | None = None  # None: the dataset the checkpoint was trained on
    data_root: str | None = None  # None: the training run's data root (same dataset)
    data_options: dict[str, Any] = field(default_factory=dict)
    split: str = "val"
    size: tuple[int, int] | None = None  # run the network at (H, W); labels are still scored at full resolution
    device: str = "auto"
    amp: bool = False
    channels_last: bool = True  # on CUDA only
    workers: int = 2
    max_images: int | None = None  # score only the first N images (quick checks)
    report: str | None = None  # write the JSON report here
    progress: bool = True

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _positive("workers", self.workers, allow_zero=True)
        if self.max_images is not None:
            _positive("max_images", self.max_images)
        if self.size is not None:
            _size("size", self.size)


def check_train_config(cfg: TrainConfig) -> None:
    """Value checks that need no files; the messages name the field."""
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    for name in ("epochs", "batch_size", "val_every", "log_every"):
        _positive(name, getattr(cfg, name))
    _positive("workers", cfg.workers, allow_zero=True)
    for name in ("max_steps_per_epoch", "num_classes"):
        if getattr(cfg, name) is not None:
            _positive(name, getattr(cfg, name))
    if cfg.lr <= 0 or cfg.weight_decay < 0 or not 0 <= cfg.momentum < 1:
        raise ConfigError(f"need lr > 0, weight_decay >= 0 and 0 <= momentum < 1 "
                          f"(got {cfg.lr}, {cfg.weight_decay}, {cfg.momentum})")
    _size("crop", cfg.crop)
    if cfg.val_size is not None:
        _size("val_size", cfg.val_size)
    if not 0 < cfg.scale[0] <= cfg.scale[1]:
        raise ConfigError(f"scale must be (low, high) with 0 < low <= high, got {cfg.scale}")
    if not isinstance(cfg.data_options, dict):
        raise ConfigError(f"data_options must be a mapping, got {cfg.data_options!r}")


def _positive(name: str, value: int, allow_zero: bool = False) -> None:
    if value < (0 if allow_zero else 1):
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def _size(name: str, value: tuple[int, int]) -> None:
    if len(value) != 2 or min(value) < 1:
        raise ConfigError(f"{name} must be (H, W) of two positive integers, got {value}")


def resolve_config(cls: type[C], overrides: dict[str, Any], path: str | Path | None = None) -> C:
    """``cls`` from its defaults ← the YAML/JSON file ``path`` ← ``overrides`` (command-line values, later wins).

    Unknown keys are ConfigErrors naming the file (or "arguments") and the closest known key.
    """
    file_data = load_mapping(path) if path is not None else {}
    check_keys(cls, file_data, where=str(path))
    return from_dict(cls, {**file_data, **overrides}, where=str(path) if path is not None else "config")


def resolve_train_config(overrides: dict[str, Any], path: str | Path | None = None) -> TrainConfig:
    """The config of a run: defaults ← ``path`` ← ``overrides``; with ``resume`` the saved run config is the base.

    On resume the saved ``out/config.yaml`` supplies every field not given again, so
    ``squeezenas train --out DIR --resume`` alone continues the run (and ``--epochs`` may be raised).
    """
    file_data = load_mapping(path) if path is not None else {}
    check_keys(TrainConfig, file_data, where=str(path))
    merged = {**file_data, **overrides}
    if not merged.get("resume"):
        return from_dict(TrainConfig, merged, where=str(path) if path is not None else "config")
    if not merged.get("out"):
        raise ConfigError("resume needs the run folder: --out DIR")
    saved_path = Path(merged["out"]) / "config.yaml"
    if not saved_path.is_file():
        raise FileNotFoundError(f"nothing to resume in {merged['out']}: {saved_path} not found")
    saved = load_mapping(saved_path)
    check_keys(TrainConfig, saved, where=str(saved_path))
    return from_dict(TrainConfig, {**saved, **merged}, where=f"{saved_path} with the new arguments")


def config_to_yaml(cfg: Any) -> str:
    """The resolved config as YAML (what is written to ``out/config.yaml``)."""
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)

