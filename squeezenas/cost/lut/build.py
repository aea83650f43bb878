"""Building a latency table: time every part of a plan (resumable, in rounds, re-measured under contention)
and assemble the table from the parts' statistics."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from squeezenas.cost.lut.loading import LutError
from squeezenas.cost.lut.plan import ADAPTER_CONTEXTS, IDENTITY_KEY, LutPlan, Part, plan_lut
from squeezenas.cost.tables import ADAPTER_CONTEXT, CostTable
from squeezenas.cost.timing.canary import speed_canary
from squeezenas.cost.timing.config import TimingConfig, check_available, default_rounds, stat_key
from squeezenas.cost.timing.contention import (MAX_OTHER_CPU, RETRIES, WaitBudget, contention_summary, cpu_load,
                                               measure_guarded, warn_if_busy)
from squeezenas.cost.timing.device import device_fingerprint
from squeezenas.cost.timing.rounds import combine_all, rounds_combined
from squeezenas.cost.timing.targets import TimingTargets
from squeezenas.cost.timing.timer import MeasureFn, measure
from squeezenas.space.macro import MacroArch, get_space
from squeezenas.utils.config import pair
from squeezenas.utils.io import RunLock, atomic_write_json, check_output

LUT_FORMAT = "squeezenas latency table"
PARTIAL_SUFFIX = ".partial"
_RESOLUTION_MS = 1e-3  # an op timed after an adapter costs at least this (its difference may be lost in noise)


def place_in_context(cells: list[list[str]], fixed_keys: dict[str, str], value: Callable[[str], float],
                     context: str) -> tuple[list[list[float]], dict[str, float]]:
    """The table's rows and fixed costs from each part's cost (``value`` of its key), with the fixed cost
    ``ADAPTER_CONTEXT`` (< 0) where a row was shifted.

    An op timed after an adapter costs (adapter + op) − adapter. Where the op changes its input's shape (a stride
    of 2, other channels) that difference also holds the handing back of the op's output minus that of the
    adapter's, the same for every candidate at the position and, along a network, a sum that telescopes; it can
    be negative (OpenVINO hands back a full-resolution output more slowly than the pair runs; docs/LATENCY.md).
    Such a row is shifted so that its cheapest candidate costs 1 µs and the shift is kept in ``ADAPTER_CONTEXT``,
    so every network's sum stays the sum of its differences. Rows with the identity skip (0 ms, exact) are
    clipped at 1 µs instead: the op keeps the input's shape there, and a negative difference is noise.
    """
    rows, shift_total = [], 0.0
    for row in cells:
        costs = [value(k) for k in row]
        live = [c for k, c in zip(row, costs) if k != IDENTITY_KEY]
        if context not in ADAPTER_CONTEXTS or not live or min(live) >= _RESOLUTION_MS:
            rows.append(costs)
        elif IDENTITY_KEY in row:
            rows.append([c if k == IDENTITY_KEY else max(_RESOLUTION_MS, c) for k, c in zip(row, costs)])
        else:
            shift = min(live) - _RESOLUTION_MS
            rows.append([c - shift for c in costs])
            shift_total += shift
    fixed = {name: value(key) for name, key in fixed_keys.items()}
    if shift_total < 0:
        fixed[ADAPTER_CONTEXT] = shift_total
    return rows, fixed


def shifted_rows(table: CostTable) -> list[int]:
    """Positions whose row ``place_in_context`` shifted: their costs hold an unknown common offset (kept in the
    table's ``ADAPTER_CONTEXT``), so orders and differences between candidates hold there and ratios do not."""
    cells = table.meta.get("cells")
    if ADAPTER_CONTEXT not in table.fixed or not cells:
        return []
    return [i for i, (row, keys) in enumerate(zip(table.table, cells)) if IDENTITY_KEY not in keys
            and math.isclose(min(row), _RESOLUTION_MS, rel_tol=1e-9, abs_tol=1e-12)]


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
    max_other_cpu: float | None = MAX_OTHER_CPU,
    retries: int = RETRIES,
    canary: bool = False,
    wait_budget_s: float = 300.0,
    context: str | None = None,
    rounds: int | None = None,
    force: bool = False,
) -> CostTable:
    """Time every distinct part of the space at ``input_size`` and return (and with ``out``, save) the table.

    With ``out``, results so far are written atomically to ``out.partial`` every ``checkpoint_every`` parts;
    a build with the same settings resumes from it (a partial with other settings is an error naming them),
    and it is removed once ``out`` is written. ``measure_fn`` defaults to ``cost.timing.measure``, with each part
    exported once to the runtime's artefact for onnxruntime, openvino and executorch (``TimingTargets``); a given
    one (tests pass a counting fake) gets a freshly built module every time.

    A part during whose measurement other processes used more than ``max_other_cpu`` of the machine's CPU time
    is measured again (up to ``retries`` times); every entry records that share (``other_cpu``) and its
    ``attempts``, and ``meta["contention"]`` lists the parts still measured under contention. With ``canary``
    (CPU only), a part is also measured again while the machine itself runs slow (``SpeedCanary``; the entry
    records the canary's ``canary_ratio``).
    ``context`` is ``plan_lut``'s (default: the backend's, "adapter" for the runtimes that run an artefact).

    ``rounds`` (default: 16 on CPU, 1 on CUDA, ``default_rounds``; recorded in ``meta["rounds"]``): every part is
    timed that many times, round-robin over all parts (so a part's rounds lie minutes apart), each round recording
    when it was taken; its entry is the median of its rounds' values of the table's statistic, each divided by the
    machine's speed at that moment (``combine_all``, ``speed_factors``: the machine's speed changes every few
    seconds, and the measurements around a round show by how much; ``round_values`` and ``round_speeds`` list
    them; ``meta["rounds_combined"]`` says so). A resumed build with more rounds adds rounds to what it has.

    An ``out`` that already holds a calibrated table is not replaced unless ``force`` (its calibration, fitted by
    ``lut check --calibrate``, would be lost); a build into an ``out`` that another build is writing is refused.
    """
    config = (config or TimingConfig()).resolved()
    rounds = default_rounds(config) if rounds is None else rounds
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    input_size = pair("input_size", tuple(input_size))
    if out is not None:
        out = check_output(out, kind="file", what="--out")
        _refuse_to_drop_a_calibration(out, force)
    arch = get_space(macro)
    if measure_fn is None:
        check_available(config)  # CUDA, and the runtime (an error naming its extra) before anything is timed
    plan = plan_lut(arch, tuple(input_size), config, num_classes, context)
    fingerprint = device_fingerprint(config.device, config.threads, backend=config.backend,
                                     runtime_device=config.runtime_device)
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
    probe = speed_canary(config.device, config.threads, canary, config.runtime_device)
    budget = WaitBudget(wait_budget_s)  # waiting for quiet moments, for the whole table
    lock = RunLock(out.with_name(out.name + ".lock"), "--out") if out is not None else contextlib.nullcontext()
    try:
        lock.__enter__()
        for r in range(rounds):  # round-robin: each part's rounds lie minutes apart
            for part in plan.parts.values():
                if len(measured.get(part.key, [])) > r:
                    continue
                bar.set_postfix_str(part.key.split("|in=")[0][:40], refresh=False)
                build = lambda: targets.get(part.key, lambda: part.build(config.channels_last), part.input_shape)
                g = measure_guarded(measure_fn, build, part.input_shape, config, max_other_cpu, retries,
                                    canary=probe, budget=budget)
                measured.setdefault(part.key, []).append({**g.timing.statistics(), **g.record(), "at": time.time()})
                bar.update(1)
                done += 1
                if done % checkpoint_every == 0:
                    checkpoint()
        checkpoint()
        entries = combine_all({k: v[:rounds] for k, v in measured.items()}, stat_key(config.statistic))
        table = assemble_table(plan, entries, fingerprint, time.perf_counter() - start)
        table.meta["rounds"] = rounds
        table.meta["rounds_combined"] = rounds_combined(entries.values(), config.statistic)
        table.meta["load_average"] = {"start": load_start, "end": cpu_load()}
        table.meta["contention"] = contention_summary(list(table.meta["entries"].items()), max_other_cpu)
        if out is not None:
            table.save(out)
            if partial is not None:
                partial.unlink(missing_ok=True)
    finally:
        bar.close()
        targets.close()
        lock.__exit__(None, None, None)
    return table


