"""The speed canary: a fixed workload timed after each measurement catches the machine's own slow spells."""

import argparse

import pytest

from squeezenas.cost.timing import contention
from squeezenas.cost.timing.canary import SpeedCanary, speed_canary
from squeezenas.cost.timing.config import TimingConfig


class FakeClock:
    """A clock that the fake workload and sleep advance: the workload takes ``durations`` in turn (seconds)."""

    def __init__(self, durations):
        self.now, self.durations, self.slept = 0.0, list(durations), []

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.durations.pop(0) if self.durations else 0.001

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def canary(durations, repeats=1, **kw):
    clock = FakeClock(durations)
    c = SpeedCanary(threads=1, repeats=repeats, clock=clock, sleep=clock.sleep, workload=clock.work, **kw)
    return c, clock


def test_ratio_is_time_over_the_best_so_far():
    # each reading: one warm-up call then `repeats` timed calls (the fastest counts)
    c, _ = canary([0, 0.002, 0, 0.001, 0, 0.003, 0, 0.0011], repeats=1)
    assert c.ratio() == pytest.approx(1.0)  # the first reading is the best so far
    assert c.ratio() == pytest.approx(1.0) and c.best_ms == pytest.approx(1.0)  # faster: new best
    assert c.ratio() == pytest.approx(3.0) and c.is_slow(3.0)
    assert c.ratio() == pytest.approx(1.1) and not c.is_slow(1.1)  # within the 15% tolerance


def test_fastest_of_the_repeats_counts():
    c, _ = canary([0, 0.005, 0.001, 0.004], repeats=3)
    assert c.time_ms() == pytest.approx(1.0)


def test_wait_until_normal_polls_until_fast_again_or_gives_up():
    # best 1 ms, then two slow readings, then a normal one
    c, clock = canary([0, 0.001, 0, 0.002, 0, 0.002, 0, 0.001])
    c.ratio()
    assert c.wait_until_normal(poll_s=2.0) == pytest.approx(1.0)
    assert clock.slept == [2.0, 2.0]
    # never fast again: gives up after wait_s, returns the last (slow) ratio and takes that speed as the reference
    c, clock = canary([0, 0.001] + [0, 0.003] * 100, wait_s=5.0)
    c.ratio()
    assert c.wait_until_normal(poll_s=2.0) == pytest.approx(3.0)
    assert sum(clock.slept) <= 6.0 and c.rebases == 1 and c.best_ms == pytest.approx(3.0)
    assert not c.is_slow(c.ratio())  # the new normal


def test_waiting_is_bounded_per_run():
    """Once the run's waiting budget is spent, the canary no longer waits (a persistently noisy machine)."""
    durations = []
    for k in range(100):  # alternately fast and slow readings: a machine whose speed never settles
        durations += [0, 0.001 if k % 2 == 0 else 0.003]
    c, clock = canary(durations, wait_s=5.0, wait_budget_s=8.0)
    for _ in range(20):
        c.wait_until_normal(poll_s=3.0)
    assert sum(clock.slept) <= 8.0 + 3.0 and c.waited_s >= 8.0
    slept, rebases = len(clock.slept), c.rebases
    while not c.is_slow(c.ratio()):  # the next slow reading
        pass
    c.best_ms /= 3  # (make the reading after it slow too)
    c.wait_until_normal(poll_s=3.0)
    assert len(clock.slept) == slept and c.rebases == rebases + 1  # budget spent: rebased at once, no waiting


def test_measure_guarded_measures_again_while_the_machine_is_slow(monkeypatch):
    """A measurement after which the canary runs slow is taken again once it is back to normal; the result
    records the canary's ratio after the kept measurement."""

    class Monitor:  # no other process
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.other_share = 0.0

    monkeypatch.setattr(contention, "CpuMonitor", Monitor)
    ratios = iter([2.0, 1.02])  # slow right after the first attempt, normal after the second

    class Canary:
        slow_readings = 0
        waits = 0

        def ratio(self):
            return next(ratios)

        def is_slow(self, r):
            return r > 1.15

        def wait_until_normal(self):
            self.waits += 1
            return 1.0

    calls = []
    fake = Canary()
    g = contention.measure_guarded(lambda m, s, c: calls.append(1) or "timing", lambda: None, (3, 8, 8),
                                   TimingConfig(), max_other_cpu=0.05, retries=3, canary=fake)
    assert len(calls) == 2 and g.attempts == 2 and g.canary_ratio == pytest.approx(1.02) and g.timing == "timing"
    assert fake.slow_readings == 1 and fake.waits == 1
    assert g.record() == {"other_cpu": 0.0, "attempts": 2, "canary_ratio": pytest.approx(1.02)}
    # always slow: gives up after the retries, with the ratio it saw
    ratios = iter([3.0] * 10)
    calls.clear()
    g = contention.measure_guarded(lambda m, s, c: calls.append(1), lambda: None, (3, 8, 8), TimingConfig(),
                                   max_other_cpu=0.05, retries=2, canary=Canary())
    assert len(calls) == 3 and g.canary_ratio == 3.0
    # without a canary nothing is recorded about it
    g = contention.measure_guarded(lambda m, s, c: None, lambda: None, (3, 8, 8), TimingConfig(), 0.05, 1)
    assert "canary_ratio" not in g.record()


def test_speed_canary_only_for_cpu_measurements(monkeypatch):
    monkeypatch.setenv("SQUEEZENAS_CANARY", "1")
    assert isinstance(speed_canary("cpu", 2), SpeedCanary) and speed_canary("cpu", 2).threads == 2
    assert speed_canary("cuda", 1) is None and speed_canary("cpu", 1, enabled=False) is None
    assert speed_canary("cpu", 1, True, "GPU") is None and speed_canary("cpu", 1, True, "CPU") is not None
    shared = speed_canary("cpu", 1)
    assert speed_canary("cpu", 1, shared) is shared
    monkeypatch.setenv("SQUEEZENAS_CANARY", "0")
    assert speed_canary("cpu", 1) is None
    with pytest.raises(ValueError, match="tolerance"):
        SpeedCanary(tolerance=0)


def test_real_canary_times_its_workload(monkeypatch):
    monkeypatch.setenv("SQUEEZENAS_CANARY", "1")
    c = speed_canary("cpu", 1)
    assert c.time_ms() > 0 and c.ratio() >= 1.0 and c.best_ms > 0


def test_summary_reports_the_worst_canary_ratio():
    s = contention.contention_summary([("a", {"canary_ratio": 1.05, "other_cpu": 0.0}),
                                       ("b", {"canary_ratio": 1.4, "other_cpu": 0.01}), ("c", {})], 0.05)
    assert s["worst_canary_ratio"] == 1.4
    assert contention.contention_summary([("a", {})], 0.05)["worst_canary_ratio"] is None


def test_cli_canary_switch():
    from squeezenas.cli.timing_options import contention as contention_kwargs
    from squeezenas.cli.timing_options import contention_args

    p = argparse.ArgumentParser()
    contention_args(p)
    assert contention_kwargs(p.parse_args([]))["canary"] is False  # the rounds' speed normalisation instead
    assert contention_kwargs(p.parse_args(["--canary"]))["canary"] is True
