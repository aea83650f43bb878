"""Sample architectures from a finished search, score them through the supernet, choose one on the Pareto front.

Draws --n distinct architectures from the learned distribution, estimates each one's validation mIoU through
its path of the supernet (BatchNorm recalibrated per path), costs it (MACs; latency with a lookup table), and
writes SEARCH/pareto.json, SEARCH/pareto.png and the chosen genotype (--out, default SEARCH/chosen_genotype.json):
the most accurate front architecture within the budget, or without a budget the front's knee (--select).
"""

from __future__ import annotations

import argparse

from squeezenas.search.sample import SELECT_RULES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search", required=True, metavar="DIR", help="a search folder (squeezenas search --out)")
    p.add_argument("--n", type=int, default=200, help="distinct architectures to sample (default 200)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-ms", type=float, help="latency budget (calibrated ms; needs a latency table)")
    budget.add_argument("--budget-gmacs", type=float, help="MAC budget (GMACs at the search's deployment size)")
    p.add_argument("--lut", help="latency lookup table to cost the samples with (default: the search's, if latency)")
    p.add_argument("--calib-batches", type=int, default=8, help="training batches to recalibrate BatchNorm per path")
    p.add_argument("--split", default="val", help="split to score on (default val)")
    p.add_argument("--val-limit", type=int, help="score on the first N images only (faster, noisier)")
    p.add_argument("--val-size", type=int, nargs=2, metavar=("H", "W"), help="run the paths at H W (scored at full resolution)")
    p.add_argument("--select", choices=SELECT_RULES, default="knee",
                   help="without a budget: the front's knee (default) or its most accurate point")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers for the validation split")
    p.add_argument("--out", help="where to write the chosen genotype (default SEARCH/chosen_genotype.json)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")


def run(args: argparse.Namespace) -> int:
    from squeezenas.search.sample import sample_and_select

    lut = None
    if args.lut:
        from squeezenas.cost.lut import load_lut

        lut = load_lut(args.lut, warn_device=True)
    budget = args.budget_ms if args.budget_ms is not None else args.budget_gmacs
    kind = "ms" if args.budget_ms is not None else ("gmacs" if args.budget_gmacs is not None else None)
    r = sample_and_select(args.search, args.n, budget=budget, budget_kind=kind, lut=lut,
                          calib_batches=args.calib_batches, split=args.split, val_limit=args.val_limit,
                          val_size=tuple(args.val_size) if args.val_size else None, rule=args.select, seed=args.seed,
                          device=args.device, workers=args.workers, out=args.out, progress=args.progress)
    front = sum(s["on_front"] for s in r.samples)
    c = r.chosen
    print(f"{len(r.samples)} architectures scored in {r.seconds:.1f} s, {front} on the Pareto front "
          f"({r.cost_key}); chosen: mIoU {100 * c['miou']:.2f}% (supernet estimate), {c['gmacs']:.4g} GMACs"
          + (f", {c['latency_ms']:.4g} ms" if "latency_ms" in c else ""))
    print(f"wrote {r.paths['genotype']}, {r.paths['pareto.json']}" + (f", {r.paths['pareto.png']}" if "pareto.png" in r.paths else ""))
    print(f"next: squeezenas train --model {r.paths['genotype']}")
    return 0
