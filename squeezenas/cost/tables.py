"""Cost tables: the cost of every candidate at every position plus the fixed parts, so that
predicted(network) = fixed + Σ_positions table[i][op_i] (+ the pair terms of a runtime whose ops' costs depend on
the block before them, ``CostTable.pairs``). MAC tables are computed; latency tables are measured (cost/lut/) and
share this structure."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from squeezenas.cost.counting import count_convs, count_costs
from squeezenas.models.blocks import build_op
from squeezenas.models.builder import build_model
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch, get_space
from squeezenas.space.ops import parse_op
from squeezenas.utils.io import atomic_write_json

SCHEMA_VERSION = 1
FIXED_PARTS = ("stem", "last_conv", "decoder")
# The one fixed cost that may be negative: in a table whose ops were timed after an adapter, what the adapters
# timed alone paid for handing back their larger outputs and a network never pays (``place_in_context`` in
# cost/lut/build.py). Every network's sum includes it, like the fixed parts'.
ADAPTER_CONTEXT = "adapter_context"


class CostTableError(ValueError):
    """A cost table does not fit the space, resolution or file format it is used with."""


@dataclass
class CostTable:
    """``table[i][j]``: cost of candidate ``candidates[j]`` at position ``i``; ``fixed``: cost of the parts every
    network of the space has. ``unit`` is "gmacs" or "ms"."""

    kind: str  # "macs" or "latency"
    unit: str
    macro: MacroArch
    input_size: tuple[int, int]
    candidates: tuple[str, ...]
    table: list[list[float]]
    fixed: dict[str, float]
    meta: dict = field(default_factory=dict)  # device fingerprint, backend, dtype, per-entry spreads, calibration, ...
    # ``pairs[g][i][j]``: what candidate j at position i costs more (or less) than ``table[i][j]`` when the block
    # before it hands on its output in ``g`` groups of channels (``producer_groups``; identity skips passed over;
    # the stem hands on one). A runtime that runs grouped convolutions and concatenations in another memory layout
    # pays the conversions at such boundaries (docs/LATENCY.md). Empty: costs do not depend on the block before.
    pairs: dict[int, list[list[float]]] = field(default_factory=dict)

    @property
    def space(self) -> str:
        return self.macro.name

    @property
    def fixed_total(self) -> float:
        return float(sum(self.fixed.values()))

    def matrix(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(positions, candidates) float tensor, for the expected-cost term of the search loss."""
        return torch.tensor(self.table, dtype=torch.float32, device=device)

    def predict(self, genotype: Genotype, calibrated: bool = False) -> float:
        """fixed + Σ per-position costs; with ``calibrated``, ``overhead + scale · that`` when the table holds a
        calibration (``meta["calibration"]``, fitted by ``squeezenas lut check --calibrate``), else unchanged."""
        self.check_genotype(genotype)
        index = {c: j for j, c in enumerate(self.candidates)}
        raw = self.fixed_total + sum(self.table[i][index[op]] for i, op in enumerate(genotype.ops))
        raw += self.pair_cost(genotype)
        return self.calibrate(raw) if calibrated else raw

    def pair_cost(self, genotype: Genotype) -> float:
        """Σ over positions of ``pairs[g][i][op_i]``, g the groups of the block before position i (0 without
        pairs)."""
        if not self.pairs:
            return 0.0
        index = {c: j for j, c in enumerate(self.candidates)}
        total, before = 0.0, 1
        for i, (p, op) in enumerate(zip(self.macro.positions(), genotype.ops)):
            if before in self.pairs:
                total += self.pairs[before][i][index[op]]
            if not (op == "skip" and p.is_identity_skip):
                before = producer_groups(op, p.stride)
        return total

    def pair_tensors(self, dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> tuple[tuple[torch.Tensor, ...], ...]:
        """The constants of ``expected_pair_cost``, one (pairs, hands-on-g, identity-skip) triple of (positions,
        candidates) tensors per group count; build them once where the expectation is taken often."""
        positions = self.macro.positions()
        passes = torch.tensor([[c == "skip" and pos.is_identity_skip for c in self.candidates] for pos in positions],
                              dtype=dtype, device=device)
        out = []
        for g, rows in self.pairs.items():
            ends = torch.tensor([[producer_groups(c, pos.stride) == g for c in self.candidates] for pos in positions],
                                dtype=dtype, device=device) * (1 - passes)
            out.append((torch.tensor(rows, dtype=dtype, device=device), ends, passes))
        return tuple(out)

    def expected_pair_cost(self, p: torch.Tensor,
                           tensors: tuple[tuple[torch.Tensor, ...], ...] | None = None) -> torch.Tensor:
        """E[``pair_cost``] of networks drawn position by position from ``p`` (positions, candidates), exact and
        differentiable in ``p``: the block before position i hands on g groups with probability q_i, where
        q_0 = 0 (the stem) and q_{i+1} = Σ_{j hands on g} p_ij + p_i,skip · q_i at an identity skip, else without
        the second term; and position i adds q_i · Σ_j p_ij · pairs[g][i][j]. ``tensors``: ``pair_tensors`` in
        p's dtype and device (built here when None)."""
        total = p.new_zeros(())
        if not self.pairs:
            return total
        for d, ends, passes in self.pair_tensors(p.dtype, p.device) if tensors is None else tensors:
            a, b, c = (p * ends).sum(1), (p * passes).sum(1), (p * d).sum(1)
            if not p.requires_grad:  # no graph to keep: the recursion in Python floats (the projection's bisection)
                q = s = 0.0
                for a_i, b_i, c_i in zip(a.tolist(), b.tolist(), c.tolist()):
                    s, q = s + q * c_i, a_i + b_i * q
                total = total + s
                continue
            q = p.new_zeros(())
            for i in range(self.macro.num_positions):
                total = total + q * c[i]
                q = a[i] + b[i] * q
        return total

    @property
    def calibration(self) -> dict | None:
        """``{"overhead_ms", "scale", ...}`` fitted on end-to-end measurements, or None."""
        return self.meta.get("calibration")

    def calibrate(self, raw: float) -> float:
        """Map a raw sum to the calibrated prediction (identity without a calibration). Linear, so it maps
        expected costs too."""
        c = self.calibration
        return raw if not c else float(c["overhead_ms"]) + float(c["scale"]) * raw

    def uncalibrate(self, value: float) -> float:
        """Inverse of ``calibrate``: a cost in the reporting unit (e.g. a target in ms) as a raw table sum."""
        c = self.calibration
        return value if not c else (value - float(c["overhead_ms"])) / float(c["scale"])

    @property
    def e_ref(self) -> float:
        """Raw expected cost of the uniform distribution over every position's candidates, fixed parts included:
        the cost of "the mean network" of the space, by which the search normalises its cost term.

        Computed in float32 (``matrix``), as the search's loss uses the table; pair terms included.
        """
        m = self.matrix()
        uniform = torch.full_like(m, 1 / m.shape[1])
        return float(self.fixed_total + m.mean(dim=1).sum() + self.expected_pair_cost(uniform))

    def bounds(self, alive: torch.Tensor | None = None) -> tuple[float, float]:
        """Raw cost of the cheapest and of the most expensive network among the ``alive`` candidates (a
        (positions, candidates) bool mask; all candidates when None), in float32 as ``e_ref``; without pair
        terms."""
        m = self.matrix()
        if alive is None:
            alive = torch.ones_like(m, dtype=torch.bool)
        dead = ~alive.to(m.device)
        lo = self.fixed_total + float(m.masked_fill(dead, float("inf")).min(dim=1).values.sum())
        return lo, self.fixed_total + float(m.masked_fill(dead, float("-inf")).max(dim=1).values.sum())

    def check_genotype(self, genotype: Genotype) -> None:
        if genotype.macro_arch != self.macro:
            raise CostTableError(f"cost table is for space {self.space!r}, the genotype for {genotype.macro_name!r}")

    def check_compatible(self, macro: MacroArch, input_size: tuple[int, int], where: str = "cost table") -> None:
        """Using a table of another space or resolution is an error."""
        if macro != self.macro:
            raise CostTableError(f"{where} was built for space {self.space!r}, not {macro.name!r}"
                                 + ("" if macro.name != self.space else " (same name, different definition)"))
        if tuple(input_size) != tuple(self.input_size):
            raise CostTableError(f"{where} was built at {self.input_size[0]}×{self.input_size[1]}, "
                                 f"not {input_size[0]}×{input_size[1]}")

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION, "kind": self.kind, "unit": self.unit, "space": self.space,
            "macro": self.macro.to_dict(), "input_size": list(self.input_size), "candidates": list(self.candidates),
            "fixed": self.fixed, "table": self.table, "meta": self.meta,
            **({"pairs": {str(g): rows for g, rows in self.pairs.items()}} if self.pairs else {}),
        }

    def save(self, path: str | Path) -> None:
        """Written atomically, and only a table that loads again (``check_values``; else a ``CostTableError``
        naming the file and nothing written)."""
        self.check_values(str(path))
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict, where: str = "cost table") -> CostTable:
        if not isinstance(d, dict) or "schema_version" not in d:
            raise CostTableError(f"{where}: not a squeezenas cost table (no 'schema_version')")
        if d["schema_version"] != SCHEMA_VERSION:
            raise CostTableError(f"{where}: schema version {d['schema_version']} (this version reads {SCHEMA_VERSION})")
        try:
            macro = MacroArch.from_dict(d["macro"], where=f"{where}: macro")
            rows = d["table"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise CostTableError(f"{where}: 'table' must be a list of rows")
            table = [[_number(v, f"{where}: table[{i}][{j}]") for j, v in enumerate(row)] for i, row in enumerate(rows)]
            fixed = {k: _number(v, f"{where}: fixed[{k!r}]") for k, v in dict(d["fixed"]).items()}
            pairs = _read_pairs(d.get("pairs", {}), where)
            t = cls(kind=d["kind"], unit=d["unit"], macro=macro, input_size=tuple(d["input_size"]),
                    candidates=tuple(d["candidates"]), table=table, fixed=fixed, meta=d.get("meta", {}),
                    pairs=pairs)
        except KeyError as e:
            raise CostTableError(f"{where}: missing field {e.args[0]!r}") from None
        if len(t.table) != macro.num_positions or any(len(r) != len(t.candidates) for r in t.table):
            raise CostTableError(f"{where}: table is not {macro.num_positions} positions × {len(t.candidates)} "
                                 "candidates")
        t.check_values(where)  # the pair terms' shapes and values too
        return t

    def check_values(self, where: str = "cost table") -> None:
        """Every cost finite and >= 0, the calibration's too, and not all zero (a table that cannot tell the
        candidates apart would divide the search's cost term by zero)."""
        for i, row in enumerate(self.table):
            for j, v in enumerate(row):
                if not math.isfinite(v) or v < 0:
                    raise CostTableError(f"{where}: table[{i}][{j}] (position {i}, {self.candidates[j]}) is {v}; "
                                         "costs must be finite and >= 0")
        for k, v in self.fixed.items():
            if not math.isfinite(v) or (v < 0 and k != ADAPTER_CONTEXT) or (v > 0 and k == ADAPTER_CONTEXT):
                raise CostTableError(f"{where}: fixed[{k!r}] is {v}; costs must be finite and >= 0 "
                                     f"(fixed[{ADAPTER_CONTEXT!r}]: <= 0)")
        for g, rows in self.pairs.items():
            if len(rows) != len(self.table) or any(len(r) != len(self.candidates) for r in rows):
                raise CostTableError(f"{where}: pairs[{str(g)!r}] is not {len(self.table)} positions × "
                                     f"{len(self.candidates)} candidates")
            for i, row in enumerate(rows):
                for j, v in enumerate(row):
                    if not math.isfinite(v):
                        raise CostTableError(f"{where}: pairs[{str(g)!r}][{i}][{j}] (position {i}, "
                                             f"{self.candidates[j]}) is {v}; pair terms must be finite")
        context = self.fixed.get(ADAPTER_CONTEXT, 0.0)
        if self.fixed_total - context + sum(map(sum, self.table)) <= 0:
            raise CostTableError(f"{where}: every cost is 0; such a table cannot tell the candidates apart")
        if context and self.fixed_total + sum(min(row) for row in self.table) <= 0:
            raise CostTableError(f"{where}: fixed[{ADAPTER_CONTEXT!r}] is {context}; the cheapest network would "
                                 "cost nothing or less")
        c = self.calibration
        if c:
            for k in ("overhead_ms", "scale"):
                v = c.get(k)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise CostTableError(f"{where}: meta.calibration.{k} is {v!r}; expected a finite number")
            if c["scale"] <= 0:
                raise CostTableError(f"{where}: meta.calibration.scale is {c['scale']}; it must be positive")

    @classmethod
    def load(cls, path: str | Path) -> CostTable:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"cost table not found: {path}")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise CostTableError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d, where=str(path))


