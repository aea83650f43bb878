"""Candidate codes: ``k{kernel}_d{dilation}_e{expansion}_g{groups}`` and ``skip``, parsed into frozen specs."""

from __future__ import annotations

import re
from dataclasses import dataclass

SKIP = "skip"

# The 13 candidates of every searched position, in the order used for architecture parameters θ.
CANDIDATES: tuple[str, ...] = (
    "k3_d1_e1_g2", "k3_d1_e1_g1", "k3_d1_e3_g1", "k3_d1_e6_g1",
    "k5_d1_e1_g2", "k5_d1_e1_g1", "k5_d1_e3_g1", "k5_d1_e6_g1",
    "k3_d2_e1_g2", "k3_d2_e1_g1", "k3_d2_e3_g1", "k3_d2_e6_g1",
    SKIP,
)

_CODE = re.compile(r"^k(\d+)_d(\d+)_e(\d+(?:\.\d+)?)_g(\d+)$")


@dataclass(frozen=True)
class OpSpec:
    """One candidate: an inverted-residual block (kernel, dilation, expansion, groups) or ``skip``."""

    kernel: int = 0
    dilation: int = 0
    expansion: float = 0
    groups: int = 0
    is_skip: bool = False

    @property
    def code(self) -> str:
        if self.is_skip:
            return SKIP
        e = int(self.expansion) if float(self.expansion).is_integer() else self.expansion
        return f"k{self.kernel}_d{self.dilation}_e{e}_g{self.groups}"

    def __str__(self) -> str:
        return self.code

    def hidden(self, c_in: int) -> int:
        """Width of the expanded representation: round(C_in · e)."""
        return int(round(c_in * self.expansion))


def parse_op(code: str) -> OpSpec:
    """Parse a candidate code; any well-formed ``k?_d?_e?_g?`` is accepted, not only the 12 searched ones."""
    if code == SKIP:
        return OpSpec(is_skip=True)
    m = _CODE.match(str(code))
    if not m:
        raise ValueError(
            f"bad candidate code {code!r}: expected 'skip' or 'k<kernel>_d<dilation>_e<expansion>_g<groups>', "
            f"e.g. 'k3_d2_e6_g1' (searched codes: {', '.join(CANDIDATES)})"
        )
    k, d, e, g = int(m[1]), int(m[2]), float(m[3]), int(m[4])
    if k % 2 == 0 or k < 1 or d < 1 or e <= 0 or g < 1:
        raise ValueError(f"bad candidate code {code!r}: kernel must be odd and dilation, expansion, groups positive")
    return OpSpec(kernel=k, dilation=d, expansion=e, groups=g)
