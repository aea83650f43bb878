"""Does a latency table carry over to another CPU? From tables and checks already on disk (no timing): the
networks of each check, measured on its CPU, predicted by a table of the same space, size and runtime built on
another CPU — held-out calibrated share within ±5% / ±10%, MAPE and raw Kendall τ, beside the figures of the
check's own table — and how far the two CPUs' tables agree about which candidates are cheap (per position, the
Kendall τ of the candidates' costs; the positions whose cheapest candidate differs).

    python bench/lut_transfer.py bench/results/lut/runtimes_epyc bench/results/lut/runtimes_norm/check_rounds32 \
        bench/results/lut/runtimes_layout --out bench/results/lut/transfer.md

Each folder's ``NAME_check.json`` is read with its table (``NAME.json`` beside it, or the one its "table" field
names). Tables are grouped by space, input size and runtime; the CPU is the table's recorded ``cpu_model``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from lut_experiment import checked_tables
from lut_rounds import figures
from runtime_tables import live_candidates
from squeezenas.cost.lut import kendall_tau, load_lut
from squeezenas.space.genotype import Genotype


def cpu_of(table) -> str:
    return (table.meta.get("fingerprint") or {}).get("cpu_model") or "unknown CPU"


def order_agreement(ta, tb) -> tuple[float, int]:
    """Mean over positions of the Kendall τ between two tables' costs of the candidates timed there, and the
    number of positions whose cheapest candidate differs."""
    taus, differ = [], 0
    for i in range(ta.macro.num_positions):
        live = live_candidates(ta, i)
        taus.append(kendall_tau([ta.table[i][j] for j in live], [tb.table[i][j] for j in live]))
        differ += min(live, key=lambda j: ta.table[i][j]) != min(live, key=lambda j: tb.table[i][j])
    return float(np.mean(taus)), differ


def entries(folders: list[Path]) -> dict[tuple, list[dict]]:
    """Per (space, input size, runtime): every checked table, with its CPU, classes and check."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for folder in folders:
        for table_path, check_path in checked_tables(folder):
            table = load_lut(table_path)
            key = (table.space, tuple(table.input_size), table.meta["backend"])
            groups[key].append({"name": f"{folder.name}/{table_path.stem}", "table": table, "cpu": cpu_of(table),
                                "classes": table.meta.get("num_classes"),
                                "check": json.loads(check_path.read_text())})
    return groups


def analyse(groups: dict[tuple, list[dict]]) -> list[dict]:
    """One row per (check, table) pair of a group whose tables come from more than one CPU."""
    rows = []
    for (space, size, backend), items in sorted(groups.items()):
        if len({e["cpu"] for e in items}) < 2:
            continue
        for measured in items:
            nets = measured["check"]["networks"]
            m = np.array([r["measured_ms"] for r in nets])
            for predictor in items:
                t = predictor["table"]
                p = np.array([t.predict(Genotype(t.macro, tuple(r["genotype"]))) for r in nets])
                tau, differ = order_agreement(measured["table"], t)
                rows.append({"space": space, "size": list(size), "backend": backend, "check": measured["name"],
                             "measured_on": measured["cpu"], "table": predictor["name"], "table_cpu": predictor["cpu"],
                             "own": predictor is measured, "classes": [measured["classes"], predictor["classes"]],
                             "networks": len(nets), "order_tau": tau, "cheapest_differs": differ,
                             "positions": t.macro.num_positions, **figures(p, m)})
    return rows


def report(rows: list[dict]) -> str:
    head = ["runtime, size", "networks measured on (check)", "predicted by the table of", "τ raw", "MAPE calib.",
            "±5% calib.", "±10% calib.", "worst calib.", "candidates' order: mean τ per position",
            "cheapest candidate differs at"]
    lines = ["Networks of each check predicted by the table of the same runtime and size built on each CPU "
             "(held out: each network's calibration fitted on the others); the check's own table in bold.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        b = "**" if r["own"] else ""
        classes = "" if r["classes"][0] == r["classes"][1] else f" ({r['classes'][1]} classes)"
        order = "" if r["own"] else f"{r['order_tau']:.2f}"
        differ = "" if r["own"] else f"{r['cheapest_differs']} of {r['positions']}"
        lines.append(f"| {r['backend']} {r['size'][0]}×{r['size'][1]} | {r['measured_on']} ({r['check']}) | "
                     f"{b}{r['table_cpu']}{classes}{b} ({r['table']}) | {r['tau_raw']:.3f} | "
                     f"{r['mape_calibrated']:.1f}% | {100 * r['within_5_calibrated']:.0f}% | "
                     f"{100 * r['within_10_calibrated']:.0f}% | {r['worst_calibrated']:.1f}% | {order} | {differ} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="folders holding NAME_check.json (and their tables)")
    ap.add_argument("--out", type=Path, help="write the report here (Markdown) and the rows beside it (.json)")
    a = ap.parse_args()
    rows = analyse(entries(a.folders))
    text = report(rows)
    print(text)
    if a.out:
        a.out.write_text(text)
        a.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
