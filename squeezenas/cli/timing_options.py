"""Timing and contention options (lut build/check/import, bench): the fields of ``TimingConfig`` with its own
defaults, the rounds, and the re-measuring limits of ``cost.timing.contention``."""

from __future__ import annotations

import argparse
from typing import Any

from squeezenas.cost.timing.config import (BACKENDS, CPU_ROUNDS, CUDA_ROUNDS, DEVICES, DTYPES, STATISTICS,
                                           TimingConfig)
from squeezenas.cost.timing.contention import MAX_OTHER_CPU, RETRIES
from squeezenas.cost.timing.onnx import EXPORTERS

DEFAULT = TimingConfig()  # the defaults of every timing option


def timing_args(p: argparse.ArgumentParser, per: str, min_run_time: float | None = None) -> None:
    """The fields of ``TimingConfig`` as options; ``per``: what one measurement times ("part", "network");
    ``min_run_time``: this command's default when it is not the config's."""
    min_run_time = DEFAULT.min_run_time if min_run_time is None else min_run_time
    p.add_argument("--device", choices=DEVICES, default=DEFAULT.device)
    p.add_argument("--backend", choices=BACKENDS.names(), default=DEFAULT.backend,
                   help="the runtime that times it: eager PyTorch, cuda_graph, onnxruntime, openvino "
                        "(pip install 'squeezenas[openvino]'), executorch (XNNPACK; 'squeezenas[executorch]')")
    p.add_argument("--runtime-device", default=DEFAULT.runtime_device,
                   help="OpenVINO's own device (GPU, GPU.1, NPU; default: CPU)")
    p.add_argument("--dtype", choices=list(DTYPES), default=DEFAULT.dtype)
    p.add_argument("--channels-last", action="store_true", help="NHWC weights and inputs (eager, cuda_graph)")
    p.add_argument("--threads", type=int, default=DEFAULT.threads,
                   help="the runtime's CPU threads (default: what a deployment here uses, torch's count: the physical "
                        "cores; recorded in the table)")
    p.add_argument("--batch", type=int, default=DEFAULT.batch)
    p.add_argument("--min-run-time", type=float, default=min_run_time,
                   help=f"seconds of sampling per {per} at least (default {min_run_time:g})")
    p.add_argument("--onnx-exporter", choices=EXPORTERS, default=DEFAULT.onnx_exporter,
                   help="exporter of the onnxruntime backend")
    statistic_arg(p)


def statistic_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--statistic", choices=STATISTICS, default=DEFAULT.statistic,
                   help="per-call figure kept (and compared by `lut check`); default: min on CPU (interference only "
                        "adds time, so the fastest calls are the least disturbed), median on CUDA (docs/LATENCY.md)")


def rounds_arg(p: argparse.ArgumentParser, what: str, default: str = "") -> None:
    p.add_argument("--rounds", type=int, default=None,
                   help=f"time every {what} this many times, round-robin; the figure is the median of the rounds, "
                        f"each divided by the machine's speed at that moment (measured by the measurements just "
                        f"before and after it), so the machine's changes of speed cancel "
                        f"(default: {default}{CPU_ROUNDS} on CPU, {CUDA_ROUNDS} on CUDA)")


def timing_config(args: argparse.Namespace) -> TimingConfig:
    """The ``TimingConfig`` of the options; sampling may last up to the config's ``max_run_time``, or the asked
    ``min_run_time`` when that is longer."""
    return TimingConfig(backend=args.backend, device=args.device, runtime_device=args.runtime_device,
                        dtype=args.dtype, channels_last=args.channels_last, threads=args.threads, batch=args.batch,
                        min_run_time=args.min_run_time, max_run_time=max(DEFAULT.max_run_time, args.min_run_time),
                        onnx_exporter=args.onnx_exporter, statistic=args.statistic)


def contention_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-other-cpu", type=float, default=MAX_OTHER_CPU,
                   help=f"measure again when other processes used more than this share of the CPUs (default "
                        f"{MAX_OTHER_CPU:g}; negative: never)")
    p.add_argument("--retries", type=int, default=RETRIES, help="measurements again at most, per part or network")
    p.add_argument("--canary", action=argparse.BooleanOptionalAction, default=False,
                   help="CPU: time a small fixed workload after each measurement and measure again while the "
                        "machine itself runs slow (off by default: the rounds' speed normalisation divides the "
                        "machine's speed out instead, docs/LATENCY.md)")


def contention(args: argparse.Namespace) -> dict[str, Any]:
    """``max_other_cpu``, ``retries`` and ``canary`` as the measuring functions take them (a negative share:
    never again)."""
    return {"max_other_cpu": None if args.max_other_cpu < 0 else args.max_other_cpu, "retries": args.retries,
            "canary": args.canary}
