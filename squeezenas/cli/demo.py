"""Run the whole pipeline: latency table on this device, search, sample and select, retrain, evaluate, report.

With no options it runs on the built-in synthetic data on this CPU in a few minutes (docs/RESULTS.md); with
--dataset the dataset's preset applies first (larger sizes, more epochs), then the options given here.
"""

from __future__ import annotations

import argparse

from squeezenas.cli.options import add_config_options, overrides_from
from squeezenas.pipeline import PRESETS, DemoConfig, demo_config, run_demo


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_options(p, DemoConfig, help={"dataset": f"one of {', '.join(PRESETS)} (default: synthetic, built in); "
                                                       "its preset sets the sizes and epochs"})


def run(args: argparse.Namespace) -> int:
    run_demo(demo_config(**overrides_from(args)))
    return 0