def producer_groups(op: str, stride: int = 1) -> int:
    """In how many groups of channels a candidate at a position of ``stride`` hands on its output, as the block
    after it sees it (``CostTable.pairs``): a block, its last 1×1 convolution's groups; ``skip`` with a stride of
    2, two (two 1×1 convolutions, each computing half the channels, concatenated); other shape-changing skips, one
    (an ungrouped 1×1 convolution). The identity skip hands on its input: callers pass over it."""
    spec = parse_op(op)
    if spec.is_skip:
        return 2 if stride == 2 else 1
    return spec.groups


def _read_pairs(d: object, where: str) -> dict[int, list[list[float]]]:
    if not isinstance(d, dict) or not all(isinstance(k, str) and k.isdigit() and k == str(int(k)) and int(k) > 1
                                          for k in d):
        raise CostTableError(f"{where}: 'pairs' must map group counts > 1 (as strings) to rows")
    out = {}
    for g, rows in d.items():
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise CostTableError(f"{where}: pairs[{g!r}] must be a list of rows")
        out[int(g)] = [[_number(v, f"{where}: pairs[{g!r}][{i}][{j}]") for j, v in enumerate(r)]
                       for i, r in enumerate(rows)]
    return out


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CostTableError(f"{where} is {value!r}; expected a number")
    return float(value)


