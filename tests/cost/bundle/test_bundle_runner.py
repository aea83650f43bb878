"""The bundle runner's timing procedure, which the timer shares: calls per sample and when sampling stops."""

from __future__ import annotations

import time

from squeezenas.cost.bundle import runner


def test_calls_per_sample_and_stopping_rule():
    """A sample lasts at least 0.1 ms (at most 1000 calls); sampling stops at max_repeats or max_run_time."""
    assert runner.calls_per_sample(5e-6) == 20 and runner.calls_per_sample(1e-3) == 1
    assert runner.calls_per_sample(0.0) == runner.calls_per_sample(1e-9) == 1000
    assert len(runner.sample(lambda n: 1e-6 * n, 1, 10.0, 20.0, 1, 5)) == 5
    assert len(runner.sample(lambda n: time.sleep(0.01) or 0.01, 1, 0.0, 0.03, 100, 1000)) < 10


def test_warm_up_is_cut_short_for_slow_models():
    """Two warm-up calls once min_run_time has passed; the typical call is the median of the later ones."""
    calls = []

    def clock(n: int) -> float:
        calls.append(n)
        time.sleep(0.02)
        return 0.02

    assert runner.warm_up(clock, 10, 0.01) == 0.02 and calls == [1, 1]
    assert runner.warm_up(lambda n: 1e-6 * n, 4, 10.0) == 1e-6  # fast: every warm-up call is made


def test_runner_defaults_are_the_timers():
    """The runner cannot import squeezenas: its timing defaults are TimingConfig's by this test, except the
    rounds: a bundle times 4 longer rounds (0.5 s) and keeps the fastest, as its results record no times for the
    speed normalisation of 16 short ones (cost/timing/rounds.py)."""
    from squeezenas.cost.timing import CPU_ROUNDS, TimingConfig

    args, config = runner.parser().parse_args([]), TimingConfig()
    for name in ("warmup", "max_run_time", "min_repeats", "max_repeats"):
        assert getattr(args, name) == getattr(config, name), name
    assert (args.rounds, args.min_run_time) == (4, 0.5) and CPU_ROUNDS * config.min_run_time == 1.6
