"""Is a table's remaining error the table's, or the run's? From checks already on disk (no timing).

Two checks of one table with the same seed and size time the same networks, in separate processes, often
hours apart. Each network's held-out calibrated error is e = the table's error (the same in both runs: the sum
of parts' own error and the table's own measurement noise) + the run's error (what that run's measurement of
that network was off by: round-to-round noise, and whatever held for the whole process: an export, a session's
memory, the machine's state). So, over the networks (24 in a check: the figures are rough),

- cov(e_a, e_b) is the variance of the shared part: an upper bound on what a better predictor could remove
  (less the table's own noise, ``error_budget``'s ``table_sd_pct``);
- the rest of each check's variance is its run's: no predictor of the network can remove it, and it bounds the
  share within ±5% that any table can reach on that machine;
- ``moved``: the SD of e_a − e_b, how far a network's figure moves between the runs, each run's own calibration
  (speed and overhead) removed: √2 × the runs' part.

    python bench/lut_repeat.py bench/results/lut --out bench/results/lut/repeat.md
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from squeezenas.cost.lut.budget import error_budget
from squeezenas.cost.tables import CostTable


def same_networks(root: Path) -> dict[tuple, list[tuple[Path, dict]]]:
    """Check reports under ``root`` grouped by (table file name, the networks' genotypes); groups of two or more."""
    groups: dict[tuple, list[tuple[Path, dict]]] = defaultdict(list)
    for path in sorted(root.rglob("*check*.json")):
        try:
            check = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(check, dict) or "networks" not in check or "table" not in check:
            continue
        if not all("calibrated_error_pct" in r for r in check["networks"]):
            continue
        table = Path(check["table"]).parent.name + "/" + Path(check["table"]).name
        groups[(table, tuple(tuple(r["genotype"]) for r in check["networks"]))].append((path, check))
    return {k: v for k, v in groups.items() if len(v) > 1}


def round_noise(check: dict, root: Path) -> float | None:
    """The check's own round-to-round noise (SD, %; its error budget), None without speed-normalised rounds or
    when its table is not found (as written in the report, or by its folder and name under ``root``)."""
    written = Path(check["table"])
    for path in (written, root / written.parent.name / written.name):
        if path.is_file():
            budget = error_budget(CostTable.load(path), check["networks"])
            return None if budget is None else budget["check_sd_pct"]
    return None


def split(a: dict, b: dict, root: Path) -> dict:
    """The two runs' held-out errors split into the table's part and each run's."""
    ea = np.array([r["calibrated_error_pct"] for r in a["networks"]])
    eb = np.array([r["calibrated_error_pct"] for r in b["networks"]])
    cov = float(np.mean((ea - ea.mean()) * (eb - eb.mean())))
    var = float((np.var(ea) + np.var(eb)) / 2)
    return {"n": len(ea), "rms_a": float(np.sqrt(np.mean(ea ** 2))), "rms_b": float(np.sqrt(np.mean(eb ** 2))),
            "correlation": float(np.corrcoef(ea, eb)[0, 1]),
            "shared_sd_pct": math.sqrt(max(cov, 0.0)), "run_sd_pct": math.sqrt(max(var - cov, 0.0)),
            "moved_sd_pct": float(np.std(ea - eb)),
            "within_5pct_a": float(np.mean(np.abs(ea) <= 5)), "within_5pct_b": float(np.mean(np.abs(eb) <= 5)),
            "round_noise_pct": [round_noise(a, root), round_noise(b, root)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="folder searched for check reports (recursively)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = ["| table | check a | check b | networks | ±5% a / b | RMS error a / b | correlation of the errors | "
             "shared part (SD) | the runs' part (SD) | of which round noise a / b | figures moved (SD) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    report = []
    for (table, _), checks in same_networks(args.root).items():
        for i in range(len(checks)):
            for j in range(i + 1, len(checks)):
                (pa, a), (pb, b) = checks[i], checks[j]
                s = split(a, b, args.root)
                s.update(table=table, a=str(pa.relative_to(args.root)), b=str(pb.relative_to(args.root)))
                report.append(s)
                noise = " / ".join("–" if v is None else f"{v:.2f}%" for v in s["round_noise_pct"])
                lines.append(f"| {table} | {s['a']} | {s['b']} | {s['n']} | {s['within_5pct_a']:.0%} / "
                             f"{s['within_5pct_b']:.0%} | {s['rms_a']:.2f}% / {s['rms_b']:.2f}% | "
                             f"{s['correlation']:+.2f} | {s['shared_sd_pct']:.2f}% | {s['run_sd_pct']:.2f}% | "
                             f"{noise} | {s['moved_sd_pct']:.2f}% |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
