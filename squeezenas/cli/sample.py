"""Sample architectures from a finished search, score them through the supernet, choose one on the Pareto front.

Draws --n distinct architectures from the learned distribution, estimates each one's validation mIoU through
its path of the supernet (BatchNorm statistics re-estimated per path), costs it (MACs; latency with a lookup
table), and writes SEARCH/pareto.json, SEARCH/pareto.png and the chosen genotype (--out, default
SEARCH/chosen_genotype.json): the most accurate front architecture within the budget, or without a budget the
front's knee (--select). On several processes (`torchrun --nproc_per_node N -m squeezenas.cli.main sample ...`)
the paths are shared out and scored in parallel, with the same result as one process.
"""

from __future__ import annotations

import argparse

from squeezenas.cli.options import add_config_options, config_file_option, overrides_from
from squeezenas.search.config import SampleConfig
from squeezenas.utils.config import resolve_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_file_option(p, SampleConfig)
    add_config_options(p, SampleConfig, skip=("budget", "budget_kind"))
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-ms", type=float, help="latency budget (calibrated ms; needs a latency table)")
    budget.add_argument("--budget-gmacs", type=float, help="MAC budget (GMACs at the search's deployment size)")
    p.add_argument("--calib-batches", type=int, dest="bn_batches", help=argparse.SUPPRESS)  # --bn-batches' old name
    # torchrun's own parser takes "--n" for an abbreviation of its --nnodes/--nproc-per-node and stops
    p.add_argument("--num-samples", type=int, dest="n", metavar="N", help="the same as --n (use it under torchrun)")


def resolve_sample_config(args: argparse.Namespace) -> SampleConfig:
    """Defaults ← --config ← the options given; --budget-ms / --budget-gmacs set the budget and its kind."""
    given = overrides_from(args)
    for kind in ("ms", "gmacs"):
        value = given.pop(f"budget_{kind}", None)
        if value is not None:
            given.update(budget=value, budget_kind=kind)
    return resolve_config(SampleConfig, given, getattr(args, "config", None))


def run(args: argparse.Namespace) -> int:
    from squeezenas.engine.distributed import env_dist_info
    from squeezenas.search.sample import sample_and_select
    from squeezenas.viz.search_plots import draw_selection

    cfg = resolve_sample_config(args)
    r = sample_and_select(cfg)
    if not env_dist_info().is_main:  # under torchrun rank 0 reports and draws
        return 0
    plot = draw_selection(cfg.search)
    front = sum(s["on_front"] for s in r.samples)
    c = r.chosen
    print(f"{len(r.samples)} architectures scored in {r.seconds:.1f} s, {front} on the Pareto front "
          f"({r.cost_key}); chosen: mIoU {100 * c['miou']:.2f}% (supernet estimate), {c['gmacs']:.4g} GMACs"
          + (f", {c['latency_ms']:.4g} ms" if "latency_ms" in c else ""))
    print(f"wrote {r.paths['genotype']}, {r.paths['pareto.json']}, {plot}")
    print(f"next: squeezenas train --model {r.paths['genotype']}")
    return 0
