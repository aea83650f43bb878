"""The one timing module: settings, the timer, the runtime backends (eager, cuda_graph, onnxruntime, openvino,
executorch) and their artefacts, contention, device."""

# Importing the backend modules registers them (the optional runtimes themselves are imported only when used).
from squeezenas.cost.timing import ort, ov, et  # noqa: F401,I001  (registration, in the order listed)
from squeezenas.cost.timing.backends import (Artefact, RuntimeBackend, RuntimeMissing, TimedCall, export_artefact,
                                             export_for_timing)
from squeezenas.cost.timing.config import (BACKENDS, CPU_ROUNDS, DEVICES, DTYPES, STAT_FIELDS, STATISTICS, Timing,
                                           TimingConfig, check_available, default_rounds, default_statistic,
                                           make_input, stat_key)
from squeezenas.cost.timing.contention import (MAX_OTHER_CPU, RETRIES, CpuMonitor, contention_summary, cpu_load,
                                               measure_guarded, warn_if_busy)
from squeezenas.cost.timing.device import device_fingerprint, fingerprint_matches, nvidia_driver_version
from squeezenas.cost.timing.onnx import EXPORTERS, INPUT_NAME, FlatOutputs, export_module, flatten_outputs
from squeezenas.cost.timing.rounds import combine_rounds
from squeezenas.cost.timing.targets import TimingTargets
from squeezenas.cost.timing.timer import MeasureFn, measure

__all__ = ["Artefact", "BACKENDS", "CPU_ROUNDS", "DEVICES", "DTYPES", "EXPORTERS", "INPUT_NAME", "MAX_OTHER_CPU",
           "RETRIES", "STATISTICS", "STAT_FIELDS", "CpuMonitor", "FlatOutputs", "MeasureFn",
           "RuntimeBackend", "RuntimeMissing", "TimedCall", "Timing", "TimingConfig", "TimingTargets",
           "check_available", "combine_rounds", "contention_summary", "cpu_load", "default_rounds",
           "default_statistic", "device_fingerprint", "export_artefact", "export_for_timing", "export_module",
           "fingerprint_matches", "flatten_outputs", "make_input", "measure", "measure_guarded",
           "nvidia_driver_version", "stat_key", "warn_if_busy"]
