"""The demo's config: one frozen dataclass (every field an option of ``squeezenas demo``) and per-dataset presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from squeezenas.engine.config import DataFields, RunFields, check_fields
from squeezenas.utils.config import ConfigError, positive


@dataclass(frozen=True)
class DemoConfig(DataFields, RunFields):
    """One end-to-end run; the defaults fit a 2-core laptop CPU in a few minutes on the synthetic data."""

    out: str = "runs/demo"  # everything goes here: lut.json, search/, train/, report.md, pictures
    device: str = "cpu"  # "cpu" or "cuda": the device searched for AND measured on
    dataset: str = "synthetic"  # camvid, cityscapes, folder or synthetic (built in, no files needed)
    space: str = "small"  # macro-architecture searched: small, large, xlarge or a YAML/JSON file
    size: tuple[int, int] = (128, 256)  # deployment resolution: the latency table and the final benchmark
    crop: tuple[int, int] = (64, 128)  # training crop for the search and the retraining
    batch_size: int = 8
    threads: int | None = 1  # CPU threads for measuring latency: one gives the steadiest figures on a shared or
    #                          virtual machine (docs/LATENCY.md); None: all of torch's
    lut_min_run_time: float = 0.05  # seconds of timing per lookup-table entry
    lut_retries: int = 1  # re-measure a part once if other processes took > 25% of the CPUs meanwhile
    lut_rounds: int = 3  # every part and check network timed in 3 round-robin rounds (the fastest kept, for min)
    lut_statistic: str = "min"  # per-call figure of the table and the check: min is the steadiest on a busy laptop
    check_samples: int = 12  # networks measured end to end to check (and calibrate) the table
    target_fraction: float = 0.5  # latency target: this far from the cheapest network (0) to the mean one (1)
    search_epochs: int = 6
    search_steps: int | None = 20  # steps per search epoch (None: the whole split)
    warmup_epochs: int | None = None  # search epochs training weights only (θ frozen); None: the search's default
    samples: int = 40  # architectures drawn from the learned distribution and scored
    val_limit: int | None = 24  # validation images used to score each sampled path
    finalists: int = 5  # the most accurate samples within the target re-scored on the whole split and timed
    train_epochs: int = 10
    train_steps: int | None = 25  # steps per retraining epoch (None: the whole split)
    workers: int = 0  # DataLoader workers (0 keeps a tiny run cheap)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be cpu or cuda (the device searched for and measured on), got {self.device!r}")
        positive("finalists", self.finalists, allow_zero=True)
        for name in ("batch_size", "lut_rounds", "check_samples", "search_epochs", "search_steps", "samples",
                     "val_limit", "train_epochs", "train_steps", "threads"):
            positive(name, getattr(self, name))
        positive("lut_retries", self.lut_retries, allow_zero=True)
        positive("warmup_epochs", self.warmup_epochs, allow_zero=True)
        if self.warmup_epochs is not None and self.warmup_epochs >= self.search_epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than search_epochs "
                              f"({self.search_epochs})")
        if self.check_samples < 3:
            raise ConfigError(f"check_samples must be at least 3 (a held-out calibration), got {self.check_samples}")
        if not 0 < self.target_fraction <= 1:
            raise ConfigError(f"target_fraction must lie in (0, 1], got {self.target_fraction}")
        if self.lut_min_run_time <= 0:
            raise ConfigError(f"lut_min_run_time must be positive, got {self.lut_min_run_time}")


# Larger settings for real data; picked with ``--dataset`` unless overridden.
PRESETS: dict[str, dict[str, Any]] = {
    "synthetic": {},
    "camvid": {"size": (360, 480), "crop": (176, 240), "search_epochs": 10, "search_steps": 45, "samples": 60,
               "val_limit": 50, "train_epochs": 30, "train_steps": None, "workers": 1, "check_samples": 10},
    "cityscapes": {"size": (512, 1024), "crop": (384, 768), "search_epochs": 10, "search_steps": None,
                   "samples": 100, "val_limit": 100, "train_epochs": 50, "train_steps": None, "workers": 4},
    "folder": {"size": (256, 512), "crop": (128, 256), "search_epochs": 10, "search_steps": None,
               "train_epochs": 30, "train_steps": None, "workers": 2},
}


def demo_config(**overrides: Any) -> DemoConfig:
    """Defaults, then the dataset's preset, then explicit overrides (None values are ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    preset = PRESETS.get(overrides.get("dataset", "synthetic"), {})
    return DemoConfig(**{**preset, **overrides})
