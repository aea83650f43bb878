"""The state a search carries from step to step, and its checkpoint: written after every epoch, restored on
resume (RNG states included, so a resumed search equals an uninterrupted one bit for bit), and read back by
the sample step (``load_search``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from squeezenas.search.config import SearchConfig
from squeezenas.search.objective import CostModel, TargetProjector
from squeezenas.space.macro import MacroArch
from squeezenas.supernet import SuperNet
from squeezenas.utils.config import ConfigError, from_dict, to_dict
from squeezenas.utils.io import atomic_torch_save, safe_torch_load

FORMAT = "squeezenas-search"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
# config fields that may change between a run and its resumption without changing its results
RESUME_FREE = ("out", "progress", "tensorboard", "log_every", "device", "workers", "channels_last", "world_size")


def weight_optimizer(net: Any, cfg: SearchConfig) -> torch.optim.Optimizer:
    """SGD on the supernet's (surviving) weights."""
    return torch.optim.SGD(net.weight_parameters(), lr=cfg.base_lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _rebuild_sgd(old: torch.optim.Optimizer, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """A new SGD over ``params`` (after pruning deleted modules) carrying the surviving parameters' momentum."""
    group = {k: v for k, v in old.param_groups[0].items() if k != "params"}
    new = torch.optim.SGD(params, **group)
    for p in params:
        if p in old.state:
            new.state[p] = old.state[p]
    return new


@dataclass
class SearchState:
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
    scaler: Any = None  # float16 gradient scaling (``amp`` on CUDA; a disabled GradScaler passes through)

    @classmethod
    def start(cls, net: Any, cfg: SearchConfig, alpha: float, projector: TargetProjector | None) -> SearchState:
        """The state before the first step: SGD on the weights, Adam on θ (no weight decay)."""
        opt_w = weight_optimizer(net, cfg)
        opt_t = torch.optim.Adam(net.arch_parameters(), lr=cfg.theta_lr, weight_decay=0.0)
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and net.theta.is_cuda)
        return cls(net, opt_w, opt_t, alpha, projector, memory_format=cfg.memory_format, scaler=scaler)

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "supernet": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "opt_w": self.opt_w.state_dict(), "opt_theta": self.opt_t.state_dict(), "alpha": self.alpha,
            "projector": self.projector.state_dict() if self.projector is not None else None,
            "epoch": self.epoch, "step": self.step, "theta_step": self.theta_step, "rng": rng_state(),
            "history": self.history, "theta_history": self.theta_history, "pruned": [list(x) for x in self.pruned],
            "scaler": self.scaler.state_dict() if self.scaler is not None and self.scaler.is_enabled() else None,
        }

    def restore(self, ckpt: dict[str, Any], cfg: SearchConfig) -> None:
        self.net.load_state_dict(ckpt["supernet"])  # prunes to the saved alive mask first
        self.opt_w = weight_optimizer(self.net, cfg)  # over the surviving weights, in the order the saved state uses
        self.opt_w.load_state_dict(ckpt["opt_w"])
        self.opt_t.load_state_dict(ckpt["opt_theta"])
        self.alpha = float(ckpt["alpha"])
        self.projector = TargetProjector.from_state(ckpt["projector"]) if ckpt["projector"] is not None else None
        self.epoch, self.step, self.theta_step = int(ckpt["epoch"]), int(ckpt["step"]), int(ckpt["theta_step"])
        self.history, self.theta_history = list(ckpt["history"]), list(ckpt["theta_history"])
        self.pruned = [(int(e), int(i), str(c)) for e, i, c in ckpt["pruned"]]
        if ckpt.get("scaler") and self.scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])

    def project(self, cost: Any) -> None:
        """The target projection after a θ-step; with split θ the tilt lands on θ_cost."""
        net = self.net
        if net.theta_cost is None:
            self.projector.project(net.theta.data, net.alive, cost, self.theta_step)
        else:
            self.projector.project(net.theta_cost.data, net.alive, cost, self.theta_step, offset=net.theta.data)

    def prune(self, threshold: float) -> list[tuple[int, str]]:
        """Remove candidates below ``threshold``; the SGD is rebuilt over the surviving weights (momentum kept)."""
        removed = self.net.prune(threshold, view="preference")
        if removed:
            self.opt_w = _rebuild_sgd(self.opt_w, self.net.weight_parameters())
        return removed


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, st: SearchState, cfg: SearchConfig, macro: MacroArch, num_classes: int,
                    cost: CostModel, size: tuple[int, int]) -> None:
    """The search after an epoch, atomically; ``torch.load(weights_only=True)`` reads it."""
    atomic_torch_save({"format": FORMAT, "version": VERSION, "config": to_dict(cfg), "macro": macro.to_dict(),
                       "num_classes": num_classes, **st.to_checkpoint(),
                       "cost": {"kind": cost.table.kind, "unit": cost.unit, "e_ref": cost.e_ref,
                                "fixed": cost.fixed, "size": list(size)}}, path)


def check_resume_config(saved: dict[str, Any], cfg: SearchConfig, where: str) -> None:
    """A resumed search must be the same search: every field except RESUME_FREE must match. A field the saved
    config lacks (written by a version before the field existed) counts as its default, which is what that
    version did."""
    now = to_dict(cfg)
    defaults = to_dict(SearchConfig())
    saved = {**{k: defaults[k] for k in now if k not in saved}, **saved}
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
    folder = Path(folder)
    ckpt = load_search_checkpoint(folder / CHECKPOINT)
    cfg = from_dict(SearchConfig, ckpt["config"], where=f"{folder / CHECKPOINT}: config")
    macro = MacroArch.from_dict(ckpt["macro"], where=f"{folder / CHECKPOINT}: macro")
    net = SuperNet(macro, int(ckpt["num_classes"]), fused=cfg.fused, split_theta=cfg.theta == "split")
    net.load_state_dict(ckpt["supernet"])
    return net.to(device, memory_format=cfg.memory_format), cfg, ckpt