def _refuse_to_drop_a_calibration(out: Path, force: bool) -> None:
    """A table file holding a calibration is replaced only with ``force``."""
    if force or not out.is_file():
        return
    try:
        calibration = json.loads(out.read_text()).get("meta", {}).get("calibration")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise LutError(f"--out {out} exists and is not a latency table; pass --force to replace it") from None
    if calibration:
        raise LutError(f"--out {out} holds a calibrated table (fitted {calibration.get('fitted', '?')} on "
                       f"{calibration.get('n_networks', '?')} networks); pass --force to replace it and lose the "
                       "calibration, or build into another --out")


def _progress(total: int, done: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="part", disable=not enabled, dynamic_ncols=True)


def assemble_table(plan: LutPlan, entries: dict[str, dict], fingerprint: dict, seconds: float,
                   source: str = "measured") -> CostTable:
    """The latency table of a plan from the statistics of every timed module (measured here, or imported from
    a bundle). An op timed after an adapter costs the difference of the two figures (``place_in_context``); its
    entry keeps the measurement with the adapter under ``with_adapter``."""
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
    if plan.after:
        meta["after_keys"] = {str(g): keys for g, keys in plan.after.items()}
    table, fixed = place_in_context(plan.cells, plan.fixed, value, plan.context)
    return CostTable(kind="latency", unit="ms", macro=plan.macro, input_size=plan.input_size,
                     candidates=tuple(plan.macro.candidates), table=table, fixed=fixed, meta=meta,
                     pairs=pair_terms(plan.cells, plan.after, value))


