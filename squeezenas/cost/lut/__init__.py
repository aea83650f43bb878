"""Latency lookup tables measured on the target device: plan, build (resumable), load, check end-to-end, calibrate.

Modules: ``plan`` (what is timed, its keys), ``build`` (timing the parts, assembling the table), ``loading``
(a table and its provenance), ``check`` (predicted vs measured networks), ``stats`` (calibration and errors),
``budget`` (a check's error split into the check's noise, the table's and the sum-of-parts model's).

A latency table is a ``CostTable`` with ``kind="latency"`` and ``unit="ms"``: ``table[i][j]`` is the batch-1
latency (the config's statistic: min on CPU by default) of candidate j at position i, timed alone at the exact input shape the position sees at the
deployment resolution; ``fixed`` holds the stem, the last 1×1 conv and the decoder (given the high/low feature
shapes). predicted(network) = Σ fixed + Σ_i table[i][op_i]; the identity ``skip`` costs 0 ms.

What makes the sum match an end-to-end measurement:

- every part is timed by ``cost.timing.measure`` with the very ``TimingConfig`` (backend, device, dtype,
  layout, threads, batch) later used to time whole networks (``lut check``, ``squeezenas bench``);
- parts are the network's own modules (``build_op``, ``Stem``, ``conv_bn_relu``, the decoder) with the
  network's initialisation, in eval and inference mode; a block's residual add belongs to the block;
- eager: BN is not folded, neither in the parts nor in the network; onnxruntime, openvino, executorch: every
  part is exported alone to the runtime's artefact and run with the same session settings as the whole network,
  so conv+BN+ReLU fusions happen in both, and ops are timed after an adapter (layout conversions);
- what remains (per-call framework overhead counted once per part, cache effects between consecutive blocks)
  is captured by a calibration ``measured ≈ overhead_ms + scale · predicted``, fitted by least squares on
  end-to-end measurements (``check_lut(..., calibrate=True)``) and evaluated on held-out networks.

Identical (op, shape) pairs are timed once: every part has a canonical key of everything that changes its cost
(op code, C_in, C_out, stride, input N×C×H×W, dtype, layout, backend); the table maps each cell to its key and
each key to its statistics (median, spread, repeats).
"""

from squeezenas.cost.lut.budget import error_budget, table_from_rounds
from squeezenas.cost.lut.build import LUT_FORMAT, PARTIAL_SUFFIX, assemble_table, build_lut, partial_path, shifted_rows
from squeezenas.cost.lut.check import (SpanningNet, calibrate_from_report, calibrate_lut_file, check_lut,
                                       check_lut_file, evaluate_predictions, spanning_genotypes)
from squeezenas.cost.lut.loading import LutError, check_device, load_lut, table_config
from squeezenas.cost.lut.plan import (CONTEXTS, IDENTITY_KEY, LutPlan, PackedDecoder, Part, adapter_conv,
                                      default_context, output_sizes, packed_offset, plan_lut)
from squeezenas.cost.lut.stats import (error_summary, fit_calibration, kendall_tau, leave_one_out, repeatability,
                                       spearman)
# Measuring under contention and what is timed live in cost.timing; kept importable from here as before.
from squeezenas.cost.timing.contention import CpuMonitor, contention_summary, cpu_load, measure_guarded, warn_if_busy
from squeezenas.cost.timing.rounds import combine_rounds
from squeezenas.cost.timing.targets import TimingTargets

__all__ = ["CONTEXTS", "CpuMonitor", "IDENTITY_KEY", "LUT_FORMAT", "LutError", "LutPlan", "PARTIAL_SUFFIX",
           "PackedDecoder", "Part", "SpanningNet", "TimingTargets", "adapter_conv", "assemble_table", "build_lut",
           "calibrate_from_report", "calibrate_lut_file", "check_device", "check_lut", "check_lut_file",
           "combine_rounds", "contention_summary", "cpu_load", "default_context", "error_budget", "error_summary",
           "evaluate_predictions", "fit_calibration", "kendall_tau", "leave_one_out", "load_lut", "measure_guarded",
           "output_sizes", "packed_offset", "partial_path", "plan_lut", "repeatability", "spanning_genotypes",
           "spearman", "table_config", "table_from_rounds", "warn_if_busy"]
