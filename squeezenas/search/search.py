"""The proxyless search: weights and θ of the supernet trained together on the target task, with the
resource loss α · Σ p·C from a cost table (MACs or measured latency), temperature annealing, early pruning of
improbable candidates, an optional cost target, and exact resumption.

``search(cfg, cost_table)`` is the library entry point; ``squeezenas search`` is a thin layer over it.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from squeezenas.cost.tables import CostTable
from squeezenas.search.config import SearchConfig
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch, load_macro
from squeezenas.utils.config import ConfigError, from_dict, to_dict
from squeezenas.utils.io import atomic_torch_save, atomic_write_json, atomic_write_text, safe_torch_load

FORMAT = "squeezenas-search"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
TABLE_KINDS = {"mac": "macs", "latency": "latency"}  # config ``cost`` → CostTable.kind
# config fields that may change between a run and its resumption without changing its results
RESUME_FREE = ("out", "progress", "tensorboard", "log_every", "device", "workers", "channels_last")


# --- schedules ------------------------------------------------------------------------------------------------


def temperature_at(theta_step: int, total: int, start: float, end: float) -> float:
    """Exponential annealing over the θ-steps: ``start`` at the first, ``end`` at the last (t_s = t_0 · r^s)."""
    if total <= 1:
        return end
    frac = min(max(theta_step / (total - 1), 0.0), 1.0)
    return start * (end / start) ** frac


def lr_at(step: int, total: int, base: float) -> float:
    """The weights' learning rate: cosine from ``base`` to 0 over all steps of the search (warm-up included)."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


# --- cost model ---------------------------------------------------------------------------------------------------


def calibrate(table: CostTable, raw: float) -> float:
    """A raw table sum in the table's reporting unit: ``overhead_ms + scale · raw`` for a calibrated latency
    table (``meta["calibration"]``), else unchanged. Linear, so it maps expected costs too."""
    c = table.meta.get("calibration")
    return raw if not c else float(c["overhead_ms"]) + float(c["scale"]) * raw


def uncalibrate(table: CostTable, value: float) -> float:
    """Inverse of ``calibrate``: a cost in the reporting unit (e.g. a target in ms) as a raw table sum."""
    c = table.meta.get("calibration")
    return value if not c else (value - float(c["overhead_ms"])) / float(c["scale"])


@dataclass(frozen=True)
class CostModel:
    """The cost table as the loss uses it: C (P, C) and the fixed parts, normalised by ``e_ref``.

    ``e_ref`` is the expected cost of the uniform distribution over all candidates (fixed parts included): the
    cost of "the mean network" of the space. The normalised α multiplies E / e_ref, so α = 1 trades one nat
    of cross-entropy against the whole cost of the mean network; α_raw = α / e_ref per table unit.
    """

    table: CostTable
    matrix: torch.Tensor  # (P, C), raw table units
    fixed: float
    e_ref: float

    @classmethod
    def from_table(cls, table: CostTable, device: torch.device | str = "cpu") -> CostModel:
        m = table.matrix(device)
        fixed = table.fixed_total
        return cls(table, m, fixed, float(fixed + m.mean(dim=1).sum()))

    @property
    def unit(self) -> str:
        return self.table.unit

    def expected(self, probabilities: torch.Tensor) -> float:
        """Raw expected cost fixed + Σ p·C of a (P, C) distribution."""
        return self.fixed + float((probabilities.detach().to(self.matrix) * self.matrix).sum())

    def bounds(self, alive: torch.Tensor) -> tuple[float, float]:
        """Raw cost of the cheapest and of the most expensive network among alive candidates."""
        m = self.matrix.masked_fill(~alive.to(self.matrix.device), float("inf"))
        lo = self.fixed + float(m.min(dim=1).values.sum())
        m = self.matrix.masked_fill(~alive.to(self.matrix.device), float("-inf"))
        return lo, self.fixed + float(m.max(dim=1).values.sum())


# --- the cost target --------------------------------------------------------------------------------------------


