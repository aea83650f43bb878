"""How many round-robin rounds a CPU latency table and its check need, from one build and one check timed with
many rounds (no timing here): every table part and every check network keeps each round's value, so the figures
a table and a check with only some of their rounds would have given come out side by side, from the same run.

- **first k rounds**: the table and the check each keep only their first k rounds (what ``--rounds k`` would
  have measured in that run), k = 1 .. R: held-out calibrated share within ±5% / ±10%, MAPE, raw Kendall τ;
  also the table with all R rounds against the check's first k, and the other way round, to see which side
  needs the rounds.
- **two halves**: rounds 1 .. R/2 and R/2+1 .. R are two independent measurements of the same table and the
  same networks: how often a network's figure (measured, or predicted by the table) moves by more than 5%
  between them, after one common scale (which the calibration absorbs). Each half is combined from R/2 rounds,
  noisier than all R: a bound on how well R/2 rounds repeat, pessimistic for R.
- **where the error comes from**: the held-out residual's SD against the check's own noise and the table's (each
  from its odd against its even rounds) and the rest (``squeezenas.cost.lut.budget.error_budget``).
- **until confirmed**: a policy that times an item again only until its two fastest rounds agree within a
  tolerance, simulated on the same rounds. An item not confirmed within the R rounds recorded counts as R rounds
  with its R-round figure, so its mean rounds are a lower bound on what the policy would spend (the share never
  confirmed is reported beside them).

Rounds combine as the tool combines them: the median of the speed-normalised rounds where the rounds recorded
the machine's speed (``round_speeds``), the fastest round of a table or check made before that.

    python bench/lut_rounds.py bench/results/lut/runtimes_rounds6 --out bench/results/lut/runtimes_rounds6/rounds.md
    python bench/lut_rounds.py bench/results/lut/runtimes_norm/check_rounds32 bench/results/lut/runtimes_layout \
        --out bench/results/lut/rounds_noise.md

A folder's ``NAME_check.json`` is read with ``NAME.json`` beside it, or else the table its "table" field names.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lut_experiment import checked_tables
from squeezenas.cost.lut import budget, error_summary, leave_one_out
from squeezenas.cost.tables import CostTable
from squeezenas.cost.timing.rounds import normalised_rounds
from squeezenas.cost.timing.config import stat_key
from squeezenas.space.genotype import Genotype


def table_from_rounds(table: CostTable, rounds: Sequence[int] | Callable[[list[float]], list[float]]) -> CostTable:
    """``table`` recomputed from only the rounds ``rounds`` (0-based) of every part, or from the round values
    that ``rounds`` picks of each part's (``squeezenas.cost.lut.budget.table_from_rounds``)."""
    return budget.table_from_rounds(table, rounds if callable(rounds) else lambda values: [values[r] for r in rounds])


def confirmed_at(values: list[float], base: int, tolerance_pct: float) -> int | None:
    """The fewest rounds k >= ``base`` whose two fastest values agree within ``tolerance_pct``; None when none
    of the recorded rounds do."""
    for k in range(base, len(values) + 1):
        fastest = sorted(values[:k])
        if len(fastest) < 2 or fastest[1] <= fastest[0] * (1 + tolerance_pct / 100):
            return k
    return None


def until_confirmed(values: list[float], base: int, tolerance_pct: float) -> list[float]:
    """The first k >= ``base`` round values whose two fastest agree within ``tolerance_pct`` (all of them when
    none do): a policy that times an item again only while its fastest figure is not yet confirmed."""
    return values[:confirmed_at(values, base, tolerance_pct) or len(values)]


