#!/usr/bin/env python3
"""Time every ONNX model of a squeezenas latency bundle with onnxruntime and write results JSON.

Copied into each bundle as ``run_bundle.py``; needs only Python 3.8+, numpy and onnxruntime, so it runs on
devices that cannot run PyTorch or squeezenas. Usage (in the bundle folder)::

    python run_bundle.py --threads 4 --out results.json

then, where squeezenas is installed: ``squeezenas lut import results.json --out table.json``.

The procedure is the one of ``squeezenas.cost.timing`` (onnxruntime backend), written here once and imported
by it: session with ``threads`` intra-op threads, sequential execution, all graph optimisations; input and
outputs bound once; warm-up calls; samples of enough back-to-back calls to last >= 0.1 ms; sampling until
``--min-run-time`` seconds and ``--min-repeats`` samples (or ``--max-run-time``); median and spread of the
per-call times; the CPU name of the device fingerprint. So this file imports nothing from squeezenas, and a
table built from a bundle is timed exactly as one measured where squeezenas runs. An interrupted run resumes
from ``results.json.partial`` when started again with the same settings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

RESULTS_FORMAT = "squeezenas latency bundle results"
SAMPLE_TARGET_S = 1e-4  # a sample lasts at least this long: perf_counter/event overhead stays well below 1%
MAX_CALLS_PER_SAMPLE = 1000


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            # x86 says "model name"; some ARM kernels say "Model" or "Hardware" instead.
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def fingerprint(threads: int, provider: str) -> dict:
    """The fields of squeezenas' device fingerprint that this runner can know (no torch here)."""
    return {"device": "cuda" if provider == "CUDAExecutionProvider" else "cpu", "cpu_model": cpu_model(),
            "logical_cores": os.cpu_count(), "machine": platform.machine(), "os": platform.system(),
            "onnxruntime": ort.__version__, "threads": threads, "provider": provider,
            "python": platform.python_version(), "numpy": np.__version__}


