"""Genotypes: a macro-architecture plus one candidate code per searched position; JSON round-trip and checks."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from squeezenas.space.macro import MACROS, MacroArch
from squeezenas.utils.config import ConfigError
from squeezenas.utils.registry import unknown_name_message


class GenotypeError(ValueError):
    """A genotype does not fit its macro-architecture."""


@dataclass(frozen=True)
class Genotype:
    """``macro``: a registered macro name, or a user-defined MacroArch carried inline; ``ops``: one code each."""

    macro: str | MacroArch
    ops: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        m = self.macro
        if isinstance(m, MacroArch) and m.name in MACROS and MACROS.get(m.name) == m:
            object.__setattr__(self, "macro", m.name)  # a built-in space is stored by name
        self.validate()

    @property
    def macro_arch(self) -> MacroArch:
        if isinstance(self.macro, MacroArch):
            return self.macro
        if self.macro not in MACROS:
            raise GenotypeError(unknown_name_message("macro-architecture", self.macro, MACROS.names()))
        return MACROS.get(self.macro)

    @property
    def macro_name(self) -> str:
        return self.macro.name if isinstance(self.macro, MacroArch) else self.macro

    def validate(self, where: str = "genotype") -> None:
        macro = self.macro_arch
        if len(self.ops) != macro.num_positions:
            raise GenotypeError(f"{where}: macro {macro.name!r} has {macro.num_positions} positions, "
                                f"but the genotype lists {len(self.ops)} codes")
        for i, code in enumerate(self.ops):
            if code not in macro.candidates:
                raise GenotypeError(f"{where}: position {i}: unknown candidate {code!r} "
                                    f"(choices: {', '.join(macro.candidates)})")

    def to_dict(self) -> dict:
        macro = self.macro.to_dict() if isinstance(self.macro, MacroArch) else self.macro
        return {"macro": macro, "genotype": list(self.ops)}

    @classmethod
    def from_dict(cls, data: dict, where: str = "genotype") -> Genotype:
        if not isinstance(data, dict):
            raise GenotypeError(f"{where}: expected a mapping with 'macro' and 'genotype'")
        unknown = set(data) - {"macro", "genotype", "name", "meta"}
        if unknown:
            raise GenotypeError(f"{where}: unknown key(s) {sorted(unknown)} (known: macro, genotype, name, meta)")
        if "macro" not in data or "genotype" not in data:
            raise GenotypeError(f"{where}: needs both 'macro' (a name or a mapping) and 'genotype' (a list of codes)")
        macro = data["macro"]
        if isinstance(macro, dict):
            try:
                macro = MacroArch.from_dict(macro, where=f"{where}: macro")
            except ConfigError as e:
                raise GenotypeError(str(e)) from None
        elif not isinstance(macro, str):
            raise GenotypeError(f"{where}: 'macro' must be a name or a mapping, got {macro!r}")
        ops = data["genotype"]
        if not isinstance(ops, (list, tuple)) or not all(isinstance(c, str) for c in ops):
            raise GenotypeError(f"{where}: 'genotype' must be a list of candidate codes")
        try:
            return cls(macro, tuple(ops))
        except GenotypeError as e:
            raise GenotypeError(f"{where}: {str(e).removeprefix('genotype: ')}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str, where: str = "genotype") -> Genotype:
        try:
            return cls.from_dict(json.loads(text), where)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"{where}: not valid JSON: {e}") from None

    def save(self, path: str | Path, meta: dict | None = None, name: str | None = None) -> None:
        """The standard genotype file (``{"macro", "genotype"}``, optionally ``name`` and ``meta``), written
        atomically: what ``load_genotype`` and ``squeezenas train --model`` read. The only genotype writer."""
        from squeezenas.utils.io import atomic_write_json

        d = self.to_dict()
        if name:
            d["name"] = name
        if meta:
            d["meta"] = meta
        atomic_write_json(path, d)


def load_genotype(path: str | Path) -> Genotype:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"genotype file not found: {path}")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return Genotype.from_dict(yaml.safe_load(text), where=str(path))
    return Genotype.from_json(text, where=str(path))


def random_genotype(macro: str | MacroArch, rng: random.Random | int | None = None,
                    weights: Sequence[float] | None = None) -> Genotype:
    """Draw one candidate per position (uniformly, or with ``weights`` over ``macro.candidates``)."""
    arch = macro if isinstance(macro, MacroArch) else MACROS.get(macro)
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    ops = tuple(rng.choices(arch.candidates, weights=weights, k=arch.num_positions))
    return Genotype(macro if isinstance(macro, str) else arch, ops)
