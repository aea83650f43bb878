"""Checking a latency table against end-to-end measurements: networks spanning its range, predicted and timed,
errors before and after calibration."""

from __future__ import annotations

import dataclasses
import datetime
import math
import random
import time
from pathlib import Path
from typing import Any, NamedTuple

from squeezenas.cost.lut.loading import LutError, check_device, load_lut, table_config
from squeezenas.cost.lut.budget import error_budget
from squeezenas.cost.lut.stats import error_summary, fit_calibration, kendall_tau, leave_one_out, repeatability
from squeezenas.cost.tables import CostTable, mac_table
from squeezenas.cost.timing.canary import speed_canary
from squeezenas.cost.timing.config import TimingConfig, check_available, default_rounds, stat_key
from squeezenas.cost.timing.contention import (MAX_OTHER_CPU, RETRIES, WaitBudget, contention_summary, cpu_load,
                                               measure_guarded, warn_if_busy)
from squeezenas.cost.timing.rounds import combine_all, normalised_rounds
from squeezenas.cost.timing.targets import TimingTargets
from squeezenas.cost.timing.timer import MeasureFn, measure
from squeezenas.models.builder import build_model
from squeezenas.space.genotype import Genotype
from squeezenas.space.ops import parse_op
from squeezenas.utils.io import atomic_write_json


# A check times each network this many times as often as its table timed each part. A prediction sums ~20 parts,
# whose errors partly cancel; a network's figure is one figure and its noise is the check's alone: with the
# table's 16 rounds, the odd and even halves of the 360x480 checks agreed within 5% for 71-88% of the networks and
# eager missed the ±5% goal by two of them (92%); with 32 rounds, 96% and 100% (docs/LATENCY.md). A check times
# 24 networks, a table ~130 parts: the doubled rounds cost minutes.
CHECK_ROUNDS_FACTOR = 2


class SpanningNet(NamedTuple):
    """One network of a check: its two stratified coordinates and its genotype."""

    mix_ratio: float  # share of positions drawn from the more expensive half of their candidates
    skip_ratio: float  # chance that a position is ``skip``
    genotype: Genotype


