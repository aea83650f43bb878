"""The supernetwork: the macro-architecture with a superblock at every searched position, θ, Gumbel weights, pruning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from squeezenas.models.builder import SegmentationNet
from squeezenas.space.genotype import Genotype, GenotypeError
from squeezenas.space.macro import MacroArch, get_macro
from squeezenas.supernet.fused import FusedOptions
from squeezenas.supernet.superblock import SuperBlock


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
                 fused_options: FusedOptions | None = None):
        if isinstance(macro, str):
            macro = get_macro(macro)
        options = fused_options if fused_options is not None else FusedOptions()
        blocks = [SuperBlock(p, macro.candidates, fused=fused, options=options) for p in macro.positions()]
        super().__init__(macro, blocks, num_classes)  # also initialises every candidate's convs and BNs
        P, C = macro.num_positions, len(macro.candidates)
        self.theta = nn.Parameter(torch.zeros(P, C))
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
        return [self.theta]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "theta"]

    # --- the distribution -------------------------------------------------------------------------------------
    def _masked_theta(self) -> torch.Tensor:
        return self.theta.masked_fill(~self.alive, float("-inf"))

    def probabilities(self) -> torch.Tensor:
        """p(i, j) = softmax over alive candidates of θ_i; 0 for pruned ones. Differentiable w.r.t. θ."""
        return torch.softmax(self._masked_theta(), dim=-1)

    def sample_weights(self, batch: int, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample Gumbel-softmax weights softmax((θ + g) / t), g ~ Gumbel(0, 1): shape (N, P, C).

        Noise is drawn on the generator's device (θ's without one), so a seeded CPU generator gives the same
        draws on any device. Pruned candidates get weight 0. Differentiable w.r.t. θ.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        device = generator.device if generator is not None else self.theta.device
        u = torch.rand((batch, *self.theta.shape), generator=generator, device=device, dtype=torch.float32)
        tiny = torch.finfo(torch.float32).tiny
        g = -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))  # Gumbel(0, 1), finite
        g = g.to(self.theta.device)
        return torch.softmax((self._masked_theta() + g) / temperature, dim=-1)

    def expected_cost(self, cost: torch.Tensor) -> torch.Tensor:
        """L_E = Σ_i Σ_j p(i, j) · C(i, j); gradients flow into θ only (``cost`` is a constant table)."""
        cost = torch.as_tensor(cost, dtype=self.theta.dtype, device=self.theta.device).detach()
        if cost.shape != self.theta.shape:
            raise ValueError(f"cost table must be {tuple(self.theta.shape)} (positions × candidates), "
                             f"got {tuple(cost.shape)}")
        cost = cost.masked_fill(~self.alive, 0.0)  # a pruned candidate's cost (even inf/NaN) never counts
        return (self.probabilities() * cost).sum()

    # --- forward ----------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, temperature: float = 1.0, weights: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (N, classes, H, W). Mixture with per-sample Gumbel weights drawn at ``temperature`` (or the
        given ``weights`` (N, P, C)); with a path set (``set_path``), that discrete network."""
        if self.is_path_set:
            return super().forward(x)
        if weights is None:
            weights = self.sample_weights(x.shape[0], temperature, generator)
        high, low = self.encoder(x, weights)
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
        self._check_genotype(genotype)
        for b, code in zip(self.superblocks, genotype.ops):
            if code not in b.candidates:
                raise GenotypeError(f"position {b.position.index}: candidate {code!r} was pruned "
                                    f"(alive: {', '.join(b.alive_codes)})")
        for b, code in zip(self.superblocks, genotype.ops):
            b.set_path(code)

    def derive(self) -> Genotype:
        """The most probable architecture: argmax of θ over alive candidates at every position."""
        idx = self._masked_theta().argmax(dim=-1).tolist()
        return Genotype(self.macro, tuple(self.codes[j] for j in idx))

    # --- pruning ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def prune(self, threshold: float = 0.005) -> list[tuple[int, str]]:
        """Remove candidates whose probability is below ``threshold`` (never the last alive one at a position,
        which is the most probable). Their modules are deleted: never computed again, parameters freed.
        Returns the removed (position, code) pairs. An optimizer holding their parameters keeps stale
        references that simply get no gradient (SGD/Adam skip them); rebuild it to free their state too."""
        p = self.probabilities()
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
            theta = self._masked_theta()
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
