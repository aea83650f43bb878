"""End-to-end batch-1 benchmark of one network: latency (median, spread), GMAC/s and peak memory.

Timed by ``cost.timing.measure`` with the same ``TimingConfig`` a latency table records, so a table's prediction
and this measurement are comparable by construction.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from squeezenas.cost.counting import count_costs
from squeezenas.cost.timing.backends import Artefact
from squeezenas.cost.timing.canary import SpeedCanary, speed_canary
from squeezenas.cost.timing.config import BACKENDS, TimingConfig, check_available, default_rounds, stat_key
from squeezenas.cost.timing.contention import (MAX_OTHER_CPU, RETRIES, WaitBudget, cpu_load, measure_guarded,
                                                 warn_if_busy)
from squeezenas.cost.timing.device import device_fingerprint
from squeezenas.cost.timing.rounds import combine_all
from squeezenas.cost.timing.targets import TimingTargets
from squeezenas.cost.timing.timer import measure
from squeezenas.models.resolve import resolve_model
from squeezenas.space.genotype import Genotype
from squeezenas.utils.config import pair
from squeezenas.utils.runtime import die_with_parent

DEFAULT_SIZE = (1024, 2048)


def benchmark(
    model: str | Path | nn.Module,
    size: tuple[int, int] | None = None,
    config: TimingConfig | None = None,
    *,
    num_classes: int | None = None,
    memory: bool = True,
    name: str | None = None,
    max_other_cpu: float | None = MAX_OTHER_CPU,
    retries: int = RETRIES,
    rounds: int | None = None,
    canary: bool | SpeedCanary = False,
    wait_budget: WaitBudget | None = None,
) -> dict[str, Any]:
    """Latency of ``model`` (zoo name, genotype file, checkpoint, module, or a file ``squeezenas export`` wrote:
    .onnx, OpenVINO .xml, ExecuTorch .pte) on one (1, 3, H, W) input; ``size`` defaults to such a file's own
    input size, else 1024×2048.

    A file is timed as it is, with its runtime's backend only; its GMACs are not known (None). Returns the
    config's statistic (``latency_ms``) and median/IQR/p10/p90/min (ms), repeats, GMACs (SPEC convention) and
    GMAC/s at that latency, peak memory (see ``peak_memory``), the timing settings and this machine's
    fingerprint. The network is timed ``rounds`` times (default 16 on CPU, 1 on CUDA), and its figure is the
    median of the rounds, each divided by the machine's speed at that moment (``combine_all``; ``round_values``
    and ``round_speeds`` list them). Each measurement is repeated (``retries``
    times at most) while other processes use more than ``max_other_cpu`` of the CPUs (``measure_guarded``);
    ``other_cpu`` records their worst share during the kept rounds; with ``canary`` (CPU only) also while the
    machine itself runs slow (``SpeedCanary``, or the one given, shared by several benchmarks; ``canary_ratio``
    of the kept round). Waiting for a quiet machine is bounded by ``wait_budget`` (``WaitBudget``: 120 s per call
    unless one is given, shared by several benchmarks).
    """
    return _benchmark_round_robin([model], size, config, names=[name], num_classes=num_classes, memory=memory,
                                  max_other_cpu=max_other_cpu, retries=retries, rounds=rounds, canary=canary,
                                  wait_budget=wait_budget)[0]


def benchmark_fresh(models: list[Genotype | str | Path], size: tuple[int, int], config: TimingConfig, *,
                    num_classes: int | None = None, canary: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
    """``benchmark_all`` of the networks (genotypes, zoo names or files, built with ``num_classes``) in a new
    Python process (spawned, as ``squeezenas bench`` runs; ended by the kernel if this one is killed).

    For a process that has done other work first (trained or scored a supernet): networks timed inside such a
    process measured 10-24% above the same networks timed by ``squeezenas bench`` (docs/SEARCH.md, step 6 of
    the selection), with no cause found (not reproduced on the demo's search, where single timings varied
    ±20% either way); a fresh process holds nothing but the networks timed, as a deployment does. The networks
    are built there: modules would travel as shared-memory tensors, one file descriptor each.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for m in models:
        if not isinstance(m, (Genotype, str, Path)):
            raise TypeError(f"benchmark_fresh takes genotypes, zoo names or files, not {type(m).__name__}")
    if not models:
        return []
    if config.device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()  # this process's cached blocks would crowd the timing process's
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        return pool.submit(benchmark_all, models, size, config, num_classes=num_classes, canary=canary,
                           **kwargs).result()