def figures(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """The check's figures: raw τ and MAPE, held-out (leave-one-out) calibrated MAPE and shares within ±5%/±10%."""
    raw = error_summary(predicted, measured)
    calibrated = error_summary(leave_one_out(list(predicted), list(measured)), measured)
    return {"tau_raw": raw["kendall_tau"], "mape_raw": raw["mape"], "mape_calibrated": calibrated["mape"],
            "within_5_calibrated": calibrated["within_5pct"], "within_10_calibrated": calibrated["within_10pct"],
            "worst_calibrated": calibrated["max_abs_pct_error"]}


def _moved_over(a: np.ndarray, b: np.ndarray, pct: float) -> float:
    """Share of networks whose two figures differ by more than ``pct`` of their mean, after one common scale
    (a machine a few percent slower in one half moves every figure alike; the calibration absorbs that)."""
    b = b * np.median(a / b)
    return float(np.mean(np.abs(a - b) / ((a + b) / 2) * 100 > pct))


def analyse(table_path: Path, check_path: Path) -> dict:
    table, check = CostTable.load(table_path), json.loads(check_path.read_text())
    stat = stat_key(check["statistic"])
    rows = check["networks"]
    genotypes = [Genotype(table.macro, tuple(r["genotype"])) for r in rows]
    n_table, n_check = table.meta.get("rounds"), check.get("rounds")
    if (not n_table or not n_check or any("round_values" not in r for r in rows)
            or any("round_values" not in v for v in budget.measured_items(table.meta["entries"]))):
        raise ValueError(f"{table_path} / {check_path}: no per-round values recorded (built before rounds were)")
    n = min(n_table, n_check)

    def predicted(rounds: Sequence[int] | Callable[[list[float]], list[float]]) -> np.ndarray:
        t = table_from_rounds(table, rounds)
        return np.array([t.predict(g) for g in genotypes])

    def measured(rounds: Sequence[int] | Callable[[list[float]], list[float]]) -> np.ndarray:
        pick = rounds if callable(rounds) else lambda values: [values[i] for i in rounds]
        return np.array([budget.combined(pick(normalised_rounds(r)), stat, bool(r.get("round_speeds")))
                         for r in rows])

    all_table, all_check = predicted(range(n_table)), measured(range(n_check))
    out: dict = {"networks": len(rows), "table_rounds": n_table, "check_rounds": n_check,
                 "threads": check.get("threads"), "first_k": [], "table_all_check_k": [], "table_k_check_all": []}
    for k in range(1, n + 1):
        p, m = predicted(range(k)), measured(range(k))
        out["first_k"].append({"k": k, **figures(p, m)})
        out["table_all_check_k"].append({"k": k, **figures(all_table, m)})
        out["table_k_check_all"].append({"k": k, **figures(p, all_check)})
    if n >= 2:
        a, b = range(n // 2), range(n // 2, 2 * (n // 2))
        out["halves"] = {"rounds_each": n // 2,
                         "measured_moved_over_5pct": _moved_over(measured(a), measured(b), 5),
                         "predicted_moved_over_5pct": _moved_over(predicted(a), predicted(b), 5),
                         "half_a": figures(predicted(a), measured(a)), "half_b": figures(predicted(b), measured(b))}
    out["noise"] = budget.error_budget(table, rows)
    out["until_confirmed"] = []
    for base, tolerance in CONFIRM_POLICIES:
        if base > n:
            continue
        pick = lambda values: until_confirmed(values[:n], base, tolerance)  # noqa: E731
        parts = [normalised_rounds(v)[:n] for v in budget.measured_items(table.meta["entries"])]
        networks = [normalised_rounds(r)[:n] for r in rows]
        out["until_confirmed"].append({
            "base": base, "tolerance_pct": tolerance,
            "table_mean_rounds": _mean_rounds(parts, pick), "check_mean_rounds": _mean_rounds(networks, pick),
            "table_never_confirmed": _never(parts, base, tolerance),
            "check_never_confirmed": _never(networks, base, tolerance),
            **figures(predicted(pick), measured(pick))})
    return out


CONFIRM_POLICIES = ((2, 2.0), (3, 2.0), (3, 5.0))  # (base rounds, tolerance %) of ``until_confirmed``


def _never(lists: list[list[float]], base: int, tolerance_pct: float) -> float:
    """Share of the items not confirmed within their recorded rounds."""
    return float(np.mean([confirmed_at(v, base, tolerance_pct) is None for v in lists]))


def _mean_rounds(lists: list[list[float]], pick: Callable[[list[float]], list[float]]) -> float:
    return float(np.mean([len(pick(v)) for v in lists]))


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def summary(results: dict[str, dict]) -> list[str]:
    """One row per check: the held-out ±5% share with the first k rounds of both, k = 1 .. R; raw τ with all R;
    the range of that share over the table's first k rounds against the check's R; how many networks' measured
    figures moved > 5% between the two halves."""
    n = max((len(r["first_k"]) for r in results.values()), default=0)
    lines = ["## In short", "", "Held-out calibrated share within ±5% with the first k rounds of the table and the "
             "check:", "", "| check | threads | " + " | ".join(f"k={k}" for k in range(1, n + 1))
             + " | τ raw (all) | table k=1..R, check all | halves: measured moved > 5% |", "|" + "---|" * (n + 5)]
    for name, r in results.items():
        shares = [_pct(f["within_5_calibrated"]) for f in r["first_k"]] + [""] * (n - len(r["first_k"]))
        table_k = [f["within_5_calibrated"] for f in r["table_k_check_all"]]
        moved = _pct(r["halves"]["measured_moved_over_5pct"]) if "halves" in r else ""
        lines.append(f"| {name} | {r['threads']} | " + " | ".join(shares) + f" | {r['first_k'][-1]['tau_raw']:.3f} | "
                     f"{_pct(min(table_k))}–{_pct(max(table_k))} | {moved} |")
    if len(results) > 1:  # per k, over the checks that have k rounds
        means = [[f["within_5_calibrated"] for r in results.values() for f in r["first_k"] if f["k"] == k]
                 for k in range(1, n + 1)]
        lines.append("| mean of the checks | | " + " | ".join(_pct(float(np.mean(m))) for m in means) + " | | | |")
    return lines + [""]


def report(results: dict[str, dict]) -> str:
    head = ["check", "threads", "table rounds", "check rounds", "±5% calib. (held out)", "±10% calib.",
            "MAPE calib.", "worst calib.", "τ raw"]
    lines = summary(results) + ["## The table and the check with their first k rounds", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        for key, label in (("first_k", lambda k: (k, k)), ("table_all_check_k", lambda k: (r["table_rounds"], k)),
                           ("table_k_check_all", lambda k: (k, r["check_rounds"]))):
            for f in r[key]:
                kt, kc = label(f["k"])
                if key != "first_k" and kt == kc:
                    continue  # the row of first_k
                lines.append(f"| {name} | {r['threads']} | {kt} | {kc} | {_pct(f['within_5_calibrated'])} | "
                             f"{_pct(f['within_10_calibrated'])} | {f['mape_calibrated']:.1f}% | "
                             f"{f['worst_calibrated']:.1f}% | {f['tau_raw']:.3f} |")
    lines += ["", "## Two independent halves of the rounds", "",
              "Each half's rounds combined as the tool combines them (the median of the speed-normalised rounds; the "
              "fastest for tables and checks that recorded no speeds), after one common scale between the halves.",
              "",
              "| check | rounds each | measured figure moved > 5% | table's prediction moved > 5% | "
              "±5% calib. half 1 | ±5% calib. half 2 |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        h = r.get("halves")
        if h:
            lines.append(f"| {name} | {h['rounds_each']} | {_pct(h['measured_moved_over_5pct'])} | "
                         f"{_pct(h['predicted_moved_over_5pct'])} | {_pct(h['half_a']['within_5_calibrated'])} | "
                         f"{_pct(h['half_b']['within_5_calibrated'])} |")
    lines += ["", "## Where the held-out error comes from (SD, % of a network's time; odd against even rounds)", "",
              "| check | rounds: table, check | held-out residual (RMS) | check's noise | table's noise | "
              "the rest | ±5% a normal error would give | P(≥ 95% within ±5%) |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        b = r.get("noise")
        if b:
            table_sd = "–" if b["table_sd_pct"] is None else f"{b['table_sd_pct']:.2f}"
            lines.append(f"| {name} | {r['table_rounds']}, {r['check_rounds']} | {b['residual_sd_pct']:.2f} | "
                         f"{b['check_sd_pct']:.2f} | {table_sd} | {b['model_sd_pct']:.2f} | "
                         f"{_pct(b['expected_share'])} | {_pct(b['p_goal'])} |")
    lines += ["", "## Timing again only until the fastest round is confirmed (bench/lut_rounds.py until_confirmed)",
              "", "Items never confirmed within the rounds recorded count as all of them (with that figure): the "
              "mean rounds are a lower bound on what the policy would spend.", "",
              "| check | base rounds | tolerance | mean rounds: table parts (never confirmed) | mean rounds: networks "
              "(never confirmed) | ±5% calib. | ±10% calib. | MAPE calib. | τ raw |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for f in r.get("until_confirmed", []):
            lines.append(f"| {name} | {f['base']} | {f['tolerance_pct']:g}% | {f['table_mean_rounds']:.2f} "
                         f"({_pct(f['table_never_confirmed'])}) | {f['check_mean_rounds']:.2f} "
                         f"({_pct(f['check_never_confirmed'])}) | {_pct(f['within_5_calibrated'])} | "
                         f"{_pct(f['within_10_calibrated'])} | {f['mape_calibrated']:.1f}% | {f['tau_raw']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="folders holding NAME.json tables and NAME_check.json")
    ap.add_argument("--out", type=Path, help="write the report here (Markdown) and the figures beside it (.json)")
    a = ap.parse_args()
    results = {}
    for folder in a.folders:
        for table, check in checked_tables(folder):
            try:
                results[f"{folder.name}/{table.stem}"] = analyse(table, check)
            except ValueError as e:
                print(f"skipped: {e}")
    text = report(results)
    print(text)
    if a.out:
        a.out.write_text(text)
        a.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
