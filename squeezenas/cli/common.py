"""Option groups shared by several subcommands: data, config overrides, timing and contention."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from squeezenas.cost.timing import BACKENDS, DTYPES, STATISTICS, TimingConfig
from squeezenas.export import EXPORTERS
from squeezenas.utils.config import ConfigError

# --- data and config overrides (search, train, eval) --------------------------------------------------------


def data_args(p: argparse.ArgumentParser, dataset_help: str, root_help: str = "the dataset's folder") -> None:
    p.add_argument("--dataset", help=dataset_help)
    p.add_argument("--data-root", help=root_help)
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE", dest="data_option",
                   help="extra dataset argument, YAML value (e.g. num_samples=64, size=[64,128]); repeatable")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["size=[64,128]", "num_samples=8"]`` → ``{"size": [64, 128], "num_samples": 8}``."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--data-option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options


def overrides_from(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config fields given on the command line (parsers with ``argument_default=SUPPRESS``, whose dests are
    the field names); ``--data-option`` items become ``data_options``."""
    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("command", "config", *skip)}
    if "data_option" in given:
        given["data_options"] = parse_options(given.pop("data_option"))
    return given


# --- timing (lut build, bench) and contention (lut build/check, bench) ---------------------------------------


def timing_args(p: argparse.ArgumentParser, min_run_time: float, per: str) -> None:
    """The fields of ``TimingConfig`` as options; ``per``: what one measurement times ("part", "network")."""
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backend", choices=BACKENDS.names(), default="eager")
    p.add_argument("--dtype", choices=list(DTYPES), default="float32")
    p.add_argument("--channels-last", action="store_true", help="NHWC weights and inputs (eager, cuda_graph)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's current count)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--min-run-time", type=float, default=min_run_time,
                   help=f"seconds of sampling per {per} at least (default {min_run_time:g})")
    p.add_argument("--onnx-exporter", choices=EXPORTERS, default="dynamo", help="exporter of the onnxruntime backend")
    statistic_arg(p)


def statistic_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--statistic", choices=STATISTICS, default="median",
                   help="per-call figure kept (and compared by `lut check`): median (default), or min/p10 on a machine "
                        "whose speed wanders, e.g. a VM on a shared host (docs/LATENCY.md)")


def timing_config(args: argparse.Namespace) -> TimingConfig:
    return TimingConfig(backend=args.backend, device=args.device, dtype=args.dtype, channels_last=args.channels_last,
                        threads=args.threads, batch=args.batch, min_run_time=args.min_run_time,
                        max_run_time=max(10.0, args.min_run_time), onnx_exporter=args.onnx_exporter,
                        statistic=args.statistic)


def contention_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-other-cpu", type=float, default=0.05,
                   help="measure again when other processes used more than this share of the CPUs (default 0.05; "
                        "negative: never)")
    p.add_argument("--retries", type=int, default=3, help="measurements again at most, per part or network")


def contention(args: argparse.Namespace) -> dict:
    return {"max_other_cpu": None if args.max_other_cpu < 0 else args.max_other_cpu, "retries": args.retries}
