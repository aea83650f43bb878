"""The search: the co-optimisation loop (weights and θ, α · Σ p·C, temperature annealing, pruning, cost target)
and, after it, sampling architectures, scoring them through the supernet and choosing one on the Pareto front."""

from squeezenas.search.checkpoint import load_search
from squeezenas.search.config import SampleConfig, SearchConfig
from squeezenas.search.loop import run_search
from squeezenas.search.objective import CostModel, TargetProjector, build_cost_table, temperature_at
from squeezenas.search.outputs import SearchResult
from squeezenas.search.pareto import knee_index, pareto_front, select
from squeezenas.search.sample import SampleResult, path_scorer, sample_and_select, sample_genotypes
from squeezenas.search.scoring import PathScorer, reestimate_bn

search = run_search  # the name of earlier releases (to be removed)

__all__ = [
    "SearchConfig", "SampleConfig", "run_search", "SearchResult", "CostModel", "TargetProjector", "build_cost_table",
    "load_search", "temperature_at", "sample_and_select", "SampleResult", "PathScorer", "path_scorer",
    "sample_genotypes", "reestimate_bn", "pareto_front", "knee_index", "select",
]
