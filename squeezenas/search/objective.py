"""What the search optimises: the cost model (a cost table as the loss uses it), the loss terms, the cost
target's projection, and the schedules of the temperature and the weights' learning rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from squeezenas.cost.tables import CostTable, CostTableError
from squeezenas.search.config import SearchConfig
from squeezenas.space.macro import MacroArch, get_space
from squeezenas.utils.config import ConfigError

TABLE_KINDS = {"mac": "macs", "latency": "latency"}  # config ``cost`` → CostTable.kind


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


# --- the cost table a search uses ----------------------------------------------------------------------------


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

    macro = get_space(cfg.space)
    if cfg.cost == "mac":
        return mac_table(macro, resolve_size(cfg), num_classes=num_classes)
    if not cfg.lut:
        raise ConfigError("cost 'latency' needs a lookup table: --lut TABLE.json (build one with `squeezenas lut build`)")
    from squeezenas.cost.lut import load_lut

    table = load_lut(cfg.lut, warn_device=True)
    table.check_compatible(macro, resolve_size(cfg, table), where=str(cfg.lut))
    return table


def check_cost_table(cfg: SearchConfig, table: CostTable, macro: MacroArch, size: tuple[int, int],
                     num_classes: int | None = None) -> None:
    """The table must cost this space at the deployment size and class count, in the kind of cost the config
    names, with finite non-negative costs that tell the candidates apart."""
    where = str(cfg.lut) if table.kind == "latency" and cfg.lut else f"{table.kind} cost table"
    table.check_compatible(macro, size, where=where)
    table.check_values(where)
    built_for = table.meta.get("num_classes")
    if num_classes is not None and built_for is not None and int(built_for) != num_classes:
        raise CostTableError(f"{where} was built for {built_for} classes (the decoder's cost depends on them), "
                             f"the data has {num_classes}; build the table with --num-classes {num_classes}")
    if tuple(table.candidates) != tuple(macro.candidates):
        raise ValueError("the cost table's candidates differ from the space's")
    if TABLE_KINDS[cfg.cost] != table.kind:
        raise ValueError(f"the config says cost {cfg.cost!r} but the cost table is a {table.kind!r} table")


# --- the loss ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostModel:
    """The cost table as the loss uses it: C (P, C) on the search's device, the fixed parts, and ``e_ref``,
    the expected cost of the uniform distribution ("the mean network", ``CostTable.e_ref``). The normalised α
    multiplies E / e_ref, so α = 1 trades one nat of cross-entropy against the whole cost of the mean network;
    α_raw = α / e_ref per table unit."""

    table: CostTable
    matrix: torch.Tensor  # (P, C), raw table units
    fixed: float
    e_ref: float
    pairs: tuple = ()  # ``CostTable.pair_tensors`` on the search's device, float32 (none: no pair terms)

    @classmethod
    def from_table(cls, table: CostTable, device: torch.device | str = "cpu") -> CostModel:
        pairs = table.pair_tensors(torch.float32, device) if table.pairs else ()
        return cls(table, table.matrix(device), table.fixed_total, table.e_ref, pairs)

    def expected_pairs(self, p: torch.Tensor) -> torch.Tensor:
        """The table's expected pair cost under ``p`` (0 without pair terms), differentiable in ``p``."""
        if not self.pairs:
            return p.new_zeros(())
        return self.table.expected_pair_cost(p, tuple(tuple(t.to(p) for t in triple) for triple in self.pairs))

    @property
    def unit(self) -> str:
        return self.table.unit

    def expected(self, probabilities: torch.Tensor) -> float:
        """Raw expected cost fixed + Σ p·C (+ the table's pair terms) of a (P, C) distribution."""
        p = probabilities.detach().to(self.matrix)
        return self.fixed + float((p * self.matrix).sum() + self.expected_pairs(p))


