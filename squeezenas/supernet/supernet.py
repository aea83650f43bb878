"""The supernetwork: the macro-architecture with a superblock at every searched position, θ, Gumbel weights, pruning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from squeezenas.models.builder import SegmentationNet
from squeezenas.space.genotype import Genotype, GenotypeError
from squeezenas.space.macro import MacroArch, get_macro
from squeezenas.supernet.fused import FusedOptions
from squeezenas.supernet.superblock import SampledPath, SuperBlock

ARCH_NAMES = ("theta", "theta_cost")  # the architecture parameters; every other parameter is a weight
VIEWS = ("total", "accuracy", "cost", "preference")


class SuperNet(SegmentationNet):
    """Stem → one ``SuperBlock`` per searched position → last conv → decoder, plus θ and the alive mask.

    Parameter names are those of ``SegmentationNet`` with ``candidates.{code}.`` inside each position
    (``encoder.blocks.3.candidates.k3_d2_e6_g1.op.0.weight``), so any path maps to the keys of
    ``build_model(genotype)`` by dropping that infix.

    ``theta`` (P, C) are the architecture parameters (C = ``len(macro.candidates)``, in that order);
    ``alive`` (P, C, bool buffer) marks candidates not pruned. Pruned candidates have no module, no
    parameters, probability 0 and mixture weight 0. Both are in ``state_dict``; loading a state dict first
    prunes (or re-creates) candidates to match its ``alive``, so a pruned search resumes exactly.
    """

    def __init__(self, macro: MacroArch | str, num_classes: int, fused: bool = True,
                 fused_options: FusedOptions | None = None, split_theta: bool = False):
        if isinstance(macro, str):
            macro = get_macro(macro)
        options = fused_options if fused_options is not None else FusedOptions()
        blocks = [SuperBlock(p, macro.candidates, fused=fused, options=options) for p in macro.positions()]
        super().__init__(macro, blocks, num_classes)  # also initialises every candidate's convs and BNs
        P, C = macro.num_positions, len(macro.candidates)
        self.theta = nn.Parameter(torch.zeros(P, C))
        # split θ: the distribution's logits are θ + θ_cost; the cross-entropy moves θ only, the cost term (or
        # the target projection) θ_cost only, so θ alone says what accuracy prefers (pruning looks there)
        self.theta_cost = nn.Parameter(torch.zeros(P, C)) if split_theta else None
        self.register_buffer("alive", torch.ones(P, C, dtype=torch.bool))
        self.fused_options = options  # shared by every superblock: how the fused mixture runs (same results)
        self.register_load_state_dict_pre_hook(_match_alive_before_loading)

    # --- parts ------------------------------------------------------------------------------------------------
    @property
    def superblocks(self) -> list[SuperBlock]:
        return list(self.encoder.blocks)

    @property
    def codes(self) -> tuple[str, ...]:
        return self.macro.candidates

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.theta] if self.theta_cost is None else [self.theta, self.theta_cost]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name not in ARCH_NAMES]

    # --- the distribution -------------------------------------------------------------------------------------
    def logits(self, view: str = "total") -> torch.Tensor:
        """The distribution's logits over alive candidates (−inf for pruned ones), as one part of the loss sees
        them. With split θ: "total" θ + θ_cost; "accuracy" the same with θ_cost held fixed (the cross-entropy's
        view: its gradient reaches θ only); "cost" with θ held fixed (the cost's view: its gradient reaches
        θ_cost only); "preference" θ alone (what accuracy prefers, for pruning). With one θ every view is θ."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        theta, cost = self.theta, self.theta_cost
        if cost is not None and view != "preference":
            theta = {"total": theta + cost, "accuracy": theta + cost.detach(), "cost": theta.detach() + cost}[view]
        return theta.masked_fill(~self.alive, float("-inf"))

    def probabilities(self, view: str = "total") -> torch.Tensor:
        """p(i, j) = softmax over alive candidates of the logits (``logits(view)``); 0 for pruned ones."""
        return torch.softmax(self.logits(view), dim=-1)

    def gumbel_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """g ~ Gumbel(0, 1) of shape (batch, P, C), drawn on the generator's device (θ's without one), so a seeded
        CPU generator gives the same draws on any device."""
        device = generator.device if generator is not None else self.theta.device
        u = torch.rand((batch, *self.theta.shape), generator=generator, device=device, dtype=torch.float32)
        tiny = torch.finfo(torch.float32).tiny
        return (-torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))).to(self.theta.device)  # finite

    def gumbel_weights(self, noise: torch.Tensor, temperature: float, view: str = "accuracy") -> torch.Tensor:
        """softmax((logits + g) / t) for noise g (N, P, C): the relaxed one-hot samples; 0 on pruned candidates."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        return torch.softmax((self.logits(view) + noise) / temperature, dim=-1)

    def sample_weights(self, batch: int, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample Gumbel-softmax weights softmax((θ + g) / t), g ~ Gumbel(0, 1): shape (N, P, C).
        Pruned candidates get weight 0. Differentiable w.r.t. θ."""
        return self.gumbel_weights(self.gumbel_noise(batch, generator), temperature)

    def sample_path(self, noise: torch.Tensor, temperature: float) -> list[SampledPath]:
        """One candidate per position for a whole batch: the argmax of the Gumbel-perturbed logits (noise (P, C)),
        with a gate of value 1 whose gradient is that of the relaxed weight (straight-through, as in GDAS and
        FBNetV2): only the sampled candidates are computed, and θ learns from their outputs."""
        soft = self.gumbel_weights(noise.unsqueeze(0), temperature)[0]  # (P, C)
        index = soft.detach().argmax(dim=-1).tolist()
        return [SampledPath(self.codes[j], 1.0 - soft[i, j].detach() + soft[i, j]) for i, j in enumerate(index)]

    def expected_cost(self, cost: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """L_E = Σ_i Σ_j p(i, j) · C(i, j) over the cost's view of the distribution, or over ``weights``
        ((N, P, C) relaxed samples, averaged over N); gradients flow into θ only (``cost`` is a constant)."""
        cost = torch.as_tensor(cost, dtype=self.theta.dtype, device=self.theta.device).detach()
        if cost.shape != self.theta.shape:
            raise ValueError(f"cost table must be {tuple(self.theta.shape)} (positions × candidates), "
                             f"got {tuple(cost.shape)}")
        cost = cost.masked_fill(~self.alive, 0.0)  # a pruned candidate's cost (even inf/NaN) never counts
        p = self.probabilities("cost") if weights is None else weights.mean(dim=0)
        return (p * cost).sum()

    # --- forward ----------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, temperature: float = 1.0, weights: torch.Tensor | None = None,
                generator: torch.Generator | None = None, path: list[SampledPath] | None = None) -> torch.Tensor:
        """Logits (N, classes, H, W). Mixture with per-sample Gumbel weights drawn at ``temperature`` (or the
        given ``weights`` (N, P, C)); with ``path`` (``sample_path``), those sampled candidates alone; with a
        path set (``set_path``), that discrete network."""
        if self.is_path_set:
            return super().forward(x)
        if path is None:
            if weights is None:
                weights = self.sample_weights(x.shape[0], temperature, generator)
            path = weights.unbind(dim=1)  # position i mixes with weights[:, i]
        high, low = self.encoder(x, path)
        return self.decoder(high, low, x.shape[-2:])

    # --- discrete paths ---------------------------------------------------------------------------------------
    @property
    def is_path_set(self) -> bool:
        return any(b.path is not None for b in self.superblocks)

    def _check_genotype(self, genotype: Genotype) -> None:
        if genotype.macro_arch != self.macro:
            raise GenotypeError(f"genotype is for macro {genotype.macro_name!r}, this supernet for {self.macro.name!r}")

    def set_path(self, genotype: Genotype | None) -> None:
        """Run one discrete architecture (for sampling / scoring); ``None`` returns to the mixture."""
        if genotype is None:
            for b in self.superblocks:
                b.set_path(None)
            return
        for i, code in self.pruned_in(genotype)[:1]:
            raise GenotypeError(f"position {i}: candidate {code!r} was pruned "
                                f"(alive: {', '.join(self.superblocks[i].alive_codes)})")
        for b, code in zip(self.superblocks, genotype.ops):
            b.set_path(code)

    def pruned_in(self, genotype: Genotype) -> list[tuple[int, str]]:
        """The (position, code) pairs of ``genotype`` whose candidates this supernet pruned: it can run the
        genotype (``set_path``) only when there are none."""
        self._check_genotype(genotype)
        return [(b.position.index, code) for b, code in zip(self.superblocks, genotype.ops)
                if code not in b.candidates]

    def derive(self) -> Genotype:
        """The most probable architecture: argmax of θ over alive candidates at every position."""
        idx = self.logits().argmax(dim=-1).tolist()
        return Genotype(self.macro, tuple(self.codes[j] for j in idx))

    # --- pruning ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def prune(self, threshold: float = 0.005, view: str = "total") -> list[tuple[int, str]]:
        """Remove candidates whose probability (in ``view``: "preference" asks what accuracy alone prefers) is
        below ``threshold`` (never the last alive one at a position, which is the most probable). Their modules
        are deleted: never computed again, parameters freed. Returns the removed (position, code) pairs. An
        optimizer holding their parameters keeps stale references that simply get no gradient (SGD/Adam skip
        them); rebuild it to free their state too."""
        p = self.probabilities(view)
        removed: list[tuple[int, str]] = []
        for i, block in enumerate(self.superblocks):
            alive = self.alive[i].nonzero().flatten().tolist()
            keep = max(alive, key=lambda j: p[i, j].item())
            for j in sorted(alive, key=lambda j: p[i, j].item()):
                if j != keep and p[i, j].item() < threshold:
                    self._remove(i, j)
                    removed.append((i, self.codes[j]))
        return removed

    def prune_to(self, keep: int) -> list[tuple[int, str]]:
        """Keep only the ``keep`` most probable candidates at every position (benchmarks, tests, manual use)."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        removed: list[tuple[int, str]] = []
        with torch.no_grad():
            theta = self.logits("accuracy")
            for i in range(len(self.superblocks)):
                alive = self.alive[i].nonzero().flatten().tolist()
                for j in sorted(alive, key=lambda j: (theta[i, j].item(), -j))[: max(0, len(alive) - keep)]:
                    self._remove(i, j)
                    removed.append((i, self.codes[j]))
        return removed

    def _remove(self, i: int, j: int) -> None:
        self.superblocks[i].remove(self.codes[j])
        self.alive[i, j] = False

    def num_alive(self) -> list[int]:
        return self.alive.sum(dim=1).tolist()


def _match_alive_before_loading(module: SuperNet, state_dict: dict, prefix: str, *args) -> None:
    """Load-state-dict pre-hook: prune or re-create candidates so the module tree matches the incoming ``alive``."""
    key = prefix + "alive"
    if key not in state_dict:
        return
    alive = state_dict[key].to(torch.bool)
    if alive.shape != module.alive.shape:
        return  # the regular shape check reports it
    if not alive.any(dim=1).all():
        raise ValueError("state dict 'alive' leaves a position with no candidate")
    for i, block in enumerate(module.superblocks):
        for j, code in enumerate(module.codes):
            if bool(alive[i, j]) and code not in block.candidates:
                block.restore(code)
        for j, code in enumerate(module.codes):
            if not bool(alive[i, j]) and code in block.candidates:
                block.remove(code)
    module.alive.copy_(alive)
