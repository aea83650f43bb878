"""The one timer for every latency figure: ``measure`` a module's forward call with warm-up, device
synchronisation, enough repeats and robust statistics."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from squeezenas.cost.bundle.runner import calls_per_sample, sample, statistics, warm_up
from squeezenas.cost.timing.backends import TimedCall
from squeezenas.cost.timing.config import BACKENDS, Timing, TimingConfig, check_available, make_input
from squeezenas.utils.runtime import tune_cpu_allocator

# The lookup-table builder and the end-to-end benchmark both call ``measure``, so a predicted latency (sum of
# timed blocks) and a measured one (the whole network) come from the same procedure by construction.
#
# How a measurement runs (the structure of ``torch.utils.benchmark.Timer.blocked_autorange``, kept here because
# that function cannot bound the repeats from both sides, sets one thread unless told otherwise, and times CUDA
# with a host clock after a device-wide synchronise):
#
# 1. prepare (the backend's ``prepare``): a copy of the module in eval mode on the device, dtype and memory format
#    asked for (or a captured CUDA graph, or a session of the runtime's artefact: onnxruntime, OpenVINO,
#    ExecuTorch), and a random input;
# 2. warm up: ``warmup`` untimed calls (cut short for slow modules), which also tell how long one call takes;
# 3. sample: each sample times ``calls_per_repeat`` back-to-back calls, so that a sample lasts at least ~0.1 ms
#    and timer overhead stays negligible; a module whose call is longer than that gets true per-call samples.
#    CUDA work is timed with CUDA events on the current stream, everything else with ``time.perf_counter``;
# 4. stop once both ``min_run_time`` seconds and ``min_repeats`` samples are reached, or at ``max_repeats``, or
#    after ``max_run_time`` seconds whatever the count (a module that takes seconds is not repeated needlessly);
# 5. report the median per-call time and its spread (IQR, 10th/90th percentiles) over the samples.
#
# Steps 2-5 are the bundle runner's (cost/bundle/runner.py), which times ONNX models on devices without torch:
# written once, there, so a table built from a bundle and one measured here come from the same procedure too.

# What the lookup-table builder, its check and the benchmark call to time a module (``measure`` or a stand-in).
MeasureFn = Callable[[nn.Module, Sequence[int], TimingConfig], Timing]


def measure(
    module_or_fn: nn.Module | Callable[[torch.Tensor], Any],
    inputs: Sequence[int] | torch.Tensor,
    config: TimingConfig | None = None,
) -> Timing:
    """Time one forward call of ``module_or_fn`` on one input tensor.

    ``inputs`` is an example tensor or a shape: (C, H, W) gets ``config.batch`` prepended, (N, C, H, W) must
    have N == ``config.batch``. Modules are copied (the caller's module is not moved, cast or switched to eval);
    plain functions are called as they are, on an input of the configured device, dtype and layout.
    """
    config = config or TimingConfig()
    check_available(config)
    if config.device == "cpu":
        # glibc returns freed blocks above its mmap/trim thresholds to the kernel, so a network's activations
        # are page-faulted and zeroed again on every call, more so in a whole network than in one part timed
        # alone: 15-20 ms instead of 11.5-13 for one Small network at 128×256 (docs/LATENCY.md). Deployed
        # runtimes keep their memory (ORT's arena, jemalloc/tcmalloc); so does every timing here.
        tune_cpu_allocator()
    example = make_input(inputs, config)
    threads = config.threads or torch.get_num_threads()
    backend = BACKENDS.get(config.backend)
    with _torch_threads(backend.torch_threads(threads)):
        timed = backend.prepare(module_or_fn, example, config, threads)
        with torch.inference_mode():
            samples, number = _sample(timed, config)
    return summarise(samples, number, config, threads, tuple(example.shape))


def _sample(timed: TimedCall, config: TimingConfig) -> tuple[list[float], int]:
    """Warm up, then collect per-call times (seconds) of samples of ``number`` calls each."""
    number = calls_per_sample(warm_up(timed.time, config.warmup, config.min_run_time))
    if config.device == "cuda":
        torch.cuda.synchronize()
    return sample(timed.time, number, config.min_run_time, config.max_run_time, config.min_repeats,
                  config.max_repeats), number


def summarise(samples: list[float], number: int, config: TimingConfig, threads: int,
              shape: tuple[int, ...]) -> Timing:
    """The ``Timing`` of per-call times (seconds) measured in samples of ``number`` calls with ``config``."""
    return Timing(**statistics(samples, number), backend=config.backend, device=config.device, dtype=config.dtype,
                  threads=threads, batch=config.batch, channels_last=config.channels_last, input_shape=shape)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set for the duration and restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