def benchmark_all(models: list[Genotype | str | Path | nn.Module], size: tuple[int, int], config: TimingConfig, *,
                  num_classes: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """``benchmark`` of several networks in this process, their rounds round-robin (as a table's parts and its
    check's networks are timed: a network's rounds lie apart in time, so one slow spell of the machine does not
    spoil all of them), with one speed canary and one wait budget for all; each result also records ``pid``.
    ``kwargs`` go to ``benchmark`` (not ``name``)."""
    from squeezenas.models.builder import build_model

    nets = [build_model(m, num_classes=num_classes) if isinstance(m, Genotype) else m for m in models]
    results = _benchmark_round_robin(nets, size, config, names=[None] * len(nets), num_classes=num_classes,
                                     **kwargs)
    return [{**r, "pid": os.getpid()} for r in results]


def _benchmark_round_robin(models: list[Any], size: tuple[int, int] | None, config: TimingConfig | None, *,
                           names: list[str | None], num_classes: int | None = None, memory: bool = True,
                           max_other_cpu: float | None = MAX_OTHER_CPU, retries: int = RETRIES,
                           rounds: int | None = None, canary: bool | SpeedCanary = False,
                           wait_budget: WaitBudget | None = None) -> list[dict[str, Any]]:
    """What ``benchmark`` describes, for each of ``models``: every round times each network once, in order."""
    config = (config or TimingConfig()).resolved()
    wait_budget = wait_budget or WaitBudget()
    rounds = default_rounds(config) if rounds is None else rounds
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    nets = [_prepare(m, size, config, num_classes, n) for m, n in zip(models, names)]
    check_available(config)
    for n in nets:
        n["gmacs"] = None if isinstance(n["net"], Artefact) else count_costs(n["net"], n["size"]).gmacs
    load = warn_if_busy(config, "the benchmark")
    measured: list[list[dict]] = [[] for _ in nets]
    timings: list[Any] = [None] * len(nets)
    # rounds, retries and the memory run time one export of each network (the file a deployment loads)
    with TimingTargets(config) as targets:
        def target(k: int) -> nn.Module | Artefact:
            net = nets[k]["net"]
            return net if isinstance(net, Artefact) else targets.get(str(k), lambda: net, (3, *nets[k]["size"]))

        probe = speed_canary(config.device, config.threads, canary, config.runtime_device)
        for _ in range(rounds):
            for k, n in enumerate(nets):
                g = measure_guarded(measure, lambda k=k: target(k), (3, *n["size"]), config, max_other_cpu, retries,
                                    canary=probe, budget=wait_budget)
                measured[k].append({**g.timing.statistics(), **g.record(), "at": time.time()})
                timings[k] = g.timing
        memory_use = [peak_memory(target(k), n["size"], config) if memory else
                      {"peak_memory_mb": None, "memory_kind": None} for k, n in enumerate(nets)]
    stat = stat_key(config.statistic)
    combined = combine_all({str(k): m for k, m in enumerate(measured)}, stat)
    return [_result(n, combined[str(k)], stat, rounds, config, t, load) | mem
            for k, (n, t, mem) in enumerate(zip(nets, timings, memory_use))]


def _prepare(model: Any, size: tuple[int, int] | None, config: TimingConfig, num_classes: int | None,
             name: str | None) -> dict[str, Any]:
    """The network to time (a module or a runtime's file), its label, genotype and (H, W) input size."""
    artefact = _artefact_of(model)
    if artefact is not None:
        own_size = _artefact_input_size(artefact, config)  # also refuses a missing file or another backend
        net, label, genotype, size = artefact, name or artefact.path.stem, None, size or own_size
    elif isinstance(model, nn.Module):
        net, label, genotype = model, name or type(model).__name__, getattr(model, "genotype", None)
    else:
        r = resolve_model(model, num_classes=num_classes)
        net, label, genotype = r.model, name or r.name, r.genotype
    return {"net": net, "name": label, "genotype": genotype, "size": pair("size", tuple(size or DEFAULT_SIZE))}


def _result(net: dict[str, Any], m: dict[str, Any], stat: str, rounds: int, config: TimingConfig, t: Any,
            load: Any) -> dict[str, Any]:
    """One network's record from its combined rounds (``m``) and its last timing (``t``)."""
    gmacs = net["gmacs"]
    return {
        "name": net["name"], "genotype": net["genotype"].to_dict() if net["genotype"] is not None else None,
        "input_size": list(net["size"]), "batch": config.batch, "statistic": config.statistic,
        "latency_ms": m[stat],
        **{k: m[k] for k in ("median_ms", "iqr_ms", "p10_ms", "p90_ms", "min_ms", "repeats", "calls_per_repeat")},
        "rounds": rounds, "round_values": m.get("round_values", [m[stat]]), "round_speeds": m.get("round_speeds"),
        "gmacs": gmacs, "gmac_per_s": None if gmacs is None else gmacs * config.batch / (m[stat] / 1e3),
        "backend": config.backend, "device": config.device, "dtype": config.dtype,
        "channels_last": config.channels_last, "threads": t.threads,
        "timing": config.to_dict(),
        "fingerprint": device_fingerprint(config.device, t.threads, backend=config.backend,
                                          runtime_device=config.runtime_device),
        "load_average": {"start": load, "end": cpu_load()}, "other_cpu": m["other_cpu"], "attempts": m["attempts"],
        "canary_ratio": m.get("canary_ratio"),
    }


def _artefact_of(model: Any) -> Artefact | None:
    """The artefact a path names by its suffix (.onnx, .xml, .pte), with the backend that runs it; else None."""
    if not isinstance(model, (str, Path)):
        return None
    suffix = Path(model).suffix.lower()
    backend = next((b for b in BACKENDS if BACKENDS.get(b).suffix == suffix), None)
    return None if backend is None else Artefact(Path(model), backend)


def _artefact_input_size(artefact: Artefact, config: TimingConfig) -> tuple[int, int] | None:
    """(H, W) of a file's one image input when fixed, None when dynamic; clear errors for bad files."""
    path = artefact.path
    if not path.is_file():
        kind = {"onnxruntime": "ONNX", "openvino": "OpenVINO", "executorch": "ExecuTorch"}.get(artefact.backend)
        raise FileNotFoundError(f"{path}: no such {kind or artefact.backend} file")
    if config.backend != artefact.backend:
        raise ValueError(f"{path}: a {path.suffix} file is timed with the {artefact.backend} backend "
                         f"(--backend {artefact.backend}), not {config.backend!r}")
    backend = BACKENDS.get(artefact.backend)
    backend.require()
    shape = backend.input_shape(path)
    if len(shape) != 4:
        raise ValueError(f"{path}: expected one (N, 3, H, W) input, got shape {shape}")
    return (shape[2], shape[3]) if all(isinstance(d, int) for d in shape[2:]) else None


def peak_memory(model: nn.Module | Artefact, size: tuple[int, int], config: TimingConfig) -> dict[str, Any]:
    """Peak memory of a short run (one warm-up call and one timed call) of the same backend.

    CUDA with a PyTorch backend: ``torch.cuda.max_memory_allocated`` (weights + activations + workspace).
    CPU: increase of the process's resident set size over the run, sampled every millisecond from /proc
    (it includes the backend's preparation: the model copy, or loading the runtime's file and its session); where
    /proc is missing, the increase of ``ru_maxrss`` (a lower bound). Kept apart from the timed run, so the
    sampling thread cannot disturb the latency figure.
    """
    short = dataclasses.replace(config, warmup=1, min_repeats=1, max_repeats=1, min_run_time=0.0,
                                max_run_time=max(config.max_run_time, 1e-3))
    h, w = size
    if config.device == "cuda" and BACKENDS.get(config.backend).suffix is None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        measure(model, (3, h, w), short)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"peak_memory_mb": peak / 2**20, "peak_memory_delta_mb": (peak - base) / 2**20,
                "memory_kind": "cuda max_memory_allocated"}
    if config.device == "cuda":
        kind = "process RSS increase (host side only: onnxruntime's CUDA memory is not visible to torch)"
    else:
        kind = "process RSS increase over a short run"
    with RssSampler() as sampler:
        measure(model, (3, h, w), short)
    return {"peak_memory_mb": sampler.peak_mb, "peak_memory_delta_mb": sampler.delta_mb, "memory_kind": kind}


class RssSampler:
    """Samples the resident set size on a thread; ``peak_mb`` (absolute) and ``delta_mb`` (over the start)."""

    _STATM = Path("/proc/self/statm")

    def __init__(self, interval_s: float = 1e-3):
        self.interval_s = interval_s
        self.start_b = self.peak_b = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._maxrss0 = 0

    def _rss(self) -> int:
        if self._STATM.is_file():
            return int(self._STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return self._maxrss()

    @staticmethod
    def _maxrss() -> int:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB on Linux

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_b = max(self.peak_b, self._rss())
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.start_b = self.peak_b = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_b = max(self.peak_b, self._rss())

    @property
    def peak_mb(self) -> float:
        return self.peak_b / 2**20

    @property
    def delta_mb(self) -> float:
        return max(0, self.peak_b - self.start_b) / 2**20
