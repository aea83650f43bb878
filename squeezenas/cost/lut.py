"""Latency lookup tables measured on the target device: plan, build (resumable), load, check end-to-end, calibrate.

A latency table is a ``CostTable`` with ``kind="latency"`` and ``unit="ms"``: ``table[i][j]`` is the median
batch-1 latency of candidate j at position i, timed alone at the exact input shape the position sees at the
deployment resolution; ``fixed`` holds the stem, the last 1×1 conv and the decoder (given the high/low feature
shapes). predicted(network) = Σ fixed + Σ_i table[i][op_i]; the identity ``skip`` costs 0 ms.

What makes the sum match an end-to-end measurement:

- every part is timed by ``cost.timing.measure`` with the very ``TimingConfig`` (backend, device, dtype,
  layout, threads, batch) later used to time whole networks (``lut check``, ``squeezenas bench``);
- parts are the network's own modules (``build_op``, ``Stem``, ``conv_bn_relu``, the decoder) with the
  network's initialisation, in eval and inference mode; a block's residual add belongs to the block;
- eager: BN is not folded, neither in the parts nor in the network; onnxruntime: every part is exported alone
  to ONNX and run with the same session options as the whole network, so conv+BN+ReLU fusions happen in both;
- what remains (per-call framework overhead counted once per part, cache effects between consecutive blocks)
  is captured by a calibration ``measured ≈ overhead_ms + scale · predicted``, fitted by least squares on
  end-to-end measurements (``check_lut(..., calibrate=True)``) and evaluated on held-out networks.

Identical (op, shape) pairs are timed once: every part has a canonical key of everything that changes its cost
(op code, C_in, C_out, stride, input N×C×H×W, dtype, layout, backend); the table maps each cell to its key and
each key to its statistics (median, spread, repeats).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from squeezenas.cost.device import device_fingerprint, fingerprint_matches
from squeezenas.cost.tables import CostTable, CostTableError, mac_table
from squeezenas.cost.timing import OnnxModel, Timing, TimingConfig, export_for_timing, measure, stat_key
from squeezenas.models.blocks import build_op
from squeezenas.models.builder import Stem, build_model, init_weights
from squeezenas.models.heads import build_decoder, conv_bn_relu
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch, get_macro, load_macro
from squeezenas.space.ops import parse_op
from squeezenas.utils.io import atomic_write_json

LUT_FORMAT = "squeezenas latency table"
PARTIAL_SUFFIX = ".partial"
IDENTITY_KEY = "identity"  # cells where ``skip`` is the identity: 0 ms, nothing is timed
_RESOLUTION_MS = 1e-3  # an op timed after an adapter costs at least this (its difference may be lost in noise)
_STAT_FIELDS = ("median_ms", "iqr_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms", "repeats", "calls_per_repeat")

MeasureFn = Callable[[nn.Module, Sequence[int], TimingConfig], Timing]


class LutError(CostTableError):
    """A latency table (or its partial build) does not fit the settings it is used with."""


# --- what is timed: parts and their canonical keys --------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One timed module: a candidate at a position, or a fixed part; ``key`` names everything that changes its cost."""

    key: str
    kind: str  # "op", "stem", "last_conv" or "decoder"
    input_shape: tuple[int, ...]  # (N, C, H, W) of the timed input (the decoder's is its packed input)
    op: str = ""  # candidate code ("op" parts)
    c_in: int = 0
    c_out: int = 0
    stride: int = 1
    decoder: dict = field(default_factory=dict, hash=False, compare=False)  # decoder parts: name, shapes, classes
    adapter: str = ""  # key of the adapter timed before this op ("adapter" context), whose time is subtracted

    def build(self, channels_last: bool = False) -> nn.Module:
        """The module to time, initialised as in a network of the space."""
        if self.kind == "op":
            module = build_op(self.op, self.c_in, self.c_out, self.stride)
            if self.adapter:
                module = nn.Sequential(adapter_conv(self.c_in), module)
        elif self.kind == "adapter":
            module = adapter_conv(self.c_in)
        elif self.kind == "stem":
            module = Stem(self.c_out)
        elif self.kind == "last_conv":
            module = conv_bn_relu(self.c_in, self.c_out)
        elif self.kind == "decoder":
            d = self.decoder
            head = build_decoder(d["name"], d["high"][0], d["low"][0], d["num_classes"], d["channels"])
            module = PackedDecoder(head, tuple(d["high"]), tuple(d["low"]), tuple(d["out_size"]), self.input_shape[0],
                                   channels_last)
        else:
            raise ValueError(f"unknown part kind {self.kind!r}")
        init_weights(module)
        return module.eval()


