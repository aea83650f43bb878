"""Run the whole pipeline: latency table on this device, search, sample and select, retrain, evaluate, report.

With no options it runs on the built-in synthetic data on this CPU in about ten minutes.
"""

from __future__ import annotations

import argparse

from squeezenas.pipeline import PRESETS, demo_config, run_demo


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default runs/demo)")
    p.add_argument("--device", default=None, choices=("cpu", "cuda"), help="device searched for and measured on")
    p.add_argument("--dataset", default=None, choices=tuple(PRESETS), help="default: synthetic (built in)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--space", default=None, help="small, large, xlarge or a macro YAML")
    p.add_argument("--size", nargs=2, type=int, default=None, metavar=("H", "W"), help="deployment resolution")
    p.add_argument("--crop", nargs=2, type=int, default=None, metavar=("H", "W"))
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for latency measurement")
    p.add_argument("--search-epochs", type=int, default=None)
    p.add_argument("--train-epochs", type=int, default=None)
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = demo_config(out=args.out, device=args.device, dataset=args.dataset, data_root=args.data_root,
                      space=args.space, size=tuple(args.size) if args.size else None,
                      crop=tuple(args.crop) if args.crop else None, batch_size=args.batch_size,
                      threads=args.threads, search_epochs=args.search_epochs, train_epochs=args.train_epochs,
                      samples=args.samples, seed=args.seed, progress=False if args.no_progress else None)
    run_demo(cfg)
    return 0
