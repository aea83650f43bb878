#!/usr/bin/env python3
"""Time every model of a squeezenas latency bundle with its runtime and write results JSON.

Copied into each bundle as ``run_bundle.py``; needs only Python 3.8+, numpy and the bundle's runtime, so it runs
on devices that cannot run squeezenas: onnxruntime (.onnx), OpenVINO (.xml + .bin) or ExecuTorch (.pte; its Python
runtime, ``executorch.runtime``, hands tensors over as torch tensors, so there torch comes with it). Usage (in the
bundle folder)::

    python run_bundle.py --threads 4 --out results.json

then, where squeezenas is installed: ``squeezenas lut import results.json --out table.json``.

The procedure is the one of ``squeezenas.cost.timing``, written here once and imported by it: the runtime set up
as a deployment would (onnxruntime: ``threads`` intra-op threads, sequential execution, all graph optimisations;
OpenVINO: latency hint, ``threads`` inference threads, float32 precision; ExecuTorch: XNNPACK's pool at ``threads``
threads); input bound once; warm-up calls; samples of enough back-to-back calls to last >= 0.1 ms; sampling
until ``--min-run-time`` seconds and ``--min-repeats`` samples (or ``--max-run-time``); median and spread of the
per-call times; ``--rounds`` round-robin rounds over all models; the CPU name of the device fingerprint. So this
file imports nothing from squeezenas, and a table built from a bundle is timed exactly as one measured where
squeezenas runs. An interrupted run resumes from ``results.json.partial`` when started again with the same settings.
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

RESULTS_FORMAT = "squeezenas latency bundle results"
SAMPLE_TARGET_S = 1e-4  # a sample lasts at least this long: perf_counter/event overhead stays well below 1%
MAX_CALLS_PER_SAMPLE = 1000
ROUNDS = 4  # round-robin rounds of every model; the fastest round is kept


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


def fingerprint(threads: int, runtime: str = "onnxruntime", provider: str = "CPUExecutionProvider",
                device: str = "CPU") -> dict:
    """The fields of squeezenas' device fingerprint that this runner can know (no squeezenas here); ``provider``
    is onnxruntime's execution provider, ``device`` OpenVINO's device."""
    fp = {"device": "cuda" if provider == "CUDAExecutionProvider" else "cpu", "cpu_model": cpu_model(),
          "logical_cores": os.cpu_count(), "machine": platform.machine(), "os": platform.system(),
          "threads": threads, "runtime": runtime, "python": platform.python_version(), "numpy": np.__version__}
    if runtime == "onnxruntime":
        import onnxruntime as ort

        fp.update(onnxruntime=ort.__version__, provider=provider)
    elif runtime == "openvino":
        import openvino as ov

        fp.update(openvino=ov.__version__, **({} if device.upper() == "CPU" else {"runtime_device": device}))
    else:
        from executorch import version

        fp.update(executorch=version.__version__)
    return fp


# --- each runtime set up as a deployment would; the timing backends of squeezenas import these ---------------


def session_options(threads: int):
    """onnxruntime: ``threads`` intra-op threads, sequential execution, all graph optimisations (BN folding,
    fusions), errors only in the log."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    return opts


def bind(session, x: np.ndarray, device: str, device_id: int = 0) -> tuple:
    """onnxruntime: input placed on the device once; outputs left on the device: no host copies inside the timed
    call. Returns the binding and the bound input buffer, which must stay alive as long as the binding is used."""
    import onnxruntime as ort

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


def openvino_properties(device: str, threads: int, precision: str = "f32") -> dict:
    """OpenVINO: the latency hint, the precision asked for (never the plugin's choice: bf16 on CPUs with
    AVX-512 BF16 or AMX) and, on the CPU, ``threads`` inference threads."""
    properties = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if device.upper().startswith("CPU"):
        properties["INFERENCE_NUM_THREADS"] = threads
    return properties


def executorch_threads(threads: int) -> None:
    """ExecuTorch: XNNPACK's thread pool at ``threads`` threads (what ExecuTorch's executor_runner does for
    --cpu_threads; an experimental API of its Python bindings)."""
    import warnings

    from executorch.extension.pybindings import portable_lib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning: the API may change; this file pins what it calls
        count = getattr(portable_lib, "_threadpool_get_thread_count", None)  # since ExecuTorch 1.1
        if count is None or count() != threads:
            portable_lib._unsafe_reset_threadpool(threads)


