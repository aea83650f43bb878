"""The accuracy–cost plane of the sampled architectures: the Pareto front, its knee, and the choice at a budget."""

from __future__ import annotations

import math
from typing import Any, Sequence

SELECT_RULES = ("knee", "best")


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (cost ≤ and score ≥, one of them strictly): min cost, max score."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i]))
    on = [False] * len(costs)
    best = -math.inf
    for i in order:
        if scores[i] > best:
            on[i] = True
            best = scores[i]
    return on


def knee_index(costs: Sequence[float], scores: Sequence[float]) -> int:
    """The knee of a front: the point farthest above the straight line from its cheapest to its most accurate
    point, with both axes scaled to [0, 1] (where more cost stops buying much accuracy). Fewer than three
    points: the most accurate one."""
    idx = sorted(range(len(costs)), key=lambda i: costs[i])
    if len(idx) < 3:
        return max(idx, key=lambda i: scores[i])
    c0, c1 = costs[idx[0]], costs[idx[-1]]
    s0, s1 = scores[idx[0]], scores[idx[-1]]
    if c1 <= c0 or s1 <= s0:
        return max(idx, key=lambda i: scores[i])

    def above(i: int) -> float:
        x, y = (costs[i] - c0) / (c1 - c0), (scores[i] - s0) / (s1 - s0)
        return y - x  # distance to the diagonal, up to a factor √2

    return max(idx, key=above)


def select(samples: Sequence[dict[str, Any]], cost_key: str, budget: float | None = None,
           rule: str = "knee") -> int:
    """Index of the chosen sample: with a budget, the most accurate front point whose cost fits it (which is
    the most accurate sample that fits); without, the front's knee (``rule`` "knee") or its most accurate
    point ("best")."""
    if rule not in SELECT_RULES:
        raise ValueError(f"select rule must be one of {', '.join(SELECT_RULES)}, got {rule!r}")
    front = [i for i, s in enumerate(samples) if s["on_front"]]
    if not front:
        raise ValueError("no samples to choose from")
    if budget is not None:
        fits = [i for i in front if samples[i][cost_key] <= budget]
        if not fits:
            cheapest = min(samples[i][cost_key] for i in front)
            raise ValueError(f"no sampled architecture fits the budget {budget:g} ({cost_key}); the cheapest costs "
                             f"{cheapest:.4g}: raise the budget, sample more (--n) or search with a lower target")
        return max(fits, key=lambda i: (samples[i]["miou"], -samples[i][cost_key]))
    if rule == "best":
        return max(front, key=lambda i: (samples[i]["miou"], -samples[i][cost_key]))
    k = knee_index([samples[i][cost_key] for i in front], [samples[i]["miou"] for i in front])
    return front[k]
