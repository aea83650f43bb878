"""Temporary: moved to squeezenas.viz.search_plots (removed once the search no longer draws)."""
from squeezenas.viz.search_plots import pareto_plot, theta_heatmap  # noqa: F401