@dataclass
class TargetProjector:
    """Holds the expected cost at a target by projecting the distribution after every θ-step.

    The projection of p onto {q : E_q[C] = T} in KL divergence is the exponential tilt q_ij ∝ p_ij ·
    exp(−λ · C_ij / e_ref) with one λ for the whole network, found by bisection (E is monotone in λ). It is
    applied to θ as θ_ij ← θ_ij − λ · C_ij / e_ref: a natural-gradient step on the cost term whose size is
    chosen every step so that the constraint holds, i.e. an α adapted at every step. ``lam_total`` (the sum of
    the tilts, in nats per mean-network cost) is the price of cost the search ended up paying.

    The target moves from the starting expected cost to ``target`` over the first ``ramp_steps`` θ-steps,
    so the first steps still explore. Mode "equal" tilts both ways; "max" only when E exceeds the target.
    """

    target: float  # raw table units
    start: float  # raw expected cost when θ-steps begin
    ramp_steps: int
    mode: str = "equal"
    lam_total: float = 0.0
    last_lam: float = 0.0
    unreachable: bool = False

    def target_at(self, theta_step: int) -> float:
        if self.ramp_steps <= 0 or theta_step >= self.ramp_steps:
            return self.target
        f = theta_step / self.ramp_steps
        return self.start + (self.target - self.start) * f

    @torch.no_grad()
    def project(self, theta: torch.Tensor, alive: torch.Tensor, cost: CostModel, theta_step: int) -> float:
        """Tilt ``theta`` in place so that the expected cost equals (or, mode "max", does not exceed) the
        current target; returns λ."""
        c = (cost.matrix / cost.e_ref).to(torch.float64).to(theta.device)
        th = theta.detach().to(torch.float64).masked_fill(~alive, float("-inf"))
        fixed = cost.fixed / cost.e_ref
        goal = self.target_at(theta_step) / cost.e_ref

        def e(lam: float) -> float:
            return fixed + float((torch.softmax(th - lam * c, dim=-1) * c.masked_fill(~alive, 0.0)).sum())

        e0 = e(0.0)
        if abs(e0 - goal) <= 1e-6 * goal or (self.mode == "max" and e0 <= goal):
            self.last_lam = 0.0
            return 0.0
        sign = 1.0 if e0 > goal else -1.0  # positive λ lowers the cost
        lo, hi = 0.0, sign
        while (e(hi) - goal) * sign > 0:
            lo, hi = hi, hi * 2
            if abs(hi) > 1e7:  # the target lies outside what the alive candidates can reach
                self.unreachable = True
                break
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            if (e(mid) - goal) * sign > 0:
                lo = mid
            else:
                hi = mid
        lam = hi
        theta.sub_((lam * c).to(theta.dtype).masked_fill(~alive, 0.0))
        self.last_lam = lam
        self.lam_total += lam
        return lam

    def state_dict(self) -> dict[str, Any]:
        return {"target": self.target, "start": self.start, "ramp_steps": self.ramp_steps, "mode": self.mode,
                "lam_total": self.lam_total, "last_lam": self.last_lam, "unreachable": self.unreachable}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> TargetProjector:
        return cls(**d)


# --- results ------------------------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """What a search produced (also written to ``out``: genotype.json, theta.json, log.csv, result.json)."""

    genotype: Genotype  # the most probable architecture (argmax of θ over alive candidates)
    probabilities: list[list[float]]  # the final distribution (P × C, 0 for pruned candidates)
    expected_cost: float  # of the final distribution, in ``unit`` (calibrated for latency tables)
    predicted_cost: float  # of ``genotype``, in ``unit``
    unit: str
    alpha: float  # the loss's normalised α (0 with a target unless given)
    epochs: int  # epochs completed so far
    finished: bool  # all configured epochs done
    history: list[dict[str, Any]]  # one row per epoch (log.csv)
    pruned: list[tuple[int, int, str]]  # (epoch, position, code) of every removed candidate
    out: Path
    seconds: float  # wall time of this call
    target: float | None = None  # in ``unit``
    lam_total: float | None = None  # the target projection's accumulated price (nats per mean-network cost)

    def to_dict(self) -> dict[str, Any]:
        return {"genotype": self.genotype.to_dict(), "expected_cost": self.expected_cost,
                "predicted_cost": self.predicted_cost, "unit": self.unit, "alpha": self.alpha, "target": self.target,
                "lam_total": self.lam_total, "epochs": self.epochs, "finished": self.finished,
                "pruned": [list(p) for p in self.pruned], "probabilities": self.probabilities}


# --- helpers ------------------------------------------------------------------------------------------------------


