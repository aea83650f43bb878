"""A tiny space and a deterministic stand-in for the timer, shared by the latency-table tests."""

from __future__ import annotations

import math

from squeezenas.cost.timing import Timing, TimingConfig
from squeezenas.space import DecoderSpec, MacroArch, Stage

TINY_CANDIDATES = ("k3_d1_e1_g2", "k3_d2_e3_g1", "k5_d1_e6_g1", "skip")
# median and one round unless a test asks for more: the arithmetic of a table is easier to follow with them
QUICK = TimingConfig(threads=1, min_run_time=0.01, warmup=1, min_repeats=3, statistic="median")
ONE = {"rounds": 1}


def tiny_macro(**kw) -> MacroArch:
    """Stride-2 (factorized-reduce skip), channel-change (1×1 skip) and identity positions; both decoders."""
    args = dict(name="tiny", stem_channels=8, stages=(Stage(8, 2, 2), Stage(16, 2, 2), Stage(24, 1, 1)),
                low_level_position=1, last_channels=32, decoder=DecoderSpec("lr_aspp", 16), candidates=TINY_CANDIDATES)
    return MacroArch(**{**args, **kw})


class FakeTimer:
    """Counts calls; a part's 'latency' is a deterministic function of its input shape and parameter count."""

    def __init__(self, fail_after: int | None = None):
        self.calls: list[tuple[int, ...]] = []
        self.fail_after = fail_after

    def __call__(self, module, shape, config: TimingConfig) -> Timing:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(tuple(shape))
        return fake_timing(0.01 + sum(p.numel() for p in module.parameters()) * math.prod(shape[1:]) * 1e-7,
                           shape, config)


def fake_timing(ms: float, shape, config: TimingConfig) -> Timing:
    return Timing(median_ms=ms, iqr_ms=ms / 10, p10_ms=ms * 0.95, p90_ms=ms * 1.1, mean_ms=ms, min_ms=ms * 0.9,
                  repeats=7, calls_per_repeat=1, backend=config.backend, device=config.device, dtype=config.dtype,
                  threads=config.threads or 1, batch=config.batch, channels_last=config.channels_last,
                  input_shape=tuple(shape))