def loss_terms(net: Any, cost: CostModel, alpha: float, image: torch.Tensor, mask: torch.Tensor,
               temperature: float, with_cost: bool, supernet: str = "mixture", through: str = "softmax", *,
               model: Any = None, path_noise: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel cross-entropy (ignore 255) of the Gumbel-sampled supernet — the mixture of every candidate with
    per-sample weights, or (``supernet`` "path") one sampled candidate per position for the batch — and
    α · E / e_ref (0 without cost), E over p(θ) or (``through`` "gumbel") over the same samples' relaxed weights.
    ``model`` runs the forward (the DDP wrapper of ``net`` under torchrun); ``path_noise`` draws the path mode's
    noise (a generator every process shares; None: the global one)."""
    forward = net if model is None else model
    if supernet == "path":
        noise = net.gumbel_noise(1, path_noise)
        logits = forward(image, path=net.sample_path(noise[0], temperature))
    else:
        noise = net.gumbel_noise(image.shape[0])
        logits = forward(image, weights=net.gumbel_weights(noise, temperature))
    ce = F.cross_entropy(logits, mask, ignore_index=255)
    if not with_cost or alpha == 0:
        return ce, torch.zeros((), device=ce.device)
    weights = net.gumbel_weights(noise, temperature, view="cost") if through == "gumbel" else None
    expected = net.expected_cost(cost.matrix, weights) + cost.fixed
    if cost.pairs:  # a runtime whose ops' costs depend on the block before them (CostTable.pairs)
        p = net.probabilities("cost") if weights is None else weights.mean(dim=0)
        expected = expected + cost.expected_pairs(p.to(cost.matrix))
    e_norm = expected / cost.e_ref
    return ce, alpha * e_norm


def cost_weight(alpha: float, theta_step: int, ramp_steps: int) -> float:
    """α at a θ-step: rising linearly from α/ramp_steps to α over the ramp, then α."""
    return alpha if ramp_steps <= 0 else alpha * min(1.0, (theta_step + 1) / ramp_steps)


def entropy(p: torch.Tensor) -> float:
    """Mean entropy (nats) of the per-position distributions."""
    return float(-(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).mean())


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
    def project(self, theta: torch.Tensor, alive: torch.Tensor, cost: CostModel, theta_step: int,
                offset: torch.Tensor | None = None) -> float:
        """Tilt ``theta`` in place so that the expected cost of softmax(``theta`` + ``offset``) equals (or, mode
        "max", does not exceed) the current target; returns λ. With split θ, ``theta`` is θ_cost and
        ``offset`` θ: the tilt lands on the cost's part."""
        c = (cost.matrix / cost.e_ref).to(torch.float64).to(theta.device)
        logits = theta.detach() if offset is None else theta.detach() + offset.detach()
        th = logits.to(torch.float64).masked_fill(~alive, float("-inf"))
        fixed = cost.fixed / cost.e_ref
        goal = self.target_at(theta_step) / cost.e_ref

        pair_tensors = tuple(tuple(t.to(c) for t in triple) for triple in cost.pairs)

        def e(lam: float) -> float:  # the tilt moves along C; the pair terms (if any) count in the expectation
            q = torch.softmax(th - lam * c, dim=-1)
            pairs = float(cost.table.expected_pair_cost(q, pair_tensors)) / cost.e_ref if pair_tensors else 0.0
            return fixed + float((q * c.masked_fill(~alive, 0.0)).sum()) + pairs

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


def ramp_steps(cfg: SearchConfig, total_theta_steps: int) -> int:
    """θ-steps over which the cost comes in (α and the target ramp; no pruning before they end)."""
    return int(round(cfg.cost_ramp * total_theta_steps))


def make_projector(cfg: SearchConfig, cost: CostModel, net: Any, size: tuple[int, int],
                   total_theta_steps: int) -> TargetProjector | None:
    """The projector of ``cfg.target`` (None without one); a target the space cannot reach is an error."""
    if cfg.target is None:
        return None
    table = cost.table
    target_raw = table.uncalibrate(cfg.target)
    lo, hi = table.bounds(net.alive)
    if not lo <= target_raw <= hi:
        raise ValueError(f"target {cfg.target:g} {cost.unit} lies outside what the space can reach at "
                         f"{size[0]}×{size[1]}: {table.calibrate(lo):.4g} … {table.calibrate(hi):.4g} {cost.unit}")
    return TargetProjector(target_raw, cost.expected(net.probabilities()),
                           ramp_steps(cfg, total_theta_steps), cfg.target_mode)
