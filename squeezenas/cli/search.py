"""Search an architecture: train the supernet's weights and θ together on the task with a MAC or latency cost.

Values come from the defaults, then the saved config of the run (with --resume), then --config search.yaml,
then the options given here. --resume continues the search in --out (its saved config supplies every option not
given again). At the end --out holds genotype.json (the most probable architecture), theta.json and
theta_heatmap.png; then run `squeezenas sample --search OUT`. On several processes:
`torchrun --nproc_per_node N -m squeezenas.cli.main search ...` (--batch-size is then the global batch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezenas.cli.options import add_config_options, config_file_option, overrides_from
from squeezenas.search.config import SearchConfig
from squeezenas.utils.config import ConfigError, load_mapping, resolve_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_file_option(p, SearchConfig)
    add_config_options(p, SearchConfig, skip=("target", "world_size"))
    p.add_argument("--target-latency", type=float, metavar="MS", help="hold the expected latency at MS (--cost latency)")
    p.add_argument("--target-gmacs", type=float, metavar="G", help="hold the expected GMACs at G (--cost mac)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out from checkpoint.pt")
    p.add_argument("--stop-after", type=int, metavar="N", help="end after N epochs of this call (resume later)")


def resolve_search_config(args: argparse.Namespace) -> SearchConfig:
    """Defaults ← (on --resume) the run's saved config.json ← --config ← the options given."""
    given = overrides_from(args, skip=("resume", "stop_after"))
    lat, gmacs = given.pop("target_latency", None), given.pop("target_gmacs", None)
    if lat is not None and gmacs is not None:
        raise ConfigError("give either --target-latency or --target-gmacs, not both")
    if lat is not None or gmacs is not None:
        kind = "latency" if lat is not None else "mac"
        if given.setdefault("cost", kind) != kind:
            raise ConfigError(f"--target-{'latency' if lat is not None else 'gmacs'} needs --cost {kind}")
        given["target"] = lat if lat is not None else gmacs
    path = getattr(args, "config", None)
    resume_from = None
    if getattr(args, "resume", False):
        out = given.get("out") or (load_mapping(path).get("out") if path else None) or SearchConfig.out
        resume_from = Path(out) / "config.json"
    return resolve_config(SearchConfig, given, path, resume_from=resume_from)


def run(args: argparse.Namespace) -> int:
    from squeezenas.cost.tables import CostTable
    from squeezenas.data import dataset_info
    from squeezenas.engine.distributed import env_dist_info
    from squeezenas.search.loop import run_search
    from squeezenas.search.objective import build_cost_table
    from squeezenas.viz.search_plots import draw_search

    cfg = resolve_search_config(args)
    resume = getattr(args, "resume", False)
    saved_table = Path(cfg.out) / "cost_table.json"
    if resume and saved_table.is_file():
        table = CostTable.load(saved_table)  # the table the search started with, even if the LUT file changed
    else:
        table = build_cost_table(cfg, dataset_info(cfg.dataset, cfg.data_root).num_classes)
    r = run_search(cfg, table, resume=resume, stop_after=getattr(args, "stop_after", None))
    if not env_dist_info().is_main:  # under torchrun rank 0 reports and draws
        return 0
    state = "finished" if r.finished else f"stopped after epoch {r.epochs}/{cfg.epochs} (continue with --resume)"
    print(f"search {state} in {r.seconds:.1f} s: most probable architecture {r.predicted_cost:.4g} {r.unit}, "
          f"expected {r.expected_cost:.4g} {r.unit}"
          + (f" (target {r.target:g})" if r.target is not None else "")
          + f", {len(r.pruned)} candidates pruned")
    if r.finished:
        heatmap = draw_search(r.out)
        print(f"wrote {r.out / 'genotype.json'}, {heatmap}; next: squeezenas sample --search {r.out}")
    return 0