def spanning_genotypes(table: CostTable, n: int, seed: int = 0) -> list[SpanningNet]:
    """``n`` networks whose costs span the table's range and whose share of ``skip`` spans [0, 1].

    Uniform draws cluster around the mean cost and rank poorly under noise, and a search can end far from the
    mean: networks whose positions are mostly ``skip`` (a table that errs on them chooses them wrongly). So two
    coordinates are stratified over [0, 1] together (a Latin hypercube): network k gets the mix ratio
    r_k = (k + u) / n and the skip ratio s_k = (π_k + u') / n, π a random permutation. Each position is ``skip``
    with probability s_k (where ``skip`` is a candidate); otherwise its op is drawn from the most expensive half
    of the position's other candidates with probability r_k, else from the cheapest half (uniformly within it).
    """
    rng = random.Random(seed)
    skip = next((j for j, c in enumerate(table.candidates) if parse_op(c).is_skip), None)
    halves = []
    for row in table.table:
        order = sorted((j for j in range(len(row)) if j != skip), key=lambda j: (row[j], j))
        cut = (len(order) + 1) // 2
        halves.append((order[:cut], order[cut:] or order[:cut]))
    strata = list(range(n))
    rng.shuffle(strata)
    out = []
    for k in range(n):
        r, s = (k + rng.random()) / n, (strata[k] + rng.random()) / n
        ops = []
        for cheap, expensive in halves:
            if skip is not None and rng.random() < s:
                ops.append(table.candidates[skip])
            else:
                ops.append(table.candidates[rng.choice(expensive if rng.random() < r else cheap)])
        out.append(SpanningNet(r, s, Genotype(table.macro, tuple(ops))))
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
    max_other_cpu: float | None = MAX_OTHER_CPU,
    retries: int = RETRIES,
    rounds: int | None = None,
    canary: bool = False,
    wait_budget_s: float = 120.0,
    shuffle: bool = False,
) -> dict[str, Any]:
    """Predict and measure ``samples`` networks spanning the table's range and the whole skip ratio
    (``spanning_genotypes``); report errors before and after calibration: MAPE, Kendall τ, the share within
    ±5% and ±10%. Networks are timed with the table's own TimingConfig (or ``config``).

    The calibrated errors are held-out (leave-one-out): a report always says how good the calibrated table is.
    With ``calibrate``, the fit on all networks is also stored in ``table.meta["calibration"]`` (the caller saves
    the table). ``rounds`` (default: ``CHECK_ROUNDS_FACTOR`` times the table's, else times ``default_rounds``),
    ``measure_fn`` and ``canary``: as in ``build_lut``. With ``shuffle``, each round times the networks in an
    order of its own (drawn from ``seed``), so that no network always follows the same one: two checks of one
    seed, one in a fixed and one in shuffled order, tell an error that follows the order from the table's.
    """
    config = (config or table_config(table)).resolved()
    rounds = rounds or CHECK_ROUNDS_FACTOR * (table.meta.get("rounds") or default_rounds(config))
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if table.kind != "latency":
        raise LutError(f"check needs a latency table, got a {table.kind!r} table")
    if samples < 3:
        raise ValueError(f"samples: need at least 3 networks for a held-out calibration, got {samples}")
    if measure_fn is None:
        check_available(config)
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
    probe = speed_canary(config.device, config.threads, canary, config.runtime_device)
    budget = WaitBudget(wait_budget_s)  # waiting for quiet moments, for the whole check
    with targets:
        orders = random.Random(f"order {seed}")
        for _ in range(rounds):  # round-robin, as build_lut
            order = orders.sample(range(len(nets)), len(nets)) if shuffle else range(len(nets))
            for k in order:
                geno = nets[k].genotype
                build = lambda: targets.get(str(k), lambda: build_model(geno, num_classes=num_classes), (3, h, w))
                g = measure_guarded(measure_fn, build, (3, h, w), config, max_other_cpu, retries, canary=probe,
                                    budget=budget)
                per_net[k].append({**g.timing.statistics(), **g.record(), "at": time.time()})
                bar.update(1)
    bar.close()
    stat = stat_key(config.statistic)
    skip = [parse_op(c).is_skip for c in table.candidates]
    combined = combine_all({str(k): m for k, m in enumerate(per_net)}, stat)
    for k, (r, s, geno) in enumerate(nets):
        m = combined[str(k)]
        skipped = sum(skip[table.candidates.index(op)] for op in geno.ops) / len(geno.ops)
        rows.append({"index": k, "mix_ratio": round(r, 4), "skip_ratio": round(s, 4), "skip_fraction": skipped,
                     "genotype": list(geno.ops),
                     "predicted_ms": table.predict(geno), "measured_ms": m[stat], "iqr_ms": m["iqr_ms"],
                     "repeats": m["repeats"], "rounds": rounds, "other_cpu": m["other_cpu"], "attempts": m["attempts"],
                     "canary_ratio": m.get("canary_ratio"),
                     **({k: m[k] for k in ("round_medians", "round_values", "round_speeds") if k in m} if rounds > 1
                        else {})})
    macs = mac_table(table.macro, table.input_size, num_classes)
    for r in rows:
        r["gmacs"] = macs.predict(Genotype(table.macro, tuple(r["genotype"])))
    report = {**_table_settings(table, config), "seed": seed, "rounds": rounds, "min_run_time": config.min_run_time,
              "order": "shuffled each round" if shuffle else "fixed",
              "fingerprint_differences": fingerprint_diff,
              "load_average": {"start": load_start, "end": cpu_load(), "table": table.meta.get("load_average")},
              "contention": contention_summary([(str(r["index"]), r) for r in rows], max_other_cpu),
              "table_contention": table.meta.get("contention"),
              **evaluate_predictions(table, rows),
              # how far the networks' own figures move between rounds (what a ±5% share can rest on)
              "repeatability": repeatability([normalised_rounds(r) for r in rows]),
              # the held-out residual split into the check's noise, the table's and the sum-of-parts model's
              "error_budget": error_budget(table, rows),
              # context: how well the hardware-agnostic cost (MACs) ranks the same networks
              "kendall_tau_macs": kendall_tau([r["gmacs"] for r in rows], [r["measured_ms"] for r in rows]),
              "networks": rows}
    if calibrate:
        table.meta["calibration"] = _calibration_record(report, seed)
    return report


