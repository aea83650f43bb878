"""One searched position of the supernet: every candidate, built by ``build_op``, mixed per sample or run alone."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from squeezenas.models.blocks import Identity, InvertedResidual, build_op
from squeezenas.space.macro import PositionSpec
from squeezenas.supernet.fused import FusedOptions, fused_mixture


class SampledPath(NamedTuple):
    """The candidate a position runs for a batch in the supernet's path mode, and its gate (1 in value)."""

    code: str
    gate: torch.Tensor


class SuperBlock(nn.Module):
    """All candidates of one position, each a module from ``build_op`` with its own weights.

    Mixture (``weights`` given, shape (N, len(codes)), zero on pruned candidates):
    ``out = Σ_j w_j · branch_j(x)`` (+ ``x`` once where stride is 1 and C_in = C_out). A branch is the
    candidate without its own residual; the identity ``skip`` is then a zero branch, so ``w_skip = 1`` gives
    ``x``. Elsewhere ``skip`` is its shape-changing form (``ChannelSkip``, ``FactorizedReduce``) and is weighted
    like the others. Path (``weights`` None, ``set_path(code)`` before): the one candidate, exactly as in a
    standalone network.

    ``fused=True`` computes the mixture with ``supernet/fused.py`` (wide kernels or cache-friendly chains, the
    expansion BN folded into its conv); ``False`` runs ``forward_reference``, candidate by candidate through the
    modules. Both read the same per-candidate parameters and give the same values and gradients.
    Candidates live in ``self.candidates`` (a ModuleDict keyed by code); pruning deletes their module.
    """

    def __init__(self, position: PositionSpec, codes: Sequence[str], fused: bool = True,
                 options: FusedOptions | None = None):
        super().__init__()
        self.position = position
        self.codes: tuple[str, ...] = tuple(codes)  # every candidate of the space, in θ order (pruned included)
        self.residual = position.is_identity_skip
        self.fused = fused
        self.options = options if options is not None else FusedOptions()  # how the fused mixture runs
        self.candidates = nn.ModuleDict(
            {c: build_op(c, position.c_in, position.c_out, position.stride) for c in self.codes}
        )
        self.path: str | None = None
        self._plan = None  # fused layout, rebuilt lazily after pruning / loading

    # --- which candidates are present -------------------------------------------------------------------------
    @property
    def alive_codes(self) -> list[str]:
        return [c for c in self.codes if c in self.candidates]

    def remove(self, code: str) -> None:
        """Delete a candidate's module: it is never computed again and its parameters are freed."""
        if code not in self.candidates:
            return
        if len(self.candidates) == 1:
            raise ValueError(f"position {self.position.index}: cannot remove the last candidate {code!r}")
        if self.path == code:
            self.path = None
        del self.candidates[code]
        self._plan = None

    def restore(self, code: str) -> None:
        """Re-create a removed candidate (fresh weights, on this block's device), e.g. to load a checkpoint."""
        if code in self.candidates:
            return
        p = self.position
        module = build_op(code, p.c_in, p.c_out, p.stride)
        ref = next(self.parameters(), None)
        if ref is not None:
            module = module.to(device=ref.device, dtype=ref.dtype)
            conv = next((q for q in self.parameters() if q.dim() == 4), None)
            if conv is not None and not conv.is_contiguous() and conv.is_contiguous(memory_format=torch.channels_last):
                module = module.to(memory_format=torch.channels_last)
        # keep θ order in the ModuleDict so state-dict key order does not depend on history
        mods = {c: (module if c == code else self.candidates[c]) for c in self.codes if c in self.candidates or c == code}
        self.candidates = nn.ModuleDict(mods)
        self._plan = None

    def set_path(self, code: str | None) -> None:
        if code is not None and code not in self.candidates:
            state = "pruned" if code in self.codes else "not a candidate"
            raise ValueError(f"position {self.position.index}: candidate {code!r} is {state} "
                             f"(alive: {', '.join(self.alive_codes)})")
        self.path = code

    # --- forward ----------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, weights: torch.Tensor | SampledPath | None = None) -> torch.Tensor:
        if isinstance(weights, SampledPath):  # one sampled candidate, whole (its residual included)
            return weights.gate * self.candidates[weights.code](x)
        if weights is None:
            if self.path is None:
                raise RuntimeError(f"position {self.position.index}: no mixture weights and no fixed path "
                                   "(pass weights, or call set_path first)")
            return self.candidates[self.path](x)
        if weights.dim() != 2 or weights.shape[1] != len(self.codes):
            raise ValueError(f"position {self.position.index}: weights must be (N, {len(self.codes)}), "
                             f"got {tuple(weights.shape)}")
        if self.fused:
            return fused_mixture(self, x, weights)
        return self.forward_reference(x, weights)

    def branch(self, code: str, x: torch.Tensor) -> torch.Tensor:
        """Candidate ``code`` applied to ``x`` without its residual (the term that the mixture weights)."""
        m = self.candidates[code]
        if isinstance(m, InvertedResidual):
            return m.op(x)
        return m(x)

    def forward_reference(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The mixture computed candidate by candidate: the semantics the fused path must reproduce."""
        out = None
        for j, code in enumerate(self.codes):
            if code not in self.candidates or self._is_zero_branch(code):
                continue
            term = weights[:, j].to(x.dtype).view(-1, 1, 1, 1) * self.branch(code, x)
            out = term if out is None else out + term
        if self.residual:
            return x if out is None else x + out
        if out is None:  # cannot happen: a non-identity position has no zero branch
            raise RuntimeError("empty mixture")
        return out

    def _is_zero_branch(self, code: str) -> bool:
        return isinstance(self.candidates[code], Identity)

    def extra_repr(self) -> str:
        p = self.position
        return (f"position={p.index}, c_in={p.c_in}, c_out={p.c_out}, stride={p.stride}, "
                f"alive={len(self.candidates)}/{len(self.codes)}, fused={self.fused}")

