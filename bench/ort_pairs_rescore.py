"""The same checks' measurements scored with three predictions of the same onnxruntime tables (docs/LATENCY.md,
"onnxruntime: grouped convolutions in the plain layout"): without pair terms (the adapter context's sums), with
pair terms after grouped blocks only, and after grouped blocks and stride-2 skips (``producer_groups``, the
default). Nothing is timed: each check's measured figures stay, only the predictions change.

    python bench/ort_pairs_rescore.py --checks bench/results/lut/runtimes_layout/grouped_blocks_only/*_check.json \\
        bench/results/lut/runtimes_layout/*_check.json --out bench/results/lut/runtimes_layout/rescore.md
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from unittest import mock

from squeezenas.cost import tables
from squeezenas.cost.lut import load_lut
from squeezenas.cost.lut.check import evaluate_predictions
from squeezenas.space import Genotype


_PRODUCER_GROUPS = tables.producer_groups


def grouped_blocks_only(op: str, stride: int = 1) -> int:
    """``producer_groups`` before stride-2 skips counted: a skip hands on one group."""
    return _PRODUCER_GROUPS(op, 1)


def score(table, rows: list[dict]) -> dict:
    rows = copy.deepcopy(rows)
    for r in rows:
        r["predicted_ms"] = table.predict(Genotype(table.macro, tuple(r["genotype"])))
    report = evaluate_predictions(table, rows)
    return {"tau": report["kendall_tau"], "mape_raw": report["mape"], "mape_cal": report["calibrated"]["mape"],
            "within5": report["calibrated"]["within_5pct"], "max_cal": report["calibrated"]["max_abs_pct_error"],
            "scale": report["calibration_fit"]["scale"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", nargs="+", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    lines = ["# onnxruntime checks scored with and without pair terms", "",
             f"`python bench/ort_pairs_rescore.py --checks {' '.join(map(str, args.checks))} --out {args.out}`", "",
             "| check | prediction | τ raw | MAPE raw | fit scale | MAPE calib. | ±5% calib. | worst calib. |",
             "|---|---|---|---|---|---|---|---|"]
    for path in args.checks:
        check = json.loads(path.read_text())
        table = load_lut(check["table"])
        rows = check["networks"]
        variants = {"no pair terms": score(tables.CostTable(**{**table.__dict__, "pairs": {}}), rows)}
        with mock.patch.object(tables, "producer_groups", grouped_blocks_only):
            variants["after grouped blocks"] = score(table, rows)
        variants["after grouped blocks and stride-2 skips"] = score(table, rows)
        for name, s in variants.items():
            lines.append(f"| {path} | {name} | {s['tau']:.3f} | {s['mape_raw']:.1f}% | {s['scale']:.3f} | "
                         f"{s['mape_cal']:.2f}% | {s['within5']:.0%} | {s['max_cal']:.1f}% |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