def pair_terms(cells: list[list[str]], after: dict[int, list[list[str]]],
               value: Callable[[str], float]) -> dict[int, list[list[float]]]:
    """``CostTable.pairs`` of a "layout" plan's ``cells`` and ``after`` keys: each op's cost after a grouped
    adapter minus its cost after the depthwise one (both differences with their adapter's time). Row shifts
    (``place_in_context``) apply to both contexts alike and do not enter the difference; in rows with the identity
    skip, where it clips costs at 1 µs, both sides are clipped alike."""
    def pair(a: str, c: str, clip: bool) -> float:
        return max(_RESOLUTION_MS, value(a)) - max(_RESOLUTION_MS, value(c)) if clip else value(a) - value(c)

    return {int(g): [[pair(a, c, IDENTITY_KEY in row and c != IDENTITY_KEY) for a, c in zip(after_row, row)]
                     for after_row, row in zip(keys, cells)] for g, keys in after.items()}


def _in_context(part: Part, measured: dict[str, dict], stat: str = "median_ms") -> dict:
    if not part.adapter:
        return measured[part.key]
    with_adapter, adapter = measured[part.key], measured[part.adapter]
    diff = with_adapter[stat] - adapter[stat]
    # the difference itself (``place_in_context`` makes the table's costs of it); one below the noise floor is flagged
    return {stat: diff, **({"below_resolution": True} if diff < _RESOLUTION_MS else {}),
            "iqr_ms": math.hypot(with_adapter["iqr_ms"], adapter["iqr_ms"]), "repeats": with_adapter["repeats"],
            "adapter": part.adapter, "with_adapter": with_adapter,
            **{k: with_adapter[k] for k in ("other_cpu", "attempts", "rounds") if k in with_adapter},
            **({"canary_ratio": max(d["canary_ratio"] for d in (with_adapter, adapter) if "canary_ratio" in d)}
               if "canary_ratio" in with_adapter or "canary_ratio" in adapter else {})}
