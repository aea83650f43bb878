"""Score a trained network on a dataset split: full resolution, batch 1, class mIoU, per-class IoU, pixel accuracy.

CKPT is a checkpoint of ours (it names its network, classes and dataset: --dataset and --data-root default to
the training run's); with --model NAME any weights file is loaded strictly into that network (e.g. a released
SqueezeNAS .pth). --report writes everything as JSON, including the confusion matrix.
"""

from __future__ import annotations

import argparse

from squeezenas.cli.options import add_config_options, config_file_option, overrides_from
from squeezenas.engine.config import EvalConfig
from squeezenas.utils.config import resolve_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_file_option(p, EvalConfig)
    add_config_options(p, EvalConfig, metavars={"checkpoint": ("CKPT",)})


def format_report(report: dict) -> str:
    """A readable table: per-class IoU, then the means."""
    def pct(v: float | None) -> str:
        return "   n/a" if v is None else f"{100 * v:6.2f}"

    lines = [f"{report['dataset']} {report['split']}: {report['num_images']} images, model {report['model']}"]
    lines += [f"  {name:<16} {pct(v)}" for name, v in report["per_class_iou"].items()]
    lines.append(f"  {'mIoU':<16} {pct(report['miou'])}")
    if "category_miou" in report:
        lines.append(f"  {'category mIoU':<16} {pct(report['category_miou'])}")
    lines.append(f"  {'pixel accuracy':<16} {pct(report['pixel_accuracy'])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from squeezenas.engine.evaluate import evaluate_checkpoint

    cfg = resolve_config(EvalConfig, overrides_from(args), args.config)
    report = evaluate_checkpoint(cfg)
    print(format_report(report))
    if cfg.report:
        print(f"wrote {cfg.report}")
    return 0
