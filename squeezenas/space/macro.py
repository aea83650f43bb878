"""Macro-architectures: stem, stages of searched positions, low-level tap and decoder, as frozen data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from squeezenas.space.ops import CANDIDATES, parse_op
from squeezenas.utils.config import ConfigError, from_dict, load_mapping, to_dict
from squeezenas.utils.registry import Registry

DECODERS = ("lr_aspp", "aspp")


# Bounds on a user's macro-architecture: far above any network of the paper (at most 320 channels, 4 repeats,
# 6 stages, 4 downsamplings), low enough that a typo cannot make a network that hangs the machine or runs it out
# of memory when it is built.
MAX_CHANNELS, MAX_REPEATS, MAX_STAGES, MAX_DOWNSAMPLING = 4096, 16, 16, 6


@dataclass(frozen=True)
class Stage:
    """``repeats`` searched positions with ``channels`` outputs; the first has ``stride``, the others 1."""

    channels: int
    repeats: int
    stride: int = 1


@dataclass(frozen=True)
class DecoderSpec:
    """``lr_aspp`` (LR-ASPP, as in MobileNetV3) or ``aspp`` (depthwise ASPP + low-level fusion)."""

    name: str = "lr_aspp"
    channels: int = 128


@dataclass(frozen=True)
class PositionSpec:
    """What one searched position sees: its index, channels in and out, stride and stage."""

    index: int
    c_in: int
    c_out: int
    stride: int
    stage: int

    @property
    def is_identity_skip(self) -> bool:
        """True where ``skip`` is the identity (and blocks get a residual connection)."""
        return self.stride == 1 and self.c_in == self.c_out


@dataclass(frozen=True)
class MacroArch:
    """A macro-architecture: everything about a network except the candidate chosen at each position."""

    name: str
    stem_channels: int
    stages: tuple[Stage, ...]
    low_level_position: int  # index of the searched position whose output feeds the decoder's low-level branch
    decoder: DecoderSpec = field(default_factory=DecoderSpec)
    last_channels: int | None = None  # optional 1×1 Conv-BN-ReLU after the last position
    candidates: tuple[str, ...] = CANDIDATES  # choices at every position, in θ order

    def __post_init__(self):
        where = f"macro-architecture {self.name!r}"
        if not self.stages:
            raise ConfigError(f"{where}: 'stages' is empty")
        for i, s in enumerate(self.stages):
            if not (1 <= s.channels <= MAX_CHANNELS and 1 <= s.repeats <= MAX_REPEATS and s.stride in (1, 2)):
                raise ConfigError(f"{where}: stage {i} {s} needs channels in 1..{MAX_CHANNELS}, repeats in "
                                  f"1..{MAX_REPEATS} and stride 1 or 2")
        if len(self.stages) > MAX_STAGES or sum(s.stride == 2 for s in self.stages) > MAX_DOWNSAMPLING:
            raise ConfigError(f"{where}: at most {MAX_STAGES} stages and {MAX_DOWNSAMPLING} of stride 2")
        for name, value in (("stem_channels", self.stem_channels), ("decoder.channels", self.decoder.channels),
                            ("last_channels", self.last_channels or 1)):
            if not 1 <= value <= MAX_CHANNELS:
                raise ConfigError(f"{where}: '{name}' must lie in 1..{MAX_CHANNELS}, got {value}")
        if not 0 <= self.low_level_position < self.num_positions:
            raise ConfigError(
                f"{where}: 'low_level_position' {self.low_level_position} is outside 0..{self.num_positions - 1}"
            )
        if self.decoder.name not in DECODERS:
            raise ConfigError(f"{where}: unknown decoder {self.decoder.name!r} (known: {', '.join(DECODERS)})")
        if len(set(self.candidates)) != len(self.candidates) or not self.candidates:
            raise ConfigError(f"{where}: 'candidates' must be a non-empty list of distinct codes")
        for c in self.candidates:
            try:
                parse_op(c)
            except ValueError as e:
                raise ConfigError(f"{where}: {e}") from None

    @property
    def num_positions(self) -> int:
        return sum(s.repeats for s in self.stages)

    def positions(self) -> list[PositionSpec]:
        out, c_in, i = [], self.stem_channels, 0
        for si, stage in enumerate(self.stages):
            for r in range(stage.repeats):
                out.append(PositionSpec(i, c_in, stage.channels, stage.stride if r == 0 else 1, si))
                c_in, i = stage.channels, i + 1
        return out

    @property
    def high_channels(self) -> int:
        """Channels of the encoder output fed to the decoder."""
        return self.last_channels or self.stages[-1].channels

    @property
    def low_channels(self) -> int:
        return self.positions()[self.low_level_position].c_out

    @property
    def output_stride(self) -> int:
        return 2 * math.prod(s.stride for s in self.stages)

    def input_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Spatial size of the input each position sees for a network input of height × width."""
        h, w = math.ceil(height / 2), math.ceil(width / 2)  # after the stride-2 stem
        sizes = []
        for p in self.positions():
            sizes.append((h, w))
            if p.stride == 2:
                h, w = math.ceil(h / 2), math.ceil(w / 2)
        return sizes

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "macro") -> MacroArch:
        return from_dict(cls, data, where)


MACROS: Registry[MacroArch] = Registry("macro-architecture")


def _register(m: MacroArch) -> None:
    MACROS.register(m.name, m)


# The three spaces of the paper as SPEC.md defines them (they reproduce the published MACs and released weights).
_register(MacroArch(
    name="small", stem_channels=16,
    stages=(Stage(16, 4, 2), Stage(24, 4, 2), Stage(40, 4, 2), Stage(48, 4, 1), Stage(96, 4, 1)),
    low_level_position=7, last_channels=256, decoder=DecoderSpec("lr_aspp", 128),
))
_register(MacroArch(
    name="large", stem_channels=16,
    stages=(Stage(16, 1, 1), Stage(24, 4, 2), Stage(32, 4, 2), Stage(64, 4, 2), Stage(96, 4, 1),
            Stage(160, 4, 1), Stage(160, 1, 1)),
    low_level_position=8, decoder=DecoderSpec("lr_aspp", 128),
))
_register(MacroArch(
    name="xlarge", stem_channels=48,
    stages=(Stage(24, 1, 1), Stage(32, 4, 2), Stage(48, 4, 2), Stage(96, 4, 2), Stage(144, 4, 1),
            Stage(240, 4, 1), Stage(320, 1, 1)),
    low_level_position=4, decoder=DecoderSpec("aspp", 160),
))


def get_space(spec: str | Path | MacroArch) -> MacroArch:
    """The one way to name a space: a registered macro-architecture (small, large, xlarge), a YAML/JSON file
    describing a user-defined one, or a MacroArch (returned as it is)."""
    if isinstance(spec, MacroArch):
        return spec
    if str(spec) in MACROS:
        return MACROS.get(str(spec))
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"{str(spec)!r} is neither a known macro-architecture ({', '.join(MACROS.names())}) "
                          "nor an existing YAML/JSON file")
    data = load_mapping(path)
    data.setdefault("name", path.stem)
    return MacroArch.from_dict(data, where=str(path))


get_macro = load_macro = get_space  # the names of earlier releases
