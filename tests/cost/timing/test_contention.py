"""Other processes on a shared CPU: the busy-machine warning and the monitor of their CPU share."""

from __future__ import annotations

import warnings

import pytest

from squeezenas.cost.timing import TimingConfig, contention


def test_busy_cpu_warning(monkeypatch):
    from squeezenas.cost.timing import contention

    monkeypatch.setattr(contention.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(contention.os, "getloadavg", lambda: (1.7, 1.0, 0.5))
    with pytest.warns(UserWarning, match="load average 1.70 on 2 logical cores"):
        assert contention.warn_if_busy(TimingConfig(threads=2)) == (1.7, 1.0, 0.5)
    monkeypatch.setattr(contention.os, "getloadavg", lambda: (0.2, 1.0, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        contention.warn_if_busy(TimingConfig(threads=2))
        monkeypatch.setattr(contention.os, "getloadavg", lambda: (1.2, 1.0, 0.5))
        contention.warn_if_busy(TimingConfig(threads=1))  # one core is free
        contention.warn_if_busy(TimingConfig(device="cuda", threads=2))


def test_cpu_monitor_sees_other_processes():
    import subprocess
    import sys
    import time

    from squeezenas.cost.timing import CpuMonitor

    if not CpuMonitor._STAT.is_file():
        pytest.skip("needs /proc")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with CpuMonitor() as m:
            time.sleep(0.6)
    finally:
        busy.kill()
        busy.wait()
    import os

    assert m.other_share is not None and m.other_share > 0.5 / (os.cpu_count() or 1)  # about one busy core


def test_waiting_for_a_quiet_machine_is_bounded_by_a_shared_budget(monkeypatch):
    """On a machine that stays busy, each busy measurement waits (up to 30 s) for a quiet second only while the
    run's budget lasts; then measurements are retried at once."""

    class Busy:  # other processes always use half the CPUs
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.other_share = 0.5

    now = [0.0]
    waits = []

    def wait(max_other_cpu, timeout_s):  # waits the whole timeout: the machine never gets quiet
        waits.append(timeout_s)
        now[0] += timeout_s

    monkeypatch.setattr(contention, "CpuMonitor", Busy)
    monkeypatch.setattr(contention, "_wait_for_quiet", wait)
    monkeypatch.setattr(contention.time, "monotonic", lambda: now[0])
    budget = contention.WaitBudget(70.0)
    calls = []
    with pytest.warns(UserWarning, match="the 70 s allowed") as caught:
        for _ in range(3):  # three measurements of one run share the budget
            g = contention.measure_guarded(lambda m, s, c: calls.append(1) or "t", lambda: None, (3, 8, 8),
                                           TimingConfig(), max_other_cpu=0.05, retries=3, budget=budget)
            assert g.attempts == 4 and g.other_cpu == 0.5  # measured again every time, kept with its share
    assert len(caught) == 1  # said once, when it ran out
    assert waits == [30.0, 30.0, 10.0] and budget.left_s == 0.0 and len(calls) == 12
    waits.clear()  # without a budget every retry waits its 30 s, as before
    contention.measure_guarded(lambda m, s, c: "t", lambda: None, (3, 8, 8), TimingConfig(), 0.05, 2)
    assert waits == [30.0, 30.0]
