"""The configs of the search step and of the sample step: one frozen dataclass each, loadable from YAML,
overridable from the command line (the options are generated from the fields and their comments)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from squeezenas.engine.config import DataFields, RunFields, check_fields
from squeezenas.search.pareto import SELECT_RULES
from squeezenas.utils.config import ConfigError, positive

COSTS = ("mac", "latency")
SUPERNETS = ("mixture", "path")
THETAS = ("split", "joint")
COST_ROUTES = ("gumbel", "softmax")
WARMUP_SHARE = 0.25  # of the epochs, when ``warmup_epochs`` is not given
TARGET_MODES = ("equal", "max")
BUDGET_KINDS = ("ms", "gmacs")
DEFAULT_ALPHA = 0.5


@dataclass(frozen=True)
class SearchConfig(DataFields, RunFields):
    """Everything a search depends on; written to ``out/config.json`` and into every checkpoint.
    ``dataset``, ``data_root``, ``data_options``: ``DataFields``; ``device``, ``progress``: ``RunFields``."""

    # what to search, on what
    space: str = "small"  # a registered macro-architecture (small, large, xlarge) or a YAML/JSON file
    dataset: str = "synthetic"  # a registered dataset: camvid, cityscapes, folder, synthetic
    train_split: str = "train"  # the search trains weights and θ on this split (never on val)
    limit_train: int | None = None  # use only the first N training samples (quick trials)
    out: str = "runs/search"  # run folder: config.json, checkpoint.pt, log.csv, theta.json, genotype.json, tb/
    # the cost model: loss = CE + α · E / E_ref, E = fixed + Σ_i Σ_j p(i, j) C(i, j)
    cost: str = "mac"  # "mac" (GMACs at ``size``, computed) or "latency" (ms, a lookup table from ``lut``)
    lut: str | None = None  # latency lookup table (cost "latency"); its resolution is the deployment size
    size: tuple[int, int] | None = None  # deployment resolution of the cost table; None: the LUT's, else the crop
    alpha: float | None = None  # cost weight per E_ref (expected cost of the uniform distribution, "the mean
    #                             network"); None: 0.5, or 0 with a target (the projection then sets the pressure)
    alpha_raw: float | None = None  # cost weight per table unit (per GMAC or per ms); overrides ``alpha``
    target: float | None = None  # expected cost to hold (table unit; calibrated ms for latency tables)
    target_mode: str = "equal"  # "equal": E → target from both sides; "max": only E ≤ target is enforced
    cost_ramp: float = 0.3  # fraction of the θ-steps over which the cost comes in (α from 0 to its value, the
    #                         target from the expected cost after warm-up to ``target``); no pruning before its end
    cost_through: str = "gumbel"  # "gumbel": the cost term weighs C with the sampled Gumbel weights, so its pull on
    #                               θ shrinks with the temperature as the cross-entropy's does; "softmax": with p(θ)
    theta: str = "split"  # "split": θ (moved by the cross-entropy) + θ_cost (moved by the cost), pruning on θ
    #                       alone, i.e. on what accuracy prefers; "joint": one θ for both (the paper's)
    supernet: str = "mixture"  # "mixture": every candidate, weighted per sample; "path": one sampled candidate per
    #                            position and batch (hard Gumbel, straight-through to θ), a network's cost per step
    # schedule
    epochs: int = 10  # epochs of the search, warm-up included
    warmup_epochs: int | None = None  # first epochs train the weights only (θ frozen, so uniform sampling, no
    #                                   pruning); None: a quarter of the epochs
    steps_per_epoch: int | None = None  # cap the steps of an epoch (smoke runs); None: the whole split
    batch_size: int = 8
    crop: tuple[int, int] = (512, 1024)  # training crop (H, W) after random scaling
    scale: tuple[float, float] = (0.5, 2.0)  # random rescaling range before the crop
    workers: int = 4  # DataLoader worker processes (0: load in the main process)
    lr: float | None = None  # weights' SGD lr; None: the paper's 0.05 scaled linearly to the batch (0.05 · B / 16)
    momentum: float = 0.9
    weight_decay: float = 1e-5
    theta_lr: float = 1e-2  # θ's Adam lr (no weight decay)
    temperature_start: float = 5.0  # Gumbel-softmax temperature at the first θ-step ...
    temperature_end: float = 1.0  # ... and at the last, exponential in between
    # FBNet-style alternating updates: weights on (1 - holdout) of the training split, θ on the held-out rest
    alternate: bool = False  # weights on the training part, θ on a held-out part, alternately
    holdout: float = 0.2  # the held-out fraction of the training split for θ (with ``alternate``)
    # early stopping of candidates (paper §4.2)
    prune_threshold: float = 0.005  # remove candidates with probability below this (0: never prune)
    prune_every: int = 0  # check every N steps; 0: after every epoch
    # hardware and run management
    fused: bool = True  # the supernet's fused mixture (same result as candidate by candidate, faster)
    channels_last: bool = True  # NHWC supernet and batches: CPU depthwise convs run 5-10x faster (docs/SUPERNET.md)
    amp: bool = False  # mixed precision: float16 autocast + gradient scaling on CUDA, bfloat16 autocast on CPU
    sync_bn: bool = True  # under torchrun on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm; the
    #                       fused mixture computes its own statistics, per process)
    world_size: int = 1  # processes of the run: set by torchrun and recorded here, never chosen (batch_size is the
    #                      global batch, shared out over them)
    seed: int = 0
    log_every: int = 10  # TensorBoard scalars every N steps
    tensorboard: bool = True  # TensorBoard logs in out/tb

    def __post_init__(self) -> None:
        check_search_config(self)

    def loss_alpha(self, e_ref: float) -> float:
        """The normalised α of the loss CE + α · E / e_ref (``alpha_raw`` converted with the table's e_ref)."""
        if self.alpha_raw is not None:
            return self.alpha_raw * e_ref
        if self.alpha is not None:
            return self.alpha
        return 0.0 if self.target is not None else DEFAULT_ALPHA

    @property
    def warmup(self) -> int:
        """Warm-up epochs: ``warmup_epochs``, or a quarter of the epochs (at least one when there are two)."""
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        return max(1, round(WARMUP_SHARE * self.epochs)) if self.epochs >= 2 else 0

    @property
    def base_lr(self) -> float:
        """The weights' learning rate: ``lr`` or the paper's 0.05 at batch 16, scaled linearly."""
        return self.lr if self.lr is not None else 0.05 * self.batch_size / 16

    @property
    def memory_format(self) -> torch.memory_format:
        """Of the supernet and its batches."""
        return torch.channels_last if self.channels_last else torch.contiguous_format


def check_search_config(cfg: SearchConfig) -> None:
    """Value checks that need no files; the messages name the field."""
    check_fields(cfg)
    if cfg.cost not in COSTS:
        raise ConfigError(f"cost must be one of {', '.join(COSTS)}, got {cfg.cost!r}")
    if cfg.target_mode not in TARGET_MODES:
        raise ConfigError(f"target_mode must be one of {', '.join(TARGET_MODES)}, got {cfg.target_mode!r}")
    for name in ("epochs", "batch_size", "log_every", "steps_per_epoch", "limit_train", "world_size"):
        positive(name, getattr(cfg, name))
    for name in ("warmup_epochs", "prune_every"):
        positive(name, getattr(cfg, name), allow_zero=True)
    if cfg.warmup >= cfg.epochs:
        raise ConfigError(f"warmup_epochs ({cfg.warmup}) must be fewer than epochs ({cfg.epochs}): "
                          "θ would never be trained")
    for name, allowed in (("supernet", SUPERNETS), ("theta", THETAS), ("cost_through", COST_ROUTES)):
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.batch_size < 2:
        raise ConfigError("batch_size must be at least 2 (BatchNorm needs more than one sample)")
    if (cfg.lr is not None and cfg.lr <= 0) or cfg.theta_lr <= 0 or cfg.weight_decay < 0 or not 0 <= cfg.momentum < 1:
        raise ConfigError(f"need lr > 0, theta_lr > 0, weight_decay >= 0 and 0 <= momentum < 1 "
                          f"(got {cfg.lr}, {cfg.theta_lr}, {cfg.weight_decay}, {cfg.momentum})")
    if not 0 < cfg.temperature_end <= cfg.temperature_start:
        raise ConfigError(f"need 0 < temperature_end <= temperature_start, got {cfg.temperature_start} → "
                          f"{cfg.temperature_end}")
    if (cfg.alpha is not None and cfg.alpha < 0) or (cfg.alpha_raw is not None and cfg.alpha_raw < 0):
        raise ConfigError("alpha must be >= 0 (a negative α would reward cost)")
    if cfg.target is not None and cfg.target <= 0:
        raise ConfigError(f"target must be positive, got {cfg.target}")
    if not 0 <= cfg.cost_ramp <= 1:
        raise ConfigError(f"cost_ramp must lie in [0, 1], got {cfg.cost_ramp}")
    if not 0 < cfg.holdout < 1:
        raise ConfigError(f"holdout must lie in (0, 1), got {cfg.holdout}")
    if not 0 <= cfg.prune_threshold < 1:
        raise ConfigError(f"prune_threshold must lie in [0, 1), got {cfg.prune_threshold}")


@dataclass(frozen=True)
class SampleConfig(RunFields):
    """The sample step: which search to sample from, how to score and cost the samples, how to choose.
    ``device``, ``progress``: ``RunFields``; the data and the deployment size are the search's."""

    search: str = ""  # a search folder (squeezenas search --out)
    n: int = 200  # distinct architectures to sample
    budget: float | None = None  # choose the most accurate front architecture whose cost fits this
    budget_kind: str | None = None  # the front's cost axis: "ms" (calibrated latency) or "gmacs"; None: the search's
    lut: str | None = None  # latency lookup table to cost the samples with (default: the search's, if latency)
    bn_batches: int = 8  # training batches on which each path's BatchNorm statistics are re-estimated
    split: str = "val"  # split to score on
    val_limit: int | None = None  # score on N images evenly strided over the split (faster, noisier)
    val_size: tuple[int, int] | None = None  # run the paths at (H, W); scored at full resolution
    select: str = "knee"  # without a budget: the front's knee, or its most accurate point ("best")
    finalists: int = 5  # with a budget: the most accurate samples within it, looked at again (0: none)
    rescore_limit: int | None = None  # their second score on this many validation images (None: the whole split)
    measure: bool = True  # time the finalists end to end (a latency table measured on this device) and choose
    #                       on measured latency
    measure_fresh: bool = True  # time them in a new process, as squeezenas bench does, not in the one that
    #                             scored the supernet (docs/SEARCH.md, step 6)
    seed: int = 0  # of the draws and of the BatchNorm batches
    workers: int = 2  # DataLoader workers for the validation split
    out: str | None = None  # where to write the chosen genotype (default SEARCH/chosen_genotype.json)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.search:
            raise ConfigError("search: name the search folder to sample from (--search DIR)")
        for name in ("n", "bn_batches", "val_limit", "rescore_limit"):
            positive(name, getattr(self, name))
        positive("finalists", self.finalists, allow_zero=True)
        if self.budget_kind not in (None, *BUDGET_KINDS):
            raise ConfigError(f"budget kind must be 'ms' or 'gmacs', got {self.budget_kind!r}")
        if self.budget is not None and self.budget <= 0:
            raise ConfigError(f"budget must be positive, got {self.budget}")
        if self.select not in SELECT_RULES:
            raise ConfigError(f"select must be one of {', '.join(SELECT_RULES)}, got {self.select!r}")