def _open_onnxruntime(path: Path, x: np.ndarray, args: argparse.Namespace) -> Callable[[], object]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), sess_options=session_options(args.threads), providers=[args.provider])
    binding, bound = bind(session, x, "cuda" if args.provider == "CUDAExecutionProvider" else "cpu")
    return lambda: (session.run_with_iobinding(binding), bound)


def _open_openvino(path: Path, x: np.ndarray, args: argparse.Namespace) -> Callable[[], object]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), args.device, openvino_properties(args.device, args.threads))
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x, shared_memory=True))
    return lambda: (request.infer(), x)


def _open_executorch(path: Path, x: np.ndarray, args: argparse.Namespace) -> Callable[[], object]:
    import torch
    from executorch.runtime import Runtime

    executorch_threads(args.threads)
    # the bindings return torch tensors inside the call: torch's own pool at one thread, so that it does not
    # compete with XNNPACK's (as ExecuTorchBackend.torch_threads, squeezenas/cost/timing/et.py)
    torch.set_num_threads(1)
    program = Runtime.get().load_program(path.read_bytes())
    method = program.load_method("forward")  # needs the program alive: the call below holds both
    inputs = (torch.from_numpy(x),)
    return lambda: (method.execute(inputs), program)


OPEN = {"onnxruntime": _open_onnxruntime, "openvino": _open_openvino, "executorch": _open_executorch}


# --- the timing procedure ---------------------------------------------------------------------------------


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


def time_model(path: Path, shape: list, runtime: str, args: argparse.Namespace) -> dict:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    call = OPEN[runtime](path, x, args)

    def clock(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            call()
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
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the runtime's CPU threads")
    p.add_argument("--provider", default="CPUExecutionProvider", help="onnxruntime execution provider")
    p.add_argument("--device", default="CPU", help="OpenVINO device (CPU, GPU, NPU, ...)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds of sampling per model at least")
    p.add_argument("--max-run-time", type=float, default=10.0)
    p.add_argument("--min-repeats", type=int, default=10)
    p.add_argument("--max-repeats", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=ROUNDS, help="time every model this many times, round-robin")
    p.add_argument("--skip-networks", action="store_true", help="time only the parts, not the check networks")
    return p


def main(argv: list | None = None) -> int:
    args = parser().parse_args(argv)
    args.max_run_time = max(args.max_run_time, args.min_run_time)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    runtime = manifest.get("runtime", "onnxruntime")
    out = args.out or args.bundle / "results.json"
    partial = out.with_name(out.name + ".partial")
    settings = {k: getattr(args, k) for k in ("threads", "provider", "device", "warmup", "min_run_time",
                                              "max_run_time", "min_repeats", "max_repeats", "rounds")}
    settings.update(bundle_id=manifest["bundle_id"], runtime=runtime)
    state: dict = {"parts": {}, "networks": {}}  # name → statistics of each round so far
    if partial.is_file():
        old = json.loads(partial.read_text())
        if old.get("settings") != settings:
            print(f"{partial}: a partial run with other settings ({old.get('settings')}); delete it or use them",
                  file=sys.stderr)
            return 2
        state = old["state"]
    jobs = [("parts", m["key"], m) for m in manifest["parts"]]
    if not args.skip_networks:
        jobs += [("networks", m["name"], m) for m in manifest.get("networks", [])]
    n = 0
    for r in range(args.rounds):  # round-robin: a model's rounds lie minutes apart
        for group, name, m in jobs:
            n += 1
            if len(state[group].get(name, [])) > r:
                continue
            state[group].setdefault(name, []).append(time_model(args.bundle / m["file"], m["input_shape"], runtime,
                                                                args))
            print(f"[{n}/{len(jobs) * args.rounds}] {state[group][name][-1]['median_ms']:9.4f} ms  {name}", flush=True)
            write_json(partial, {"settings": settings, "state": state})
    write_json(out, {"format": RESULTS_FORMAT, "version": 2, "manifest": manifest, "settings": settings,
                     "fingerprint": fingerprint(args.threads, runtime, args.provider, args.device),
                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **state})
    if partial.exists():
        partial.unlink()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
