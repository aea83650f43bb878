"""Train a network of the space or a zoo network on a segmentation dataset (CPU, one GPU, or torchrun for many).

Values come from the defaults, then --config run.yaml, then the options given here. --resume continues the run
in --out from last.pt (its saved config supplies every option not given again; --epochs may be raised).
Multi-GPU: torchrun --nproc_per_node N -m squeezenas.cli.main train ...
"""

from __future__ import annotations

import argparse

from squeezenas.cli.options import add_config_options, config_file_option, overrides_from
from squeezenas.engine.config import TrainConfig, resolve_train_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_file_option(p, TrainConfig)
    add_config_options(p, TrainConfig)


def run(args: argparse.Namespace) -> int:
    from squeezenas.engine.train import train

    cfg = resolve_train_config(overrides_from(args), args.config)
    summary = train(cfg)
    if summary["best_miou"] is not None:
        print(f"best val mIoU {100 * summary['best_miou']:.2f}% at epoch {summary['best_epoch']}; "
              f"checkpoints in {summary['out']} (best.pt, last.pt)")
    return 0
