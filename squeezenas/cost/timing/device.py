"""A device fingerprint stored with every latency table, to warn when a table was measured elsewhere."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import onnxruntime
import torch

from squeezenas.cost.bundle.runner import cpu_model
from squeezenas.cost.timing.backends import RuntimeMissing
from squeezenas.cost.timing.config import BACKENDS


def device_fingerprint(device: str = "cpu", threads: int | None = None, *, backend: str | None = None,
                       runtime_device: str | None = None) -> dict[str, Any]:
    """What determines measured latency on this machine: CPU, GPU, library versions, threads.

    Hostname-independent, so two identical machines give the same fingerprint. ``threads=None`` records
    torch's current intra-op thread count (what ``measure`` would use). The CPU name is read as the bundle
    runner reads it (``cpu_model``), so a table measured from a bundle compares field by field. With a
    ``backend`` whose runtime is not torch or onnxruntime (openvino, executorch), that runtime's version too,
    and OpenVINO's own device (``runtime_device``) when one is named.
    """
    fp: dict[str, Any] = {
        "device": device,
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.system(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "threads": threads if threads is not None else torch.get_num_threads(),
    }
    if device == "cuda":
        fp.update(_cuda_fingerprint())
    if backend in BACKENDS:
        runtime = BACKENDS.get(backend)
        if runtime.module and runtime.name != "onnxruntime":
            try:
                fp[runtime.name] = runtime.version()
            except RuntimeMissing:  # a table of that runtime read where it is not installed
                fp[runtime.name] = None
        if runtime_device is not None:
            fp["runtime_device"] = runtime_device
    return fp


def fingerprint_matches(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The fields in which two fingerprints differ, as "field: a_value != b_value"; empty when they match.

    A field missing on one side counts as a difference (e.g. a CPU table checked against a CUDA fingerprint).
    """
    return [f"{key}: {a.get(key)!r} != {b.get(key)!r}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _cuda_fingerprint() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"gpu": None}
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "gpu": props.name,
        "gpu_capability": f"{props.major}.{props.minor}",
        "gpu_memory_gib": round(props.total_memory / 2**30),
        "gpu_driver": nvidia_driver_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def nvidia_driver_version() -> str | None:
    """The NVIDIA kernel driver version, from /proc or nvidia-smi; None when neither says."""
    proc = Path("/proc/driver/nvidia/version")
    if proc.is_file():
        # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 ..."
        lines = proc.read_text(errors="replace").splitlines()
        for word in (lines[0].split() if lines else []):
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                return word
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None
