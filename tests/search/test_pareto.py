"""The Pareto front of the sampled architectures, its knee, and the choice with and without a budget."""

from __future__ import annotations

import pytest

from squeezenas.search.pareto import knee_index, pareto_front, select


def test_pareto_front_minimises_cost_and_maximises_score():
    costs = [1.0, 2.0, 2.0, 3.0, 4.0, 0.5]
    scores = [0.5, 0.6, 0.4, 0.55, 0.7, 0.1]
    assert pareto_front(costs, scores) == [True, True, False, False, True, True]


def test_selection_with_and_without_budget():
    samples = [{"c": c, "miou": m, "on_front": f} for c, m, f in
               zip([1, 2, 3, 4, 5], [0.2, 0.5, 0.6, 0.62, 0.63], [True] * 5)]
    assert select(samples, "c", budget=3.5) == 2
    assert select(samples, "c", rule="best") == 4
    assert select(samples, "c") == knee_index([1, 2, 3, 4, 5], [0.2, 0.5, 0.6, 0.62, 0.63]) == 1
    with pytest.raises(ValueError, match="budget"):
        select(samples, "c", budget=0.5)
