"""The machine's own slow spells: on a VM the host can slow every core for minutes (every network measured ~2x
in whole rounds, docs/LATENCY.md) while no process on the machine is busy, so the contention guard cannot see
them. A fixed small workload, timed right after each measurement, can: when it runs slower than its best by more
than a tolerance, the measurement is taken again once the canary is back to normal speed."""

from __future__ import annotations

import math
import os
import time
from typing import Callable

import torch
from torch import nn

# Measure again when the canary ran this much slower than its best of the run (the slow spells it is for double
# a network's time).
CANARY_TOLERANCE = 0.15


class SpeedCanary:
    """A 3×3 convolution (32 channels, 64×64, 38 MMACs: under a millisecond per call on one core of the
    project's CPU, so a reading of 6 calls costs a few ms against a measurement's 0.3 s or more) timed with the
    measurements' thread count. ``ratio()`` is its time over the best time seen so far in this run (≥ 1).

    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, threads: int | None = None, tolerance: float = CANARY_TOLERANCE, wait_s: float = 30.0,
                 wait_budget_s: float = 120.0, repeats: int = 5, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep, workload: Callable[[], object] | None = None):
        if tolerance <= 0:
            raise ValueError(f"canary tolerance must be positive, got {tolerance}")
        self.threads, self.tolerance, self.wait_s, self.repeats = threads, tolerance, wait_s, repeats
        self.wait_budget_s, self.waited_s, self.rebases = wait_budget_s, 0.0, 0
        self.best_ms = math.inf
        self.slow_readings = 0  # readings above the tolerance (each one made a measurement be taken again)
        self._clock, self._sleep = clock, sleep
        if workload is None:
            conv, x = nn.Conv2d(32, 32, 3, padding=1).eval(), torch.randn(1, 32, 64, 64)
            workload = lambda: conv(x)  # noqa: E731
        self._workload = workload

    def time_ms(self) -> float:
        """The fastest of ``repeats`` calls of the workload, in ms."""
        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                self._workload()  # warm
                best = math.inf
                for _ in range(self.repeats):
                    t0 = self._clock()
                    self._workload()
                    best = min(best, self._clock() - t0)
        finally:
            torch.set_num_threads(old)
        return best * 1e3

    def ratio(self) -> float:
        """Time the canary now: its time over the best of the run (1.0 when it is the best so far)."""
        t = self.time_ms()
        self.best_ms = min(self.best_ms, t)
        return t / self.best_ms if self.best_ms > 0 else 1.0

    def is_slow(self, ratio: float) -> bool:
        return ratio > 1 + self.tolerance

    def wait_until_normal(self, poll_s: float = 2.0) -> float:
        """Time the canary until it is within the tolerance or ``wait_s`` passed; return the last ratio.

        Waiting is bounded: when the canary is still slow after ``wait_s``, the machine's speed has changed for
        longer than a spell (a laptop's power mode, a host's new neighbour), so the current speed becomes the
        reference (``rebases`` counts it) and measuring goes on; and once ``wait_budget_s`` of waiting is spent in
        a run, it no longer waits: a slow reading rebases at once."""
        start = self._clock()
        deadline = start + min(self.wait_s, max(0.0, self.wait_budget_s - self.waited_s))
        r = self.ratio()
        while self.is_slow(r) and self._clock() < deadline:
            self._sleep(poll_s)
            r = self.ratio()
        self.waited_s += self._clock() - start
        if self.is_slow(r):  # still slow: this is the machine's speed now, measure against it
            self.best_ms *= r
            self.rebases += 1
        return r


def speed_canary(device: str, threads: int | None, enabled: bool | SpeedCanary = True,
                 runtime_device: str | None = None) -> SpeedCanary | None:
    """The canary of a CPU measurement with ``threads`` threads (None: torch's default); ``enabled`` may be a
    canary already in use (several measurements compared with one reference speed). None on other devices
    (also a runtime's GPU or NPU behind ``device`` "cpu", e.g. OpenVINO's ``runtime_device``),
    when ``enabled`` is False, or with the environment variable SQUEEZENAS_CANARY=0 (the test suite sets it:
    its fake and tiny measurements say nothing about the machine's speed)."""
    if not enabled or device != "cpu" or os.environ.get("SQUEEZENAS_CANARY", "1") == "0":
        return None
    if runtime_device is not None and runtime_device.upper() != "CPU":
        return None
    if isinstance(enabled, SpeedCanary):
        return enabled
    canary = SpeedCanary(threads or torch.get_num_threads())
    canary.ratio()  # a reference reading before the first measurement, so that one can already be compared
    return canary