def _calibration_record(report: dict[str, Any], seed: Any) -> dict[str, Any]:
    """What ``table.meta["calibration"]`` holds: the fit on all of a check's networks, its held-out MAPE, when."""
    return {**report["calibration_fit"], "seed": seed, "held_out_mape": report["calibrated"]["mape"],
            "fitted": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _table_settings(table: CostTable, config: TimingConfig) -> dict[str, Any]:
    """What a check report records of its table and timing: the settings a report must share with a table for
    its networks to calibrate that table (``calibrate_from_report``)."""
    return {"space": table.space, "input_size": list(table.input_size), "backend": config.backend,
            "device": config.device, "dtype": config.dtype, "threads": config.threads, "statistic": config.statistic}


def calibrate_from_report(table: CostTable, report: dict[str, Any], where: str = "the report") -> dict[str, Any]:
    """Store in ``table.meta["calibration"]`` the fit on the networks of a saved check report (``lut check --out``)
    without timing them again, and return the report's figures recomputed for this table.

    The report must be of this very table: the same space, resolution and timing settings, and every network's
    raw prediction equal to this table's (a table rebuilt since the check predicts other sums). Anything else is
    a ``LutError`` naming ``where`` and the field."""
    if table.kind != "latency":
        raise LutError(f"calibrate needs a latency table, got a {table.kind!r} table")
    own = _table_settings(table, table_config(table).resolved())
    for field in own:
        if field not in report:
            raise LutError(f"{where}: no {field!r}: not a report of 'squeezenas lut check --out'")
        if report[field] != own[field]:
            raise LutError(f"{where}: {field} is {report[field]!r}, the table's is {own[field]!r}: "
                           "a check of another table")
    if report.get("fingerprint_differences"):
        raise LutError(f"{where}: the check ran on another device than the table's "
                       f"({'; '.join(map(str, report['fingerprint_differences']))}): its fit is not this table's")
    networks = report.get("networks")
    if not isinstance(networks, list) or len(networks) < 3:
        raise LutError(f"{where}: 'networks' must list at least 3 timed networks for a calibration")
    rows = []
    for k, r in enumerate(networks):
        try:
            genotype = Genotype(table.macro, tuple(r["genotype"]))
            predicted = table.predict(genotype)
            claimed, measured = float(r["predicted_ms"]), float(r["measured_ms"])
        except (KeyError, TypeError, ValueError) as e:
            raise LutError(f"{where}: networks[{k}] is not a checked network of this table "
                           f"({type(e).__name__}: {e})") from None
        if not math.isclose(predicted, claimed, rel_tol=1e-6, abs_tol=1e-6):  # NaN is never close
            raise LutError(f"{where}: networks[{k}] was predicted {claimed:.4f} ms, this table predicts "
                           f"{predicted:.4f} ms: the report is of another build of the table")
        if not math.isfinite(measured) or measured <= 0:
            raise LutError(f"{where}: networks[{k}].measured_ms is {measured!r}, not a positive time")
        rows.append({**r, "predicted_ms": predicted, "measured_ms": measured})
    figures = evaluate_predictions(table, rows)
    table.meta["calibration"] = {**_calibration_record(figures, report.get("seed")), "from_report": where}
    return figures


def check_lut_file(path: str | Path, samples: int = 20, seed: int = 0, *, calibrate: bool = False,
                   min_run_time: float | None = None, out: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """``check_lut`` of the table at ``path``, timed with its own settings (``min_run_time``, when given, per
    network); with ``calibrate`` the table is saved again with the calibration, with ``out`` the report is
    written there too. ``options`` go to ``check_lut`` (progress, rounds, contention)."""
    table = load_lut(path)
    config = table_config(table)
    if min_run_time is not None:
        config = dataclasses.replace(config, min_run_time=min_run_time,
                                     max_run_time=max(config.max_run_time, min_run_time))
    report = check_lut(table, samples, seed, calibrate=calibrate, config=config, **options)
    report["table"] = str(path)
    if calibrate:
        table.save(path)  # atomic
    if out is not None:
        atomic_write_json(out, report)
    return report


def calibrate_lut_file(path: str | Path, report_path: str | Path) -> dict[str, Any]:
    """``calibrate_from_report`` of the table at ``path`` with the report at ``report_path``; the table is saved
    again (atomically) only when the report fits it."""
    import json

    try:
        report = json.loads(Path(report_path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LutError(f"{report_path}: not a JSON check report ({e})") from None
    if not isinstance(report, dict):
        raise LutError(f"{report_path}: not a JSON check report (a JSON object)")
    table = load_lut(path)
    figures = calibrate_from_report(table, report, where=str(report_path))
    table.save(path)  # atomic
    return figures