def resolve_size(cfg: SearchConfig, table: CostTable | None = None) -> tuple[int, int]:
    """Deployment resolution of the cost table: ``size``, else a latency table's own, else the crop."""
    if cfg.size is not None:
        return tuple(cfg.size)
    if table is not None and table.kind == "latency":
        return tuple(table.input_size)
    return tuple(cfg.crop)


def build_cost_table(cfg: SearchConfig, num_classes: int) -> CostTable:
    """The cost model a config names: a MAC table computed at ``size`` or the latency table ``lut``."""
    from squeezenas.cost.tables import mac_table

    macro = load_macro(cfg.space)
    if cfg.cost == "mac":
        return mac_table(macro, resolve_size(cfg), num_classes=num_classes)
    if not cfg.lut:
        raise ConfigError("cost 'latency' needs a lookup table: --lut TABLE.json (build one with `squeezenas lut build`)")
    from squeezenas.cost.lut import load_lut

    table = load_lut(cfg.lut, warn_device=True)
    table.check_compatible(macro, resolve_size(cfg, table), where=str(cfg.lut))
    return table


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but PyTorch sees no CUDA device (use --device cpu)")
    return torch.device(name)


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch (and one stream: 0 weights' batches, 1 θ batches): a resumed search redraws the
    same batches, augmentations and Gumbel noise as an uninterrupted one."""
    return ((seed * 100_003 + epoch) * 1_009 + stream) % (2**63)


def _loader(dataset: Dataset, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    from torch.utils.data import DataLoader, RandomSampler

    if len(dataset) < batch_size:
        raise ValueError(f"the training data has {len(dataset)} samples, fewer than one batch of {batch_size}; "
                         "lower --batch-size")
    g = torch.Generator()
    return DataLoader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=g),
                      num_workers=workers, drop_last=True, generator=g, persistent_workers=False,
                      pin_memory=torch.cuda.is_available())


def _reseed(loader: torch.utils.data.DataLoader, seed: int) -> None:
    loader.generator.manual_seed(seed)
    torch.manual_seed(seed)  # augmentation (workers=0) and the Gumbel noise


def _cycle(loader: torch.utils.data.DataLoader, seed: int):
    """Endless batches from ``loader``, reseeded deterministically at every pass."""
    k = 0
    while True:
        loader.generator.manual_seed(seed + k)
        yield from loader
        k += 1


def _rebuild_sgd(old: torch.optim.Optimizer, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """A new SGD over ``params`` (after pruning deleted modules) carrying the surviving parameters' momentum."""
    group = {k: v for k, v in old.param_groups[0].items() if k != "params"}
    new = torch.optim.SGD(params, **group)
    for p in params:
        if p in old.state:
            new.state[p] = old.state[p]
    return new


def _entropy(p: torch.Tensor) -> float:
    """Mean entropy (nats) of the per-position distributions."""
    return float(-(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).mean())


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _RunLog:
    """Progress lines to the terminal and to ``out/search.log``."""

    def __init__(self, path: Path, echo: bool):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        with self.path.open("a") as f:
            f.write(msg + "\n")
        if self.echo:
            from tqdm import tqdm

            tqdm.write(msg)


CSV_FIELDS = ("epoch", "phase", "steps", "seconds", "seconds_per_step", "loss", "ce", "cost_term", "expected_cost",
              "derived_cost", "target", "alpha", "lam", "temperature", "lr", "entropy", "alive", "alive_fraction",
              "pruned")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def check_resume_config(saved: dict[str, Any], cfg: SearchConfig, where: str) -> None:
    """A resumed search must be the same search: every field except RESUME_FREE must match."""
    now = to_dict(cfg)
    diff = [f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in now if k not in RESUME_FREE and saved.get(k) != now[k]]
    if diff:
        raise ConfigError(f"{where}: cannot resume with a different config ({'; '.join(diff)}); "
                          "start a new search in another --out folder")


def load_search_checkpoint(path: str | Path) -> dict[str, Any]:
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a squeezenas search checkpoint (no format {FORMAT!r})")
    return ckpt


def load_search(folder: str | Path, device: torch.device | str = "cpu") -> tuple[Any, SearchConfig, dict[str, Any]]:
    """The supernet of a search folder (trained weights, θ, alive mask), its config and its checkpoint."""
    from squeezenas.supernet import SuperNet

    folder = Path(folder)
    ckpt = load_search_checkpoint(folder / CHECKPOINT)
    cfg = from_dict(SearchConfig, ckpt["config"], where=f"{folder / CHECKPOINT}: config")
    macro = MacroArch.from_dict(ckpt["macro"], where=f"{folder / CHECKPOINT}: macro")
    net = SuperNet(macro, int(ckpt["num_classes"]), fused=cfg.fused)
    net.load_state_dict(ckpt["supernet"])
    return net.to(device, memory_format=_memory_format(cfg)), cfg, ckpt


def _memory_format(cfg: SearchConfig) -> torch.memory_format:
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


# --- the search ---------------------------------------------------------------------------------------------------


@dataclass
class _State:
    """Everything a search changes as it runs: what a checkpoint holds and a resumption restores."""

    net: Any  # the SuperNet
    opt_w: torch.optim.Optimizer  # SGD on the weights
    opt_t: torch.optim.Optimizer  # Adam on θ
    alpha: float  # normalised α of the loss
    projector: TargetProjector | None
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps of the weights
    theta_step: int = 0  # θ-steps (after warm-up)
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch (log.csv)
    theta_history: list[dict[str, Any]] = field(default_factory=list)  # the distribution after every epoch
    pruned: list[tuple[int, int, str]] = field(default_factory=list)  # (epoch, position, code)
    memory_format: torch.memory_format = torch.contiguous_format  # of the batches (the net's, set by the config)

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "supernet": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "opt_w": self.opt_w.state_dict(), "opt_theta": self.opt_t.state_dict(), "alpha": self.alpha,
            "projector": self.projector.state_dict() if self.projector is not None else None,
            "epoch": self.epoch, "step": self.step, "theta_step": self.theta_step, "rng": _rng_state(),
            "history": self.history, "theta_history": self.theta_history, "pruned": [list(x) for x in self.pruned],
        }

    def restore(self, ckpt: dict[str, Any], cfg: SearchConfig) -> None:
        self.net.load_state_dict(ckpt["supernet"])  # prunes to the saved alive mask first
        self.opt_w = _sgd(self.net, cfg)  # over the surviving weights, in the order the saved state uses
        self.opt_w.load_state_dict(ckpt["opt_w"])
        self.opt_t.load_state_dict(ckpt["opt_theta"])
        self.alpha = float(ckpt["alpha"])
        self.projector = TargetProjector.from_state(ckpt["projector"]) if ckpt["projector"] is not None else None
        self.epoch, self.step, self.theta_step = int(ckpt["epoch"]), int(ckpt["step"]), int(ckpt["theta_step"])
        self.history, self.theta_history = list(ckpt["history"]), list(ckpt["theta_history"])
        self.pruned = [(int(e), int(i), str(c)) for e, i, c in ckpt["pruned"]]
        _set_rng_state(ckpt["rng"])

    def prune(self, threshold: float) -> list[tuple[int, str]]:
        """Remove candidates below ``threshold``; the SGD is rebuilt over the surviving weights (momentum kept)."""
        removed = self.net.prune(threshold)
        if removed:
            self.opt_w = _rebuild_sgd(self.opt_w, self.net.weight_parameters())
        return removed


