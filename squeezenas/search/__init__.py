"""The search: the co-optimisation loop (weights and θ, α · Σ p·C, temperature annealing, pruning, cost target)
and, after it, sampling architectures, scoring them through the supernet and choosing one on the Pareto front."""

from squeezenas.search.config import SearchConfig
from squeezenas.search.sample import (
    PathScorer, SampleResult, knee_index, pareto_front, recalibrate_bn, sample_and_select, sample_genotypes, select,
)
from squeezenas.search.search import (
    CostModel, SearchResult, TargetProjector, build_cost_table, load_search, search, temperature_at,
)

__all__ = [
    "SearchConfig", "search", "SearchResult", "CostModel", "TargetProjector", "build_cost_table", "load_search",
    "temperature_at", "sample_and_select", "SampleResult", "PathScorer", "sample_genotypes", "recalibrate_bn",
    "pareto_front", "knee_index", "select",
]
