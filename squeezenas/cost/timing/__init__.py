"""The one timing module: settings, the timer and its backends, ONNX export for timing, contention, device."""

from squeezenas.cost.timing.backends import TimedCall
from squeezenas.cost.timing.config import (BACKENDS, DEVICES, DTYPES, STAT_FIELDS, STATISTICS, Timing, TimingConfig,
                                           make_input, stat_key)
from squeezenas.cost.timing.contention import (MAX_OTHER_CPU, RETRIES, CpuMonitor, contention_summary, cpu_load,
                                               measure_guarded, warn_if_busy)
from squeezenas.cost.timing.device import device_fingerprint, fingerprint_matches, nvidia_driver_version
from squeezenas.cost.timing.onnx import EXPORTERS, INPUT_NAME, FlatOutputs, export_module, flatten_outputs
from squeezenas.cost.timing.ort import OnnxModel, export_for_timing
from squeezenas.cost.timing.targets import TimingTargets
from squeezenas.cost.timing.timer import MeasureFn, measure

__all__ = ["BACKENDS", "DEVICES", "DTYPES", "EXPORTERS", "INPUT_NAME", "MAX_OTHER_CPU", "RETRIES", "STATISTICS",
           "STAT_FIELDS", "CpuMonitor", "FlatOutputs", "MeasureFn", "OnnxModel", "TimedCall", "Timing",
           "TimingConfig", "TimingTargets", "contention_summary", "cpu_load", "device_fingerprint",
           "export_for_timing", "export_module", "fingerprint_matches", "flatten_outputs", "make_input", "measure",
           "measure_guarded", "nvidia_driver_version", "stat_key", "warn_if_busy"]
