"""Score a trained network on a dataset split: full resolution, batch 1, class mIoU, per-class IoU, pixel accuracy.

CKPT is a checkpoint of ours (it names its network, classes and dataset: --dataset and --data-root default to
the training run's); with --model NAME any weights file is loaded strictly into that network (e.g. a released
SqueezeNAS .pth). --report writes everything as JSON, including the confusion matrix.
"""

from __future__ import annotations

import argparse

from squeezenas.cli.common import data_args, overrides_from
from squeezenas.engine.config import EvalConfig, resolve_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.argument_default = argparse.SUPPRESS
    p.add_argument("--config", default=None, help="YAML/JSON file of EvalConfig fields")
    p.add_argument("--checkpoint", metavar="CKPT", help="trained checkpoint (or weights file with --model)")
    p.add_argument("--model", help="zoo name or genotype file, when CKPT does not say which network it holds")
    data_args(p, "default: the checkpoint's", root_help="default: the training run's")
    p.add_argument("--split", help="val (default) or test")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="run the network at H W (labels are still scored at full resolution)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--amp", action=argparse.BooleanOptionalAction)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction)
    p.add_argument("--workers", type=int)
    p.add_argument("--max-images", type=int, help="score only the first N images")
    p.add_argument("--report", metavar="OUT.json", help="write the JSON report here")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction)


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
