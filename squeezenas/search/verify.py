"""The last step of the selection: the best few candidates within the budget looked at again — scored through the
supernet on more validation data, and timed end to end on the target — and the choice made on those figures.

Choosing the cheapest-looking network from a table favours networks where the table errs low, and path scores
on a small validation subset have a spread of a few points; both are cheapest to fix on the handful of
networks that can be chosen at all.
"""

from __future__ import annotations

from typing import Any, Callable

from squeezenas.cost.tables import CostTable
from squeezenas.space.genotype import Genotype


def finalists(samples: list[dict[str, Any]], cost_key: str, budget: float | None, k: int) -> list[int]:
    """Indices of the ``k`` most accurate samples within ``budget`` (the same rule for MACs and latency). Not
    only the front's: a sample just behind it by the table may be ahead of it once measured."""
    fit = [i for i, s in enumerate(samples) if budget is None or s[cost_key] <= budget]
    return sorted(fit, key=lambda i: (-samples[i]["miou"], samples[i][cost_key]))[:k]


def rescore(samples: list[dict[str, Any]], indices: list[int], scorer: Callable[[Genotype], dict[str, float]],
            macro: Any) -> None:
    """``miou_rescored`` (and ``pixel_accuracy_rescored``) of each finalist, scored again by ``scorer``."""
    for i in indices:
        score = scorer(Genotype(macro, tuple(samples[i]["genotype"])))
        samples[i]["miou_rescored"] = score["miou"]
        samples[i]["pixel_accuracy_rescored"] = score.get("pixel_accuracy")


def measure_latency(samples: list[dict[str, Any]], indices: list[int], table: CostTable, macro: Any,
                    num_classes: int, fresh: bool = True) -> dict[str, Any]:
    """``measured_ms`` of each finalist: the whole network timed as the table's parts were (its TimingConfig and
    statistic), on this machine, in a new process (``fresh``; see ``benchmark_fresh``) or in this one. Returns
    what was done; nothing is timed when the table was measured on another device (its fingerprint differs),
    since then this machine is not the target."""
    from squeezenas.cost.benchmark import benchmark_all, benchmark_fresh
    from squeezenas.cost.lut import check_device, table_config
    from squeezenas.cost.timing import stat_key

    if "timing" not in table.meta or "fingerprint" not in table.meta:
        return {"measured": False, "reason": "the table records no timing settings or device fingerprint"}
    differences = check_device(table, where="the latency table")
    if differences:
        return {"measured": False, "reason": f"the table was measured on another device ({'; '.join(differences)})"}

    config, size = table_config(table), tuple(table.input_size)
    key = stat_key(config.statistic)
    genotypes = [Genotype(macro, tuple(samples[i]["genotype"])) for i in indices]
    results = (benchmark_fresh if fresh else benchmark_all)(genotypes, size, config, num_classes=num_classes,
                                                            memory=False)
    for i, r in zip(indices, results):
        samples[i]["measured_ms"] = r[key]
    return {"measured": True, "statistic": config.statistic, "backend": config.backend, "threads": config.threads,
            "process": "fresh" if fresh else "this",
            "timing_pid": results[0]["pid"] if results else None}


def choose(samples: list[dict[str, Any]], indices: list[int], cost_key: str, budget: float | None) -> int | None:
    """The most accurate finalist on the second look (re-scored mIoU when there is one) whose cost — measured
    latency when timed, else the predicted cost — fits ``budget``; None when none fits."""
    def cost(i: int) -> float:
        return samples[i].get("measured_ms", samples[i][cost_key]) if cost_key == "latency_ms" else samples[i][cost_key]

    fits = [i for i in indices if budget is None or cost(i) <= budget]
    if not fits:
        return None
    return max(fits, key=lambda i: (samples[i].get("miou_rescored", samples[i]["miou"]), -cost(i)))
