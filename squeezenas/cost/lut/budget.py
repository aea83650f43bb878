"""Where a check's error comes from: the table and the check recomputed from some of their rounds.

Every part of a table and every network of a check keeps its rounds (``round_values``, and ``round_speeds`` where
the rounds divided out the machine's speed), so the figures that fewer rounds would have given come out of the
files without timing anything. ``error_budget`` splits the held-out residual of a check into the check's own
noise, the table's, and what is left for the table's model of a network as a sum of parts: more rounds help
only where noise is the larger part.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from squeezenas.cost.lut.build import pair_terms, place_in_context
from squeezenas.cost.lut.plan import IDENTITY_KEY
from squeezenas.cost.lut.stats import leave_one_out
from squeezenas.cost.tables import CostTable
from squeezenas.cost.timing.config import stat_key
from squeezenas.cost.timing.rounds import combine_rounds, normalised_rounds
from squeezenas.space.genotype import Genotype

Pick = Callable[[list[float]], list[float]]  # which of an item's rounds to keep


def combined(values: Sequence[float], statistic_key: str, normalised: bool) -> float:
    """The figure of some rounds as the tool combines them: the median of speed-normalised rounds; without
    speeds, ``combine_rounds`` (the fastest round for the min)."""
    if normalised:
        return float(np.median(values))
    return float(combine_rounds([{statistic_key: v, "median_ms": v} for v in values], statistic_key)[statistic_key])


def measured_items(entries: dict[str, dict]) -> list[dict]:
    """Every timed item of a table's entries (an op timed after an adapter: its measurement with the adapter)."""
    return [e["with_adapter"] if "with_adapter" in e else e for e in entries.values()]


def has_rounds(table: CostTable) -> bool:
    """Whether ``table_from_rounds`` can recompute the table: its meta keeps every part's rounds and its layout."""
    meta = table.meta
    entries = meta.get("entries") or {}
    return (bool(entries) and all(k in meta for k in ("cells", "fixed_keys", "timing"))
            and all("round_values" in e for e in measured_items(entries)))


def table_from_rounds(table: CostTable, pick: Pick) -> CostTable:
    """``table`` with every part's figure recomputed from the rounds ``pick`` keeps of it; an op timed after an
    adapter is again the difference of the two, placed in the table as the build places it, pair terms too."""
    meta = table.meta
    stat = stat_key(meta["timing"]["statistic"])
    entries = meta["entries"]

    def own(entry: dict) -> float:
        return combined(pick(normalised_rounds(entry)), stat, bool(entry.get("round_speeds")))

    def value(key: str) -> float:
        if key == IDENTITY_KEY:  # the identity skip: no part of its own
            return 0.0
        entry = entries[key]
        if "with_adapter" not in entry:
            return own(entry)
        return own(entry["with_adapter"]) - own(entries[entry["adapter"]])

    after = {int(g): keys for g, keys in (meta.get("after_keys") or {}).items()}
    rows, fixed = place_in_context(meta["cells"], meta["fixed_keys"], value, meta.get("context", "alone"))
    return CostTable(kind=table.kind, unit=table.unit, macro=table.macro, input_size=table.input_size,
                     candidates=table.candidates, table=rows, fixed=fixed, meta={},
                     pairs=pair_terms(meta["cells"], after, value))


def _gap_sd(a: np.ndarray, b: np.ndarray) -> float:
    """SD (%) of two figures' relative gap after one common scale (which a calibration absorbs)."""
    b = b * np.median(a / b)
    return float(np.std((a - b) / ((a + b) / 2) * 100))


def _odd(values: list[float]) -> list[float]:
    return values[0::2]


def _even(values: list[float]) -> list[float]:
    return values[1::2]


def _halves_factor(n: int) -> float:
    """The gap between the medians of the odd and the even of n rounds has sqrt(n (1/n_odd + 1/n_even)) times the
    SD of the figure of all n (2 for an even n): each median's variance goes as 1/rounds."""
    return math.sqrt(n * (1 / math.ceil(n / 2) + 1 / (n // 2)))


def _speed_normalised(items: list[dict]) -> bool:
    return all(i.get("round_speeds") and len(i.get("round_values") or []) >= 2 for i in items)


def error_budget(table: CostTable, rows: list[dict], goal_pct: float = 5.0, goal_share: float = 0.95) -> dict | None:
    """The held-out residual of a check (its ``rows``: genotype, measured_ms, speed-normalised rounds) as standard
    deviations (RMS) in % of a network's time: the check's own noise and the table's, each from its odd against
    its even rounds (two halves taken at the same times; for an even count the gap of their medians has twice the
    SD of the figure of all the rounds), and the rest (the residual's variance less both, floored at 0): what
    varies from round to round is noise, the rest is not — the sum of parts' own error, and whatever held for a
    whole build or check (one export per part or network, the machine's state in that session). The halves share
    the speed factors fitted on all rounds, which pulls them together slightly: the noise is a lower bound.

    ``expected_share`` is the share within ±``goal_pct`` that a normal error of the residual's SD places,
    ``p_goal`` the chance that a check of as many networks places at least ``goal_share`` of them within it.
    None for a check without speed-normalised rounds (two or more per network); the table's noise is None for a
    table without them (built before the rounds recorded the machine's speed)."""
    if len(rows) < 3 or not _speed_normalised(rows):
        return None
    stat = stat_key(table.meta.get("timing", {}).get("statistic", "min"))

    def measured(pick: Pick) -> np.ndarray:
        return np.array([combined(pick(normalised_rounds(r)), stat, True) for r in rows])

    genotypes = [Genotype(table.macro, tuple(r["genotype"])) for r in rows]
    m = np.array([r["measured_ms"] if "measured_ms" in r else combined(normalised_rounds(r), stat, True) for r in rows])
    p = np.array([table.predict(g) for g in genotypes])
    residual = np.asarray(leave_one_out(list(p), list(m))) / m * 100 - 100
    total = float(np.sqrt(np.mean(residual ** 2)))
    check = _gap_sd(measured(_odd), measured(_even)) / _halves_factor(min(len(r["round_values"]) for r in rows))
    table_sd = None
    if has_rounds(table) and _speed_normalised(measured_items(table.meta["entries"])):
        halves = [table_from_rounds(table, pick) for pick in (_odd, _even)]
        n_table = min(len(e["round_values"]) for e in measured_items(table.meta["entries"]))
        table_sd = _gap_sd(*(np.array([t.predict(g) for g in genotypes]) for t in halves)) / _halves_factor(n_table)
    noise = math.hypot(check, table_sd or 0.0)
    model = math.sqrt(max(0.0, total ** 2 - noise ** 2))
    share = math.erf(goal_pct / (total * math.sqrt(2))) if total > 0 else 1.0
    n, need = len(rows), math.ceil(goal_share * len(rows) - 1e-9)
    p_goal = sum(math.comb(n, k) * share ** k * (1 - share) ** (n - k) for k in range(need, n + 1))
    parts = (("model", model), ("check", check), ("table", table_sd or 0.0))
    return {"residual_sd_pct": total, "check_sd_pct": check, "table_sd_pct": table_sd, "model_sd_pct": model,
            "noise_exceeds_residual": noise > total, "goal_pct": goal_pct, "expected_share": share,
            "goal_share": goal_share, "p_goal": float(p_goal),
            # the largest part (the model's on a tie), "none" when the check's figures, both halves of its rounds
            # and both halves of the table's agree exactly
            "largest": "none" if max(total, noise) < 1e-6 else max(parts, key=lambda x: x[1])[0]}
