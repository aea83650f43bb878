"""Other processes on a shared CPU make timings wrong: watch them during a measurement, measure again while they
are busy, wait for a quiet moment, warn before timing on a loaded machine, and summarise how much they disturbed."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from torch import nn

from squeezenas.cost.timing.canary import SpeedCanary
from squeezenas.cost.timing.config import Timing, TimingConfig
from squeezenas.cost.timing.timer import MeasureFn

# Defaults of every command that measures: measure again when other processes used more than this share of the
# CPUs during a measurement, at most this many times.
MAX_OTHER_CPU = 0.05
RETRIES = 3


class CpuMonitor:
    """Share of the machine's CPU time that *other* processes used while the block ran (Linux /proc).

    ``other_share`` is (Δ busy time of all CPUs − Δ CPU time of this process) / Δ total time of all CPUs, in
    [0, 1]; None where /proc is missing or too little time passed to tell (clock ticks are 10 ms).
    """

    _STAT, _SELF = Path("/proc/stat"), Path("/proc/self/stat")

    def __init__(self) -> None:
        self.other_share: float | None = None
        self._start: tuple[int, int, int] | None = None

    @classmethod
    def _read(cls) -> tuple[int, int, int] | None:
        try:
            cpu = [int(v) for v in cls._STAT.read_text().splitlines()[0].split()[1:]]
            own = cls._SELF.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)  # idle + iowait
        total = sum(cpu[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
        return total - idle, total, int(own[11]) + int(own[12])  # utime + stime of all our threads

    def __enter__(self) -> CpuMonitor:
        self._start = self._read()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = self._read()
        if self._start is None or end is None:
            return
        busy, total, own = (b - a for a, b in zip(self._start, end))
        if total >= 20:  # at least 0.2 s of CPU time over all cores, else the ticks say nothing
            self.other_share = min(1.0, max(0.0, (busy - own) / total))


class Guarded(NamedTuple):
    """A measurement and what the guards saw: the other processes' CPU share during it, the attempts it took, and
    the speed canary's ratio right after it (None without a canary)."""

    timing: Timing
    other_cpu: float | None
    attempts: int
    canary_ratio: float | None = None

    def record(self) -> dict[str, Any]:
        """The fields a table entry, a check row or a benchmark keeps next to the timing's statistics."""
        out: dict[str, Any] = {"other_cpu": self.other_cpu, "attempts": self.attempts}
        if self.canary_ratio is not None:
            out["canary_ratio"] = self.canary_ratio
        return out


class WaitBudget:
    """Seconds of waiting for a quiet machine left to a run, shared by its measurements: on a machine that stays
    busy (a laptop running other work) every busy measurement would otherwise wait up to 30 s per retry — 20
    minutes for the five finalists of a selection. Once it is spent, a busy measurement is taken again at once."""

    def __init__(self, seconds: float = 120.0):
        self.seconds = self.left_s = seconds

    def wait_for_quiet(self, max_other_cpu: float, wait_s: float) -> None:
        if self.left_s <= 0:
            return
        start = time.monotonic()
        _wait_for_quiet(max_other_cpu, min(wait_s, self.left_s))
        self.left_s -= time.monotonic() - start
        if self.left_s <= 0:
            warnings.warn(f"other processes kept the CPUs busy: the {self.seconds:g} s allowed for waiting for quiet "
                          "moments are spent, measuring on without waiting (each result records other_cpu)",
                          stacklevel=2)


def measure_guarded(measure_fn: MeasureFn, build: Callable[[], nn.Module], shape: Sequence[int],
                    config: TimingConfig, max_other_cpu: float | None, retries: int,
                    wait_s: float = 30.0, canary: SpeedCanary | None = None,
                    budget: WaitBudget | None = None) -> Guarded:
    """``measure_fn`` again (up to ``retries`` times) while other processes used more than ``max_other_cpu`` of
    the CPUs during the measurement (after waiting up to ``wait_s`` for a quiet second, within ``budget`` when
    given), or while the machine itself ran slow: the ``canary``, timed right after the measurement, slower than
    its best by more than its tolerance (after waiting until it is back to normal speed)."""
    attempt = 0
    while True:
        attempt += 1
        with CpuMonitor() as monitor:
            timing = measure_fn(build(), shape, config)
        share = monitor.other_share
        busy = max_other_cpu is not None and share is not None and share > max_other_cpu
        # the canary only where no other process was busy: they would slow it too (the contention guard's case)
        ratio = canary.ratio() if canary is not None and not busy else None
        slow = ratio is not None and canary.is_slow(ratio)
        if not (busy or slow) or attempt > retries:
            return Guarded(timing, share, attempt, ratio)
        if slow:
            canary.slow_readings += 1
            canary.wait_until_normal()
        if busy:
            if budget is None:
                _wait_for_quiet(max_other_cpu, wait_s)
            else:
                budget.wait_for_quiet(max_other_cpu, wait_s)


def _wait_for_quiet(max_other_cpu: float, timeout_s: float) -> None:
    """Sleep in 1-s windows until one has other processes below ``max_other_cpu``, or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with CpuMonitor() as monitor:
            time.sleep(1.0)
        if monitor.other_share is not None and monitor.other_share <= max_other_cpu:
            return


def contention_summary(items: list[tuple[str, dict]], max_other_cpu: float | None) -> dict[str, Any]:
    """How much other processes disturbed a set of measurements (table entries or check rows)."""
    shares = [d.get("other_cpu") for _, d in items if d.get("other_cpu") is not None]
    limit = 1.0 if max_other_cpu is None else max_other_cpu
    ratios = [d["canary_ratio"] for _, d in items if d.get("canary_ratio") is not None]
    return {"max_other_cpu": max_other_cpu, "mean_other_cpu": float(np.mean(shares)) if shares else None,
            "worst_other_cpu": max(shares, default=None),
            "worst_canary_ratio": max(ratios, default=None),
            "remeasured": sum(d.get("attempts", 1) > d.get("rounds", 1) for _, d in items),
            "still_contended": [k for k, d in items if (d.get("other_cpu") or 0) > limit]}


def cpu_load() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages (None where the OS does not say)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except (AttributeError, OSError):
        return None


def warn_if_busy(config: TimingConfig, what: str = "timings") -> tuple[float, float, float] | None:
    """Warn when other processes keep the CPUs busy that a CPU measurement needs; return the load averages.

    On a 2-core machine, eager PyTorch with 2 threads slows down 10-100x as soon as anything else runs (its
    OpenMP threads wait at every barrier for a descheduled peer), and the table silently records that.
    """
    load = cpu_load()
    if load is not None and config.device == "cpu":
        cores = os.cpu_count() or 1
        if load[0] + (config.threads or 1) > cores + 0.5:
            warnings.warn(f"load average {load[0]:.2f} on {cores} logical cores with {config.threads} threads asked: "
                          f"other processes are running and {what} will be too slow and noisy", stacklevel=3)
    return load
