"""Loading a latency table and checking where it came from: its space, resolution, device and timing settings."""

from __future__ import annotations

import warnings
from pathlib import Path

from squeezenas.cost.tables import CostTable, CostTableError
from squeezenas.cost.timing.config import TimingConfig
from squeezenas.cost.timing.device import device_fingerprint, fingerprint_matches
from squeezenas.space.macro import MacroArch, get_space


class LutError(CostTableError):
    """A latency table (or its partial build) does not fit the settings it is used with."""


def load_lut(path: str | Path, macro: MacroArch | str | None = None, input_size: tuple[int, int] | None = None,
             *, warn_device: bool = False) -> CostTable:
    """Load a latency table; with ``macro``/``input_size``, another space or resolution is an error; with
    ``warn_device``, a table measured on another device (fingerprint) is a warning naming the fields."""
    table = CostTable.load(path)
    if table.kind != "latency":
        raise LutError(f"{path}: a {table.kind!r} cost table, not a latency table")
    if macro is not None or input_size is not None:
        arch = table.macro if macro is None else get_space(macro)
        table.check_compatible(arch, tuple(input_size or table.input_size), where=str(path))
    if warn_device:
        check_device(table, where=str(path))
    return table


def check_device(table: CostTable, fingerprint: dict | None = None, where: str = "latency table") -> list[str]:
    """Warn (and return the differences) when this machine's fingerprint differs from the table's."""
    recorded = table.meta.get("fingerprint")
    if not recorded:
        return []
    timing = table.meta.get("timing", {})
    current = fingerprint or device_fingerprint(recorded.get("device", "cpu"), recorded.get("threads"),
                                                backend=timing.get("backend"),
                                                runtime_device=timing.get("runtime_device"))
    diff = fingerprint_matches(recorded, current)
    if diff:
        warnings.warn(f"{where} was measured on another device: {'; '.join(diff)}", stacklevel=2)
    return diff


def table_config(table: CostTable) -> TimingConfig:
    """The TimingConfig the table was measured with (to time whole networks the same way)."""
    if "timing" not in table.meta:
        raise LutError("latency table has no 'timing' settings in meta")
    # a table from before the statistic was recorded kept medians
    return TimingConfig.from_dict({"statistic": "median", **table.meta["timing"]})