def adapter_conv(channels: int) -> nn.Module:
    """The cheapest convolution (1×1 depthwise) that hands an op its input the way a preceding block would.

    ONNX Runtime's CPU provider runs convolutions in a blocked layout (NCHWc); a whole network converts to it
    once, after the stem, and back once, at the end, and fuses each residual add into the block's last
    convolution. A block exported alone instead pays a layout conversion of its input and of its output and an
    unfused add: about a third of its time at 128×256, and the same for every candidate at a position. Timing
    ``adapter → op`` and subtracting ``adapter`` alone gives the op's cost in the network's context; what is
    left, output conversions of different shapes, telescopes along the network to a constant (the
    calibration's overhead).
    """
    return nn.Conv2d(channels, channels, 1, groups=channels, bias=False)


CONTEXTS = ("alone", "adapter")


def default_context(config: TimingConfig) -> str:
    """"adapter" for onnxruntime (layout conversions at a part's boundaries), "alone" for PyTorch backends."""
    return "adapter" if config.backend == "onnxruntime" else "alone"


class PackedDecoder(nn.Module):
    """A decoder whose two inputs (high, low) arrive packed in one flat tensor (N, 1, 1, L).

    The one timer (and an exported ONNX model) takes one input; a constant second input would be folded away
    by onnxruntime. Unpacking is two views in PyTorch (free) and two Slice+Reshape in ONNX (a copy of the
    features, ~1 MB at 360×480: well under 1% of the network). ``low`` comes first; ``high`` starts at a
    64-element boundary so both stay aligned. With ``channels_last`` the features are packed as NHWC and
    viewed back as channels-last NCHW tensors, as the network would hand them over.
    """

    def __init__(self, decoder: nn.Module, high: tuple[int, int, int], low: tuple[int, int, int],
                 out_size: tuple[int, int], batch: int = 1, channels_last: bool = False):
        super().__init__()
        self.decoder = decoder
        self.high, self.low, self.out_size, self.batch = high, low, out_size, batch
        self.channels_last = channels_last
        self.n_low, self.offset = math.prod(low), packed_offset(low)

    def _unpack(self, flat: torch.Tensor, start: int, chw: tuple[int, int, int]) -> torch.Tensor:
        c, h, w = chw
        part = flat[:, start:start + c * h * w]
        if self.channels_last:
            return part.reshape(self.batch, h, w, c).permute(0, 3, 1, 2)
        return part.reshape(self.batch, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(self.batch, -1)
        low = self._unpack(flat, 0, self.low)
        high = self._unpack(flat, self.offset, self.high)
        return self.decoder(high, low, self.out_size)


def packed_offset(low: Sequence[int]) -> int:
    """Where ``high`` starts in a packed decoder input: after ``low``, rounded up to 64 elements (256 bytes)."""
    return -(-math.prod(low) // 64) * 64


def _suffix(config: TimingConfig) -> str:
    layout = "nhwc" if config.channels_last else "nchw"
    return f"{config.dtype}|{layout}|{config.backend}"


def _shape(s: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in s)


def output_sizes(macro: MacroArch, height: int, width: int) -> list[tuple[int, int]]:
    """Spatial size of every position's output for a network input of height × width."""
    sizes = macro.input_sizes(height, width)
    return [(math.ceil(h / 2), math.ceil(w / 2)) if p.stride == 2 else (h, w)
            for p, (h, w) in zip(macro.positions(), sizes)]


@dataclass
class LutPlan:
    """What a table of (macro, size, config) times: a key per cell, a key per fixed part, the distinct parts."""

    macro: MacroArch
    input_size: tuple[int, int]
    num_classes: int
    config: TimingConfig
    cells: list[list[str]]  # [position][candidate] → key (IDENTITY_KEY for the identity skip)
    fixed: dict[str, str]  # part name → key
    parts: dict[str, Part]  # key → part, in first-use order (stem, positions, last_conv, decoder, adapters)
    context: str = "alone"  # "alone": ops timed by themselves; "adapter": after an adapter, its time subtracted


def plan_lut(macro: MacroArch, input_size: tuple[int, int], config: TimingConfig, num_classes: int = 19,
             context: str | None = None) -> LutPlan:
    """The cells, fixed parts and distinct parts of a latency table; nothing is built or timed.

    ``context`` ("alone" or "adapter", default ``default_context(config)``) says how candidate ops are timed;
    see ``adapter_conv``. Fixed parts are always timed alone: their cost is the same in every network.
    """
    context = context or default_context(config)
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    h, w = (int(v) for v in input_size)
    n, sfx = config.batch, _suffix(config)
    parts: dict[str, Part] = {}
    adapters: dict[str, Part] = {}

    def add(part: Part) -> str:
        parts.setdefault(part.key, part)
        return part.key

    fixed: dict[str, str] = {}
    stem_in = (n, 3, h, w)
    fixed["stem"] = add(Part(f"stem|cin=3|cout={macro.stem_channels}|s=2|in={_shape(stem_in)}|{sfx}", "stem",
                             stem_in, c_in=3, c_out=macro.stem_channels, stride=2))
    cells = []
    for p, (ph, pw) in zip(macro.positions(), macro.input_sizes(h, w)):
        shape = (n, p.c_in, ph, pw)
        row = []
        for code in macro.candidates:
            if parse_op(code).is_skip and p.is_identity_skip:
                row.append(IDENTITY_KEY)
                continue
            adapter = ""
            if context == "adapter":
                adapter = f"adapter=dw1x1|c={p.c_in}|in={_shape(shape)}|{sfx}"
                adapters.setdefault(adapter, Part(adapter, "adapter", shape, c_in=p.c_in, c_out=p.c_in))
            key = f"op={code}|cin={p.c_in}|cout={p.c_out}|s={p.stride}|in={_shape(shape)}|{sfx}"
            row.append(add(Part(key, "op", shape, op=code, c_in=p.c_in, c_out=p.c_out, stride=p.stride,
                                adapter=adapter)))
        cells.append(row)
    outs = output_sizes(macro, h, w)
    high_hw, low_hw = outs[-1], outs[macro.low_level_position]
    if macro.last_channels:
        c_last = macro.stages[-1].channels
        last_in = (n, c_last, *high_hw)
        fixed["last_conv"] = add(Part(f"last_conv|cin={c_last}|cout={macro.last_channels}|s=1|in={_shape(last_in)}|{sfx}",
                                      "last_conv", last_in, c_in=c_last, c_out=macro.last_channels))
    high, low = (macro.high_channels, *high_hw), (macro.low_channels, *low_hw)
    dec = macro.decoder
    packed = (n, 1, 1, packed_offset(low) + math.prod(high))
    key = (f"decoder={dec.name}|ch={dec.channels}|high={_shape(high)}|low={_shape(low)}|out={h}x{w}"
           f"|classes={num_classes}|n={n}|{sfx}")
    fixed["decoder"] = add(Part(key, "decoder", packed, decoder={
        "name": dec.name, "channels": dec.channels, "high": list(high), "low": list(low), "out_size": [h, w],
        "num_classes": num_classes}))
    parts.update(adapters)
    return LutPlan(macro, (h, w), num_classes, config, cells, fixed, parts, context)


# --- other processes: a shared CPU makes timings wrong ------------------------------------------------------


class CpuMonitor:
    """Share of the machine's CPU time that *other* processes used while the block ran (Linux /proc).

    ``other_share`` is (Δ busy time of all CPUs − Δ CPU time of this process) / Δ total time of all CPUs, in
    [0, 1]; None where /proc is missing or too little time passed to tell (clock ticks are 10 ms).
    """

    _STAT, _SELF = Path("/proc/stat"), Path("/proc/self/stat")

    def __init__(self) -> None:
        self.other_share: float | None = None
        self._start: tuple[int, int, int] | None = None

    @classmethod
    def _read(cls) -> tuple[int, int, int] | None:
        try:
            cpu = [int(v) for v in cls._STAT.read_text().splitlines()[0].split()[1:]]
            own = cls._SELF.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)  # idle + iowait
        total = sum(cpu[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
        return total - idle, total, int(own[11]) + int(own[12])  # utime + stime of all our threads

    def __enter__(self) -> CpuMonitor:
        self._start = self._read()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = self._read()
        if self._start is None or end is None:
            return
        busy, total, own = (b - a for a, b in zip(self._start, end))
        if total >= 20:  # at least 0.2 s of CPU time over all cores, else the ticks say nothing
            self.other_share = min(1.0, max(0.0, (busy - own) / total))


def measure_guarded(measure_fn: MeasureFn, build: Callable[[], nn.Module], shape: Sequence[int],
                    config: TimingConfig, max_other_cpu: float | None, retries: int,
                    wait_s: float = 30.0) -> tuple[Timing, float | None, int]:
    """``measure_fn`` again (up to ``retries`` times, after waiting up to ``wait_s`` for a quiet second) while
    other processes used more than ``max_other_cpu`` of the CPUs during the measurement.

    Returns the timing, the other processes' CPU share during it, and the number of attempts.
    """
    attempt = 0
    while True:
        attempt += 1
        with CpuMonitor() as monitor:
            timing = measure_fn(build(), shape, config)
        share = monitor.other_share
        if max_other_cpu is None or share is None or share <= max_other_cpu or attempt > retries:
            return timing, share, attempt
        _wait_for_quiet(max_other_cpu, wait_s)


class TimingTargets:
    """What a table or a check hands to ``measure`` for each part or network.

    A fresh module from ``build``, except with ``export`` and the onnxruntime backend: then each key's module is
    exported to ONNX once, into a temp dir that lives as long as this object, and every round and retry times
    that file: a dynamo export takes seconds, longer than the timing itself.
    """

    def __init__(self, config: TimingConfig, export: bool = True):
        self.config = config
        export = export and config.backend == "onnxruntime"
        self._dir = tempfile.TemporaryDirectory(prefix="squeezenas-timing-") if export else None
        self._exported: dict[str, OnnxModel] = {}

    def get(self, key: str, build: Callable[[], nn.Module], shape: Sequence[int]) -> nn.Module | OnnxModel:
        if self._dir is None:
            return build()
        if key not in self._exported:
            self._exported[key] = export_for_timing(build(), shape, self.config, self._dir.name,
                                                    name=f"part{len(self._exported)}")
        return self._exported[key]

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()

    def __enter__(self) -> TimingTargets:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _wait_for_quiet(max_other_cpu: float, timeout_s: float) -> None:
    """Sleep in 1-s windows until one has other processes below ``max_other_cpu``, or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with CpuMonitor() as monitor:
            time.sleep(1.0)
        if monitor.other_share is not None and monitor.other_share <= max_other_cpu:
            return


# --- building a table --------------------------------------------------------------------------------------


def resolve_config(config: TimingConfig) -> TimingConfig:
    """The config with ``threads`` made explicit (torch's current count when None), so a table records it."""
    if config.threads is None:
        return TimingConfig.from_dict({**config.to_dict(), "threads": torch.get_num_threads()})
    return config


def _settings(plan: LutPlan, fingerprint: dict) -> dict[str, Any]:
    """Everything a partial build must share with the build that resumes it."""
    return {"macro": plan.macro.to_dict(), "input_size": list(plan.input_size), "num_classes": plan.num_classes,
            "context": plan.context, "timing": plan.config.to_dict(), "fingerprint": fingerprint}


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} != {b!r}")
    return out


def partial_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def _read_partial(path: Path, settings: dict) -> dict[str, list[dict]]:
    """Per-round entries of a partial build with the same settings; an error naming what differs otherwise."""
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LutError(f"{path}: partial build is not valid JSON ({e}); delete it to start over") from None
    if d.get("format") != LUT_FORMAT + " (partial)":
        raise LutError(f"{path}: not a partial latency-table build; delete it to start over")
    diff = _differences(d.get("settings", {}), settings)
    if diff:
        raise LutError(f"{path}: a partial build with other settings ({'; '.join(diff[:6])}"
                       f"{'; ...' if len(diff) > 6 else ''}); finish it with its own settings or delete it")
    entries = d.get("entries", {})
    if not all(isinstance(v, list) for v in entries.values()):
        raise LutError(f"{path}: partial build of an older format; delete it to start over")
    return dict(entries)


def _stats(t: Timing) -> dict[str, Any]:
    d = t.to_dict()
    return {k: d[k] for k in _STAT_FIELDS}


def build_lut(
    macro: str | MacroArch,
    input_size: tuple[int, int],
    config: TimingConfig | None = None,
    *,
    num_classes: int = 19,
    out: str | Path | None = None,
    progress: bool = True,
    measure_fn: MeasureFn | None = None,
    checkpoint_every: int = 1,
    max_other_cpu: float | None = 0.05,
    retries: int = 3,
    context: str | None = None,
    rounds: int = 1,
) -> CostTable:
    """Time every distinct part of the space at ``input_size`` and return (and with ``out``, save) the table.

    With ``out``, results so far are written atomically to ``out.partial`` every ``checkpoint_every`` parts;
    a build with the same settings resumes from it (a partial with other settings is an error naming them),
    and it is removed once ``out`` is written. ``measure_fn`` defaults to ``timing.measure``, with each part exported
    to ONNX once for the onnxruntime backend (``TimingTargets``); a given one (tests pass a counting fake) gets
    a freshly built module every time.

    A part during whose measurement other processes used more than ``max_other_cpu`` of the machine's CPU time
    is measured again (up to ``retries`` times); every entry records that share (``other_cpu``) and its
    ``attempts``, and ``meta["contention"]`` lists the parts still measured under contention.
    ``context`` is ``plan_lut``'s (default: "adapter" for onnxruntime, "alone" otherwise).

    With ``rounds`` > 1 every part is timed that many times, round-robin over all parts (so a part's rounds lie
    minutes apart), and its entry is the round with the median value of the table's statistic — or, for the
    min, the fastest round (``combine_rounds``; ``round_values`` lists them all): a machine whose speed wanders
    for seconds at a time (a busy host, frequency changes) then spoils one round, not the entry. A resumed build with more rounds adds rounds to what it has.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    arch = get_macro(macro) if isinstance(macro, str) else macro
    config = resolve_config(config or TimingConfig())
    plan = plan_lut(arch, tuple(input_size), config, num_classes, context)
    fingerprint = device_fingerprint(config.device, config.threads)
    load_start = warn_if_busy(config, "the table's timings")
    settings = _settings(plan, fingerprint)
    partial = partial_path(out) if out is not None else None
    measured: dict[str, list[dict]] = {}  # key → statistics of each round so far
    if partial is not None and partial.is_file():
        measured = {k: v for k, v in _read_partial(partial, settings).items() if k in plan.parts}
    start = time.perf_counter()

    def checkpoint() -> None:
        if partial is not None:
            atomic_write_json(partial, {"format": LUT_FORMAT + " (partial)", "settings": settings, "entries": measured})

    done = sum(min(len(v), rounds) for v in measured.values())
    bar = _progress(len(plan.parts) * rounds, done, progress,
                    f"lut {arch.name} {plan.input_size[0]}x{plan.input_size[1]} {config.backend}")
    targets = TimingTargets(config, export=measure_fn is None)
    measure_fn = measure_fn or measure
    try:
        for r in range(rounds):  # round-robin: each part's rounds lie minutes apart
            for part in plan.parts.values():
                if len(measured.get(part.key, [])) > r:
                    continue
                bar.set_postfix_str(part.key.split("|in=")[0][:40], refresh=False)
                build = lambda: targets.get(part.key, lambda: part.build(config.channels_last), part.input_shape)
                timing, share, attempts = measure_guarded(measure_fn, build, part.input_shape, config,
                                                          max_other_cpu, retries)
                measured.setdefault(part.key, []).append({**_stats(timing), "other_cpu": share, "attempts": attempts})
                bar.update(1)
                done += 1
                if done % checkpoint_every == 0:
                    checkpoint()
        checkpoint()
    finally:
        bar.close()
        targets.close()
    entries = {k: combine_rounds(v[:rounds], stat_key(config.statistic)) for k, v in measured.items()}
    table = assemble_table(plan, entries, fingerprint, time.perf_counter() - start)
    table.meta["load_average"] = {"start": load_start, "end": cpu_load()}
    table.meta["contention"] = contention_summary(list(table.meta["entries"].items()), max_other_cpu)
    if out is not None:
        table.save(out)
        if partial is not None:
            partial.unlink(missing_ok=True)
    return table


def combine_rounds(rounds: list[dict], key: str = "median_ms") -> dict:
    """One entry from the statistics of several rounds, with every round's median and ``key`` value, the worst
    other-process share and the attempts of all rounds.

    For the min (``key`` "min_ms") it is the round with the fastest call: the min over all of them. Otherwise
    it is the round whose ``key`` value is the median of the rounds' (the lower one of the middle two for an
    even count), so one round spoilt by a slow spell of the machine does not move the entry."""
    if len(rounds) == 1:
        return dict(rounds[0])
    ordered = sorted(rounds, key=lambda d: d[key])
    kept = ordered[0] if key == "min_ms" else ordered[(len(rounds) - 1) // 2]
    shares = [d["other_cpu"] for d in rounds if d.get("other_cpu") is not None]
    return {**kept, "rounds": len(rounds), "round_medians": [d["median_ms"] for d in rounds],
            "round_values": [d[key] for d in rounds], "other_cpu": max(shares) if shares else None,
            "attempts": sum(d.get("attempts", 1) for d in rounds)}


def contention_summary(items: list[tuple[str, dict]], max_other_cpu: float | None) -> dict[str, Any]:
    """How much other processes disturbed a set of measurements (entries or check rows)."""
    shares = [d.get("other_cpu") for _, d in items if d.get("other_cpu") is not None]
    limit = 1.0 if max_other_cpu is None else max_other_cpu
    return {"max_other_cpu": max_other_cpu, "mean_other_cpu": float(np.mean(shares)) if shares else None,
            "worst_other_cpu": max(shares, default=None),
            "remeasured": sum(d.get("attempts", 1) > d.get("rounds", 1) for _, d in items),
            "still_contended": [k for k, d in items if (d.get("other_cpu") or 0) > limit]}


def cpu_load() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages (None where the OS does not say)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except (AttributeError, OSError):
        return None


def warn_if_busy(config: TimingConfig, what: str = "timings") -> tuple[float, float, float] | None:
    """Warn when other processes keep the CPUs busy that a CPU measurement needs; return the load averages.

    On a 2-core machine, eager PyTorch with 2 threads slows down 10-100x as soon as anything else runs (its
    OpenMP threads wait at every barrier for a descheduled peer), and the table silently records that.
    """
    load = cpu_load()
    if load is not None and config.device == "cpu":
        cores = os.cpu_count() or 1
        if load[0] + (config.threads or 1) > cores + 0.5:
            warnings.warn(f"load average {load[0]:.2f} on {cores} logical cores with {config.threads} threads asked: "
                          f"other processes are running and {what} will be too slow and noisy", stacklevel=3)
    return load


def _progress(total: int, done: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="part", disable=not enabled, dynamic_ncols=True)


def assemble_table(plan: LutPlan, entries: dict[str, dict], fingerprint: dict, seconds: float,
                   source: str = "measured") -> CostTable:
    """The latency table of a plan from the statistics of every timed module (measured here, or imported from
    a bundle). An op timed after an adapter costs the difference of the two medians (at least 1 µs); its entry
    keeps the measurement with the adapter under ``with_adapter``."""
    stat = stat_key(plan.config.statistic)
    entries = {k: _in_context(plan.parts[k], entries, stat) for k in plan.parts}

    def value(key: str) -> float:
        return 0.0 if key == IDENTITY_KEY else float(entries[key][stat])

    from squeezenas import __version__

    c = plan.config
    meta = {
        "format": LUT_FORMAT, "source": source, "num_classes": plan.num_classes,
        "device": c.device, "backend": c.backend, "dtype": c.dtype, "channels_last": c.channels_last,
        "batch": c.batch, "threads": c.threads, "timing": c.to_dict(), "fingerprint": fingerprint,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "squeezenas": __version__, "build_seconds": round(seconds, 1), "context": plan.context,
        "cells": plan.cells, "fixed_keys": plan.fixed, "entries": entries,
    }
    return CostTable(kind="latency", unit="ms", macro=plan.macro, input_size=plan.input_size,
                     candidates=tuple(plan.macro.candidates), table=[[value(k) for k in row] for row in plan.cells],
                     fixed={name: value(key) for name, key in plan.fixed.items()}, meta=meta)


def _in_context(part: Part, measured: dict[str, dict], stat: str = "median_ms") -> dict:
    if not part.adapter:
        return measured[part.key]
    with_adapter, adapter = measured[part.key], measured[part.adapter]
    diff = with_adapter[stat] - adapter[stat]
    # 0 ms means "identity skip"; a difference within the noise floor becomes 1 µs and is flagged
    return {stat: max(_RESOLUTION_MS, diff), **({"below_resolution": True} if diff < _RESOLUTION_MS else {}),
            "iqr_ms": math.hypot(with_adapter["iqr_ms"], adapter["iqr_ms"]), "repeats": with_adapter["repeats"],
            "adapter": part.adapter, "with_adapter": with_adapter,
            **{k: with_adapter[k] for k in ("other_cpu", "attempts", "rounds") if k in with_adapter}}


# --- loading and checking a table's provenance -------------------------------------------------------------


def load_lut(path: str | Path, macro: MacroArch | str | None = None, input_size: tuple[int, int] | None = None,
             *, warn_device: bool = False) -> CostTable:
    """Load a latency table; with ``macro``/``input_size``, another space or resolution is an error; with
    ``warn_device``, a table measured on another device (fingerprint) is a warning naming the fields."""
    table = CostTable.load(path)
    if table.kind != "latency":
        raise LutError(f"{path}: a {table.kind!r} cost table, not a latency table")
    if macro is not None or input_size is not None:
        arch = table.macro if macro is None else (load_macro(macro) if isinstance(macro, str) else macro)
        table.check_compatible(arch, tuple(input_size or table.input_size), where=str(path))
    if warn_device:
        check_device(table, where=str(path))
    return table


def check_device(table: CostTable, fingerprint: dict | None = None, where: str = "latency table") -> list[str]:
    """Warn (and return the differences) when this machine's fingerprint differs from the table's."""
    recorded = table.meta.get("fingerprint")
    if not recorded:
        return []
    current = fingerprint or device_fingerprint(recorded.get("device", "cpu"), recorded.get("threads"))
    diff = fingerprint_matches(recorded, current)
    if diff:
        warnings.warn(f"{where} was measured on another device: {'; '.join(diff)}", stacklevel=2)
    return diff


def table_config(table: CostTable) -> TimingConfig:
    """The TimingConfig the table was measured with (to time whole networks the same way)."""
    if "timing" not in table.meta:
        raise LutError("latency table has no 'timing' settings in meta")
    return TimingConfig.from_dict(table.meta["timing"])


# --- checking predictions against end-to-end measurements --------------------------------------------------


def spanning_genotypes(table: CostTable, n: int, seed: int = 0) -> list[tuple[float, Genotype]]:
    """``n`` networks whose costs span the table's range, each with its mixing ratio r.

    Uniform draws cluster around the mean cost and rank poorly under noise. Network k gets r_k, stratified
    over [0, 1] (k + u) / n, and draws every position's op from the most expensive half of that position's
    candidates with probability r_k, else from the cheapest half (uniformly within the half).
    """
    rng = random.Random(seed)
    out = []
    halves = []
    for row in table.table:
        order = sorted(range(len(row)), key=lambda j: (row[j], j))
        cut = (len(order) + 1) // 2
        halves.append((order[:cut], order[cut:] or order[:cut]))
    for k in range(n):
        r = (k + rng.random()) / n
        ops = tuple(table.candidates[rng.choice(exp if rng.random() < r else cheap)] for cheap, exp in halves)
        out.append((r, Genotype(table.macro, ops)))
    return out


def fit_calibration(predicted: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """Least-squares (overhead, scale) with measured ≈ overhead + scale · predicted.

    With fewer than two distinct predictions the scale cannot be fitted: scale 1 and the mean difference.
    A fit with a non-positive scale falls back to a scale through the origin.
    """
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    if len(p) == 0:
        raise ValueError("fit_calibration: no points")
    if len(p) < 2 or np.ptp(p) == 0:
        return float(np.mean(m - p)), 1.0
    scale, overhead = np.polyfit(p, m, 1)
    if scale <= 0:
        # Noise swamped the spread (e.g. a busy machine): a calibration that reverses the table's order is
        # meaningless, so keep the table's order and fit only a scale through the origin.
        return 0.0, float(np.dot(p, m) / np.dot(p, p))
    return float(overhead), float(scale)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b between two rankings (ties in either counted as neither concordant nor discordant)."""
    if len(a) != len(b):
        raise ValueError("kendall_tau: sequences of different length")
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denom if denom else float("nan")


def error_summary(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """MAPE (%), max absolute percentage error, max absolute error (ms), mean signed error (%), Kendall τ."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    pct = (p - m) / m * 100
    return {"mape": float(np.mean(np.abs(pct))), "max_abs_pct_error": float(np.max(np.abs(pct))),
            "max_abs_error_ms": float(np.max(np.abs(p - m))), "mean_signed_pct_error": float(np.mean(pct)),
            "kendall_tau": kendall_tau(list(p), list(m))}


def leave_one_out(predicted: Sequence[float], measured: Sequence[float]) -> list[float]:
    """Calibrated predictions, each from a calibration fitted on all the other networks (held-out)."""
    p, m = list(predicted), list(measured)
    out = []
    for i in range(len(p)):
        overhead, scale = fit_calibration(p[:i] + p[i + 1:], m[:i] + m[i + 1:]) if len(p) > 1 else (0.0, 1.0)
        out.append(overhead + scale * p[i])
    return out


def evaluate_predictions(table: CostTable, rows: list[dict]) -> dict[str, Any]:
    """Errors of raw, held-out calibrated and (if present) stored-calibration predictions; fills the rows."""
    pred = [r["predicted_ms"] for r in rows]
    meas = [r["measured_ms"] for r in rows]
    loo = leave_one_out(pred, meas)
    overhead, scale = fit_calibration(pred, meas)
    for r, c in zip(rows, loo):
        r["calibrated_loo_ms"] = c
        r["error_pct"] = (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] * 100
        r["calibrated_error_pct"] = (c - r["measured_ms"]) / r["measured_ms"] * 100
    raw = error_summary(pred, meas)
    report: dict[str, Any] = {
        "n": len(rows), "mape": raw["mape"], "kendall_tau": raw["kendall_tau"], "raw": raw,
        "calibrated": {**error_summary(loo, meas),
                       "method": "leave-one-out: each network predicted with overhead/scale fitted on the others"},
        "calibration_fit": {"overhead_ms": overhead, "scale": scale, "n_networks": len(rows),
                            "fitted_on": "all networks of this check"},
        "stored_calibration": None,
    }
    stored = table.calibration
    if stored:
        report["stored_calibration"] = {
            **{k: stored.get(k) for k in ("overhead_ms", "scale", "n_networks", "seed")},
            **error_summary([table.calibrate(v) for v in pred], meas)}
    return report


def check_lut(
    table: CostTable,
    samples: int = 20,
    seed: int = 0,
    *,
    calibrate: bool = False,
    config: TimingConfig | None = None,
    progress: bool = True,
    measure_fn: MeasureFn | None = None,
    warn_device: bool = True,
    max_other_cpu: float | None = 0.05,
    retries: int = 3,
    rounds: int = 1,
) -> dict[str, Any]:
    """Predict and measure ``samples`` networks spanning the table's range; report errors before and after
    calibration. Networks are timed with the table's own TimingConfig (or ``config``).

    The calibrated errors are held-out (leave-one-out). With ``calibrate``, the fit on all networks is stored
    in ``table.meta["calibration"]`` (the caller saves the table). ``rounds`` and ``measure_fn``: as in
    ``build_lut``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if table.kind != "latency":
        raise LutError(f"check needs a latency table, got a {table.kind!r} table")
    if samples < 3:
        raise ValueError(f"samples: need at least 3 networks for a held-out calibration, got {samples}")
    config = config or table_config(table)
    fingerprint_diff = check_device(table) if warn_device else []
    load_start = warn_if_busy(config, "end-to-end timings")
    h, w = table.input_size
    num_classes = int(table.meta.get("num_classes", 19))
    rows = []
    nets = spanning_genotypes(table, samples, seed)
    from tqdm import tqdm

    per_net: list[list[dict]] = [[] for _ in nets]
    bar = tqdm(total=len(nets) * rounds, desc=f"check {table.space} {h}x{w} {config.backend}", unit="net",
               disable=not progress, dynamic_ncols=True)
    targets = TimingTargets(config, export=measure_fn is None)
    measure_fn = measure_fn or measure
    with targets:
        for _ in range(rounds):  # round-robin, as build_lut
            for k, (r, geno) in enumerate(nets):
                build = lambda: targets.get(str(k), lambda: build_model(geno, num_classes=num_classes), (3, h, w))
                t, share, attempts = measure_guarded(measure_fn, build, (3, h, w), config, max_other_cpu, retries)
                per_net[k].append({**_stats(t), "other_cpu": share, "attempts": attempts})
                bar.update(1)
    bar.close()
    stat = stat_key(config.statistic)
    for k, ((r, geno), measured) in enumerate(zip(nets, per_net)):
        m = combine_rounds(measured, stat)
        rows.append({"index": k, "mix_ratio": round(r, 4), "genotype": list(geno.ops),
                     "predicted_ms": table.predict(geno), "measured_ms": m[stat], "iqr_ms": m["iqr_ms"],
                     "repeats": m["repeats"], "other_cpu": m["other_cpu"], "attempts": m["attempts"],
                     **({"round_medians": m["round_medians"], "round_values": m["round_values"]} if rounds > 1 else {})})
    macs = mac_table(table.macro, table.input_size, num_classes)
    for r in rows:
        r["gmacs"] = macs.predict(Genotype(table.macro, tuple(r["genotype"])))
    report = {"space": table.space, "input_size": list(table.input_size), "backend": config.backend,
              "device": config.device, "dtype": config.dtype, "threads": config.threads, "seed": seed,
              "statistic": config.statistic,
              "rounds": rounds, "min_run_time": config.min_run_time,
              "fingerprint_differences": fingerprint_diff,
              "load_average": {"start": load_start, "end": cpu_load(), "table": table.meta.get("load_average")},
              "contention": contention_summary([(str(r["index"]), r) for r in rows], max_other_cpu),
              "table_contention": table.meta.get("contention"),
              **evaluate_predictions(table, rows),
              # context: how well the hardware-agnostic cost (MACs) ranks the same networks
              "kendall_tau_macs": kendall_tau([r["gmacs"] for r in rows], [r["measured_ms"] for r in rows]),
              "networks": rows}
    if calibrate:
        table.meta["calibration"] = {**report["calibration_fit"], "seed": seed,
                                     "held_out_mape": report["calibrated"]["mape"],
                                     "fitted": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return report


__all__ = ["CONTEXTS", "CpuMonitor", "IDENTITY_KEY", "LutError", "LutPlan", "PackedDecoder", "Part",
           "TimingTargets", "adapter_conv", "assemble_table", "build_lut", "check_device", "check_lut", "combine_rounds", "contention_summary",
           "cpu_load", "default_context", "error_summary", "evaluate_predictions", "fit_calibration", "kendall_tau",
           "leave_one_out", "load_lut", "measure_guarded", "output_sizes", "partial_path", "plan_lut",
           "resolve_config", "spanning_genotypes", "table_config", "warn_if_busy"]