def session_options(threads: int) -> ort.SessionOptions:
    """As a deployment would configure a session: ``threads`` intra-op threads, sequential execution, all graph
    optimisations (BN folding, fusions), errors only in the log."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    return opts


def bind(session: ort.InferenceSession, x: np.ndarray, device: str, device_id: int = 0) -> tuple:
    """Input placed on the device once; outputs left on the device: no host copies inside the timed call.

    Returns the binding and the bound input buffer, which must stay alive as long as the binding is used.
    """
    binding = session.io_binding()
    name = session.get_inputs()[0].name
    if device == "cuda":
        x = ort.OrtValue.ortvalue_from_numpy(x, "cuda", device_id)
        binding.bind_ortvalue_input(name, x)
    else:
        binding.bind_cpu_input(name, x)
    for out in session.get_outputs():
        binding.bind_output(out.name, device, device_id)
    return binding, x


def calls_per_sample(per_call_s: float) -> int:
    """Back-to-back calls in one sample, so that a sample lasts at least ``SAMPLE_TARGET_S`` and the clock's
    overhead stays negligible; a call longer than that gets true per-call samples."""
    if per_call_s <= 0:
        return MAX_CALLS_PER_SAMPLE
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(SAMPLE_TARGET_S / per_call_s)))


def warm_up(clock: Callable[[int], float], warmup: int, min_run_time: float) -> float:
    """Run the warm-up calls (at least one, to calibrate); return the typical time of one warm call (seconds).

    ``clock(n)`` times ``n`` calls. A slow model stops warming up after two calls once ``min_run_time`` has
    passed: its first calls already amortise lazy initialisation, and ten more multi-second calls buy nothing.
    """
    times: list = []
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        times.append(clock(1))
        if len(times) >= min(warmup, 2) and time.perf_counter() - start >= min_run_time:
            break
    return float(np.median(times[len(times) // 2:]))  # the later, warm calls


def sample(clock: Callable[[int], float], number: int, min_run_time: float, max_run_time: float, min_repeats: int,
           max_repeats: int) -> list:
    """Per-call times (seconds) of samples of ``number`` calls each, until both ``min_run_time`` seconds and
    ``min_repeats`` samples are reached, or ``max_repeats`` samples, or ``max_run_time`` seconds whatever the
    count (a model that takes seconds is not repeated needlessly)."""
    samples: list = []
    start = time.perf_counter()
    while len(samples) < max_repeats:
        samples.append(clock(number) / number)
        elapsed = time.perf_counter() - start
        if elapsed >= max_run_time or (len(samples) >= min_repeats and elapsed >= min_run_time):
            break
    return samples


def statistics(samples: list, number: int) -> dict:
    """Median and spread (ms) of per-call times (seconds) measured in samples of ``number`` calls: the fields
    of a latency-table entry."""
    ms = np.asarray(samples) * 1e3
    p10, p25, p50, p75, p90 = (float(v) for v in np.percentile(ms, [10, 25, 50, 75, 90]))
    return {"median_ms": p50, "iqr_ms": p75 - p25, "p10_ms": p10, "p90_ms": p90, "mean_ms": float(ms.mean()),
            "min_ms": float(ms.min()), "repeats": len(samples), "calls_per_repeat": number}


def time_model(path: Path, shape: list, args: argparse.Namespace) -> dict:
    session = ort.InferenceSession(str(path), sess_options=session_options(args.threads), providers=[args.provider])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    binding, x = bind(session, x, "cuda" if args.provider == "CUDAExecutionProvider" else "cpu")

    def clock(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            session.run_with_iobinding(binding)
        return time.perf_counter() - start

    number = calls_per_sample(warm_up(clock, args.warmup, args.min_run_time))
    samples = sample(clock, number, args.min_run_time, args.max_run_time, args.min_repeats, args.max_repeats)
    return statistics(samples, number)


def write_json(path: Path, obj: dict) -> None:
    """Atomic: a temporary file in the same folder, then renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def parser() -> argparse.ArgumentParser:
    """The runner's options; the timing ones default to ``squeezenas.cost.timing.TimingConfig``'s."""
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=here, help="bundle folder (default: this script's folder)")
    p.add_argument("--out", type=Path, default=None, help="results file (default: BUNDLE/results.json)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="onnxruntime intra-op threads")
    p.add_argument("--provider", default="CPUExecutionProvider", help="onnxruntime execution provider")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds of sampling per model at least")
    p.add_argument("--max-run-time", type=float, default=10.0)
    p.add_argument("--min-repeats", type=int, default=10)
    p.add_argument("--max-repeats", type=int, default=10000)
    p.add_argument("--skip-networks", action="store_true", help="time only the parts, not the check networks")
    return p


def main(argv: list | None = None) -> int:
    args = parser().parse_args(argv)
    args.max_run_time = max(args.max_run_time, args.min_run_time)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    out = args.out or args.bundle / "results.json"
    partial = out.with_name(out.name + ".partial")
    settings = {k: getattr(args, k) for k in ("threads", "provider", "warmup", "min_run_time", "max_run_time",
                                              "min_repeats", "max_repeats")}
    settings["bundle_id"] = manifest["bundle_id"]
    state = {"parts": {}, "networks": {}}
    if partial.is_file():
        old = json.loads(partial.read_text())
        if old.get("settings") != settings:
            print(f"{partial}: a partial run with other settings ({old.get('settings')}); delete it or use them",
                  file=sys.stderr)
            return 2
        state = old["state"]
    jobs = [("parts", m) for m in manifest["parts"]]
    if not args.skip_networks:
        jobs += [("networks", m) for m in manifest.get("networks", [])]
    for n, (group, m) in enumerate(jobs, 1):
        name = m["key"] if group == "parts" else m["name"]
        if name in state[group]:
            continue
        state[group][name] = time_model(args.bundle / m["file"], m["input_shape"], args)
        print(f"[{n}/{len(jobs)}] {state[group][name]['median_ms']:9.4f} ms  {name}", flush=True)
        write_json(partial, {"settings": settings, "state": state})
    write_json(out, {"format": RESULTS_FORMAT, "manifest": manifest, "settings": settings,
                     "fingerprint": fingerprint(args.threads, args.provider),
                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **state})
    if partial.exists():
        partial.unlink()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