@dataclass
class _Data:
    """The search's batches: the weights' loader and, with ``alternate``, the held-out loader for θ."""

    loader: torch.utils.data.DataLoader
    theta_loader: torch.utils.data.DataLoader | None
    num_classes: int
    steps_per_epoch: int


def _sgd(net: Any, cfg: SearchConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(net.weight_parameters(), lr=cfg.base_lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _build_data(cfg: SearchConfig, train_set: Dataset | None, num_classes: int | None) -> _Data:
    if train_set is None:
        from squeezenas.data import dataset_info
        from squeezenas.engine.loaders import build_train_dataset

        train_set = build_train_dataset(cfg.dataset, cfg.data_root, cfg.train_split, tuple(cfg.crop),
                                        tuple(cfg.scale), **cfg.data_options)
        num_classes = num_classes or dataset_info(cfg.dataset, cfg.data_root).num_classes
    num_classes = num_classes or getattr(train_set, "num_classes", None)
    if num_classes is None:
        raise ValueError("pass num_classes with a custom train_set")
    if cfg.limit_train is not None:
        train_set = Subset(train_set, range(min(cfg.limit_train, len(train_set))))
    theta_loader = None
    if cfg.alternate:  # a fixed random split: θ never sees the images the weights are trained on
        perm = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_hold = max(cfg.batch_size, int(round(cfg.holdout * len(train_set))))
        theta_loader = _loader(Subset(train_set, perm[:n_hold]), cfg.batch_size, cfg.workers)
        train_set = Subset(train_set, perm[n_hold:])
    loader = _loader(train_set, cfg.batch_size, cfg.workers)
    return _Data(loader, theta_loader, int(num_classes), min(len(loader), cfg.steps_per_epoch or len(loader)))


def _loss_terms(st: _State, cost: CostModel, image: torch.Tensor, mask: torch.Tensor, temperature: float,
                with_cost: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel cross-entropy (ignore 255) of the Gumbel-sampled supernet, and α · E / e_ref (0 without cost)."""
    ce = F.cross_entropy(st.net(image, temperature=temperature), mask, ignore_index=255)
    if not with_cost:
        return ce, torch.zeros((), device=ce.device)
    e_norm = (st.net.expected_cost(cost.matrix) + cost.fixed) / cost.e_ref
    return ce, st.alpha * e_norm


def _joint_step(st: _State, cost: CostModel, batch: tuple[torch.Tensor, torch.Tensor], temperature: float,
                warm: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's update: one batch, one loss, the weights (SGD) and θ (Adam) stepped together."""
    ce, cost_term = _loss_terms(st, cost, *batch, temperature, with_cost=not warm)
    loss = ce + cost_term
    st.opt_w.zero_grad(set_to_none=True)
    st.opt_t.zero_grad(set_to_none=True)
    loss.backward()
    st.opt_w.step()
    if not warm:
        st.opt_t.step()
    return loss, ce, cost_term


def _alternate_step(st: _State, cost: CostModel, batch: tuple[torch.Tensor, torch.Tensor],
                    held_out: Any, temperature: float, warm: bool,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FBNet's update: the weights on a training batch (θ fixed), then θ on a held-out batch (weights fixed)."""
    ce, _ = _loss_terms(st, cost, *batch, temperature, with_cost=False)
    st.opt_w.zero_grad(set_to_none=True)
    ce.backward()
    st.net.theta.grad = None
    st.opt_w.step()
    cost_term = torch.zeros((), device=device)
    if not warm:
        image, mask = next(held_out)
        image, mask = image.to(device, non_blocking=True, memory_format=st.memory_format), mask.to(device)
        weights = st.net.weight_parameters()
        for p in weights:  # no weight gradients: cheaper, and the weights must not move
            p.requires_grad_(False)
        try:
            h_ce, cost_term = _loss_terms(st, cost, image, mask, temperature, with_cost=True)
            st.opt_t.zero_grad(set_to_none=True)
            (h_ce + cost_term).backward()
            st.opt_t.step()
        finally:
            for p in weights:
                p.requires_grad_(True)
    return ce + cost_term, ce, cost_term


def _run_epoch(st: _State, cfg: SearchConfig, data: _Data, cost: CostModel, table: CostTable, device: torch.device,
               total_steps: int, total_theta_steps: int, writer: Any) -> dict[str, Any]:
    """One epoch of the search; returns its log row (without the end-of-epoch pruning)."""
    epoch = st.epoch
    warm = epoch < cfg.warmup_epochs
    _reseed(data.loader, epoch_seed(cfg.seed, epoch, 0))
    held_out = _cycle(data.theta_loader, epoch_seed(cfg.seed, epoch, 1)) if data.theta_loader is not None else None
    st.net.train()
    sums = {"loss": 0.0, "ce": 0.0, "cost_term": 0.0}
    pruned: list[tuple[int, str]] = []
    n = 0
    temp = cfg.temperature_start
    bar = _bar(cfg.progress, data.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}" + (" (warm-up)" if warm else ""))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for image, mask in data.loader:
        if n >= data.steps_per_epoch:
            break
        temp = cfg.temperature_start if warm else temperature_at(st.theta_step, total_theta_steps,
                                                                  cfg.temperature_start, cfg.temperature_end)
        for g in st.opt_w.param_groups:
            g["lr"] = lr_at(st.step, total_steps, cfg.base_lr)
        batch = (image.to(device, non_blocking=True, memory_format=st.memory_format),
                 mask.to(device, non_blocking=True))
        if held_out is None:
            loss, ce, cost_term = _joint_step(st, cost, batch, temp, warm)
        else:
            loss, ce, cost_term = _alternate_step(st, cost, batch, held_out, temp, warm, device)
        if not warm:
            if st.projector is not None:
                st.projector.project(st.net.theta.data, st.net.alive, cost, st.theta_step)
            st.theta_step += 1
            if cfg.prune_every and cfg.prune_threshold > 0 and st.theta_step % cfg.prune_every == 0:
                pruned += st.prune(cfg.prune_threshold)
        st.step += 1
        n += 1
        for k, v in (("loss", loss), ("ce", ce), ("cost_term", cost_term)):
            sums[k] += float(v.detach())
        if writer is not None and st.step % cfg.log_every == 0:
            _log_step(writer, st, cost, table, loss, ce, cost_term, temp, cfg)
        if bar is not None:
            e = calibrate(table, cost.expected(st.net.probabilities().detach()))
            bar.set_postfix(ce=f"{float(ce.detach()):.3f}", t=f"{temp:.2f}", cost=f"{e:.4g}")
            bar.update(1)
    if bar is not None:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "phase": "warmup" if warm else "search", "steps": n, "seconds": seconds,
            "seconds_per_step": seconds / max(n, 1), "temperature": temp,
            **{k: v / max(n, 1) for k, v in sums.items()}, "_pruned": pruned}


def _log_step(writer: Any, st: _State, cost: CostModel, table: CostTable, loss: torch.Tensor, ce: torch.Tensor,
              cost_term: torch.Tensor, temperature: float, cfg: SearchConfig) -> None:
    p = st.net.probabilities().detach()
    writer.add_scalar("loss/total", float(loss.detach()), st.step)
    writer.add_scalar("loss/ce", float(ce.detach()), st.step)
    writer.add_scalar("loss/cost_term", float(cost_term.detach()), st.step)
    writer.add_scalar("search/expected_cost", calibrate(table, cost.expected(p)), st.step)
    writer.add_scalar("search/temperature", temperature, st.step)
    writer.add_scalar("search/entropy", _entropy(p), st.step)
    writer.add_scalar("search/lr", st.opt_w.param_groups[0]["lr"], st.step)
    if st.projector is not None:
        writer.add_scalar("search/lambda", st.projector.last_lam, st.step)


def search(cfg: SearchConfig, cost_table: CostTable, *, train_set: Dataset | None = None,
           num_classes: int | None = None, resume: bool = False, stop_after: int | None = None,
           on_epoch: Callable[[dict[str, Any]], None] | None = None, heatmap: bool = True) -> SearchResult:
    """Run (or continue) a search; everything goes to ``cfg.out``.

    ``cost_table`` is the cost model (a MAC table, or a latency table from cost/lut.py: any CostTable for the
    space at the deployment size). ``train_set`` replaces the dataset the config names (it must yield
    (image, mask) pairs at the crop size; pass ``num_classes`` with it). ``resume`` continues from
    ``out/checkpoint.pt`` (the config must match, see ``RESUME_FREE``). ``stop_after`` ends this call after
    that many epochs (a later ``resume=True`` call continues exactly). ``on_epoch`` receives every epoch's row;
    ``heatmap`` False skips drawing theta_heatmap.png at the end.
    """
    from squeezenas.supernet import SuperNet

    t_call = time.perf_counter()
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a search ({ckpt_path}); pass --resume to continue it or "
                              "choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    log = _RunLog(out / "search.log", cfg.progress)
    macro = load_macro(cfg.space)
    size = resolve_size(cfg, cost_table)
    cost_table.check_compatible(macro, size, where=f"{cost_table.kind} cost table")
    if tuple(cost_table.candidates) != tuple(macro.candidates):
        raise ValueError("the cost table's candidates differ from the space's")
    if TABLE_KINDS[cfg.cost] != cost_table.kind:
        raise ValueError(f"the config says cost {cfg.cost!r} but the cost table is a {cost_table.kind!r} table")
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        from squeezenas.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()  # keep large activations in the heap between steps (docs/SUPERNET.md)
    data = _build_data(cfg, train_set, num_classes)
    total_steps = cfg.epochs * data.steps_per_epoch
    total_theta_steps = (cfg.epochs - cfg.warmup_epochs) * data.steps_per_epoch

    torch.manual_seed(cfg.seed)
    net = SuperNet(macro, data.num_classes, fused=cfg.fused).to(device, memory_format=_memory_format(cfg))
    cost = CostModel.from_table(cost_table, device)
    st = _State(net, _sgd(net, cfg), torch.optim.Adam(net.arch_parameters(), lr=cfg.theta_lr, weight_decay=0.0),
                cfg.loss_alpha(cost.e_ref), _make_projector(cfg, cost, net, size, total_theta_steps),
                memory_format=_memory_format(cfg))
    if resume and ckpt_path.exists():
        ckpt = load_search_checkpoint(ckpt_path)
        check_resume_config(ckpt["config"], cfg, str(ckpt_path))
        st.restore(ckpt, cfg)
        log(f"resumed {out} after epoch {st.epoch} (step {st.step})")
    else:
        atomic_write_json(out / "config.json", to_dict(cfg))
        cost_table.save(out / "cost_table.json")
        st.theta_history.append(_theta_entry(net, 0, 0, cfg.temperature_start))
        log(f"search {macro.name} on {cfg.dataset}: {cfg.epochs} epochs × {data.steps_per_epoch} steps, batch "
            f"{cfg.batch_size}, crop {cfg.crop[0]}×{cfg.crop[1]}, cost {cost_table.kind} ({cost.unit} at "
            f"{size[0]}×{size[1]}), α {st.alpha:g} per mean network (E_ref {calibrate(cost_table, cost.e_ref):.4g} "
            f"{cost.unit}; α_raw {st.alpha / cost.e_ref:.4g} per {_per_unit(cost.unit)})"
            + (f", target {cfg.target:g} {cost.unit} ({cfg.target_mode})" if cfg.target is not None else "")
            + f", device {device}")

    writer = _tensorboard(out, st.step) if cfg.tensorboard else None
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, st.epoch + stop_after)
    while st.epoch < end_epoch:
        row = _run_epoch(st, cfg, data, cost, cost_table, device, total_steps, total_theta_steps, writer)
        pruned = row.pop("_pruned")
        if row["phase"] == "search" and cfg.prune_threshold > 0 and not cfg.prune_every:
            pruned += st.prune(cfg.prune_threshold)
        st.epoch += 1
        st.pruned += [(st.epoch, i, c) for i, c in pruned]
        if pruned:
            log(f"epoch {st.epoch}: pruned {len(pruned)} candidate(s) below p={cfg.prune_threshold:g}: "
                + ", ".join(f"{i}:{c}" for i, c in pruned))
        p = net.probabilities().detach()
        alive = int(net.alive.sum())
        row.update({
            "expected_cost": calibrate(cost_table, cost.expected(p)),
            "derived_cost": calibrate(cost_table, cost_table.predict(net.derive())),
            "target": cfg.target if cfg.target is not None else "", "alpha": st.alpha,
            "lam": st.projector.lam_total if st.projector is not None else "",
            "lr": st.opt_w.param_groups[0]["lr"], "entropy": _entropy(p), "alive": alive,
            "alive_fraction": alive / net.alive.numel(), "pruned": len(pruned)})
        st.history.append(row)
        st.theta_history.append(_theta_entry(net, st.epoch, st.theta_step, row["temperature"]))
        log(f"epoch {st.epoch}/{cfg.epochs}: {row['steps']} steps in {row['seconds']:.1f} s "
            f"({row['seconds_per_step']:.3f} s/step), ce {row['ce']:.4f}, E[cost] {row['expected_cost']:.4g} "
            f"{cost.unit}, argmax {row['derived_cost']:.4g} {cost.unit}, entropy {row['entropy']:.3f}, "
            f"alive {alive}/{net.alive.numel()}")
        if writer is not None:
            for k in ("seconds", "alive", "expected_cost", "derived_cost", "entropy"):
                writer.add_scalar(f"epoch/{k}", row[k], st.epoch)
            writer.flush()
        atomic_torch_save({"format": FORMAT, "version": VERSION, "config": to_dict(cfg), "macro": macro.to_dict(),
                           "num_classes": data.num_classes, **st.to_checkpoint(),
                           "cost": {"kind": cost_table.kind, "unit": cost.unit, "e_ref": cost.e_ref,
                                    "fixed": cost.fixed, "size": list(size)}}, ckpt_path)
        _write_csv(out / "log.csv", st.history)
        atomic_write_json(out / "theta.json", {"space": macro.name, "candidates": list(macro.candidates),
                                               "epochs": st.theta_history})
        if on_epoch is not None:
            on_epoch(row)
    if writer is not None:
        writer.close()
    return _finish(st, cfg, cost, cost_table, macro, out, log, time.perf_counter() - t_call, heatmap)


def _make_projector(cfg: SearchConfig, cost: CostModel, net: Any, size: tuple[int, int],
                    total_theta_steps: int) -> TargetProjector | None:
    if cfg.target is None:
        return None
    target_raw = uncalibrate(cost.table, cfg.target)
    lo, hi = cost.bounds(net.alive)
    if not lo <= target_raw <= hi:
        raise ValueError(f"target {cfg.target:g} {cost.unit} lies outside what the space can reach at "
                         f"{size[0]}×{size[1]}: {calibrate(cost.table, lo):.4g} … {calibrate(cost.table, hi):.4g} "
                         f"{cost.unit}")
    return TargetProjector(target_raw, cost.expected(net.probabilities()),
                           int(round(cfg.target_ramp * total_theta_steps)), cfg.target_mode)


def _tensorboard(out: Path, step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: the CSV log has the numbers
        return None
    return SummaryWriter(str(out / "tb"), purge_step=step if step else None)


def _finish(st: _State, cfg: SearchConfig, cost: CostModel, table: CostTable, macro: MacroArch, out: Path,
            log: _RunLog, seconds: float, heatmap: bool) -> SearchResult:
    """The result; when every epoch is done also genotype.json, result.json and theta_heatmap.png."""
    genotype = st.net.derive()
    p = st.net.probabilities().detach()
    result = SearchResult(
        genotype=genotype, probabilities=p.cpu().tolist(), expected_cost=calibrate(table, cost.expected(p)),
        predicted_cost=calibrate(table, table.predict(genotype)), unit=cost.unit, alpha=st.alpha,
        epochs=st.epoch, finished=st.epoch >= cfg.epochs, history=st.history, pruned=st.pruned, out=out,
        seconds=seconds, target=cfg.target, lam_total=st.projector.lam_total if st.projector is not None else None)
    if not result.finished:
        return result
    key = _unit_key(cost.unit)
    write_genotype(out / "genotype.json", genotype, {
        "source": "search (most probable architecture)", "search": str(out),
        f"predicted_{key}": result.predicted_cost, f"expected_{key}": result.expected_cost})
    atomic_write_json(out / "result.json", result.to_dict())
    if heatmap:
        from squeezenas.plots import theta_heatmap

        theta_heatmap(st.theta_history, macro, out / "theta_heatmap.png")
    log(f"done: {' '.join(genotype.ops)} — predicted {result.predicted_cost:.4g} {cost.unit}, "
        f"E[cost] {result.expected_cost:.4g} {cost.unit}; wrote {out / 'genotype.json'}")
    return result


def _per_unit(unit: str) -> str:
    return {"gmacs": "GMAC", "ms": "ms"}.get(unit, unit)


def _unit_key(unit: str) -> str:
    return {"gmacs": "gmacs", "ms": "latency_ms"}.get(unit, unit)


def write_genotype(path: str | Path, genotype: Genotype, meta: dict[str, Any] | None = None,
                   name: str | None = None) -> None:
    """The standard genotype JSON (``{"macro", "genotype"}``) with optional ``name`` and ``meta``
    (``load_genotype`` and ``squeezenas train --model`` read it)."""
    d = genotype.to_dict()
    if name:
        d["name"] = name
    if meta:
        d["meta"] = meta
    atomic_write_json(path, d)


def _theta_entry(net: nn.Module, epoch: int, theta_step: int, temperature: float) -> dict[str, Any]:
    return {"epoch": epoch, "theta_step": theta_step, "temperature": temperature,
            "probabilities": [[round(v, 6) for v in row] for row in net.probabilities().detach().cpu().tolist()],
            "alive": net.alive.cpu().tolist()}


def _bar(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)
