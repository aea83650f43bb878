"""Other processes on a shared CPU: the busy-machine warning and the monitor of their CPU share."""

from __future__ import annotations

import warnings

import pytest

from squeezenas.cost.timing import TimingConfig


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