def mac_table(macro: str | MacroArch, input_size: tuple[int, int], num_classes: int = 19) -> CostTable:
    """GMACs of every candidate at every position at ``input_size`` (SPEC convention), plus the fixed parts."""
    arch = get_space(macro)
    sizes = arch.input_sizes(*input_size)
    cache: dict[tuple, float] = {}
    table = []
    for p, (h, w) in zip(arch.positions(), sizes):
        row = []
        for code in arch.candidates:
            key = (code, p.c_in, p.c_out, p.stride, h, w)
            if key not in cache:
                layers = count_convs(build_op(code, p.c_in, p.c_out, p.stride), (1, p.c_in, h, w))
                cache[key] = sum(l.macs for l in layers) / 1e9
            row.append(cache[key])
        table.append(row)
    ref = build_model(Genotype(arch, (arch.candidates[0],) * arch.num_positions), num_classes=num_classes)
    parts = count_costs(ref, tuple(input_size)).parts
    fixed = {k: parts.get(k, {"macs": 0})["macs"] / 1e9 for k in FIXED_PARTS if k in parts}
    return CostTable(kind="macs", unit="gmacs", macro=arch, input_size=tuple(input_size),
                     candidates=tuple(arch.candidates), table=table, fixed=fixed, meta={"num_classes": num_classes})
