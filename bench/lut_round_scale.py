"""Would dividing out each round's speed help? From saved tables and checks (no timing): when the machine runs a
whole round-robin round a few percent slower, every item of that round moves alike; a round's speed factor is the
median over its items of (item's value in the round / the item's median over rounds). Each item's figure is then
the fastest of its rounds after dividing by their factors, for the check's networks alone and for the check and
the table's parts; the held-out calibrated share within ±5% and raw τ are compared with the plain fastest round.

    python bench/lut_round_scale.py bench/results/lut/runtimes bench/results/lut/runtimes_rounds6 \\
        bench/results/lut/runtimes_fixed --out bench/results/lut/round_scale.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lut_experiment import checked_tables
from lut_rounds import figures, table_from_rounds
from squeezenas.cost.lut.budget import measured_items
from squeezenas.cost.tables import CostTable
from squeezenas.space.genotype import Genotype


def round_factors(values: np.ndarray) -> np.ndarray:
    """Per round (column), the median over items (rows) of the item's value over its median across rounds."""
    return np.median(values / np.median(values, axis=1, keepdims=True), axis=0)


def compare(table_path: Path, check_path: Path) -> dict | None:
    table, check = CostTable.load(table_path), json.loads(check_path.read_text())
    rows = check["networks"]
    items = measured_items(table.meta["entries"])
    if any("round_values" not in r for r in rows) or any("round_values" not in v for v in items):
        return None
    if any(v.get("round_speeds") for v in [*items, *rows]):  # divided by their speeds already, as measured
        return None
    genotypes = [Genotype(table.macro, tuple(r["genotype"])) for r in rows]
    measured = np.array([r["round_values"] for r in rows])
    check_f = round_factors(measured)
    table_f = round_factors(np.array([v["round_values"] for v in items]))

    def predicted(factors: np.ndarray | None) -> list[float]:
        t = table_from_rounds(table, (lambda v: v) if factors is None else (lambda v: list(np.array(v) / factors)))
        return [t.predict(g) for g in genotypes]

    plain, scaled = measured.min(axis=1), (measured / check_f).min(axis=1)
    out = {"check_factors": check_f.round(3).tolist(), "table_factors": table_f.round(3).tolist()}
    for name, p, m in (("plain", predicted(None), plain), ("check scaled", predicted(None), scaled),
                       ("both scaled", predicted(table_f), scaled)):
        out[name] = figures(p, m)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, help="the report (Markdown), and the figures beside it (.json)")
    a = ap.parse_args()
    results = {}
    for folder in a.folders:
        for table, check in checked_tables(folder):
            if (r := compare(table, check)) is not None:
                results[f"{folder.name}/{table.stem}"] = r
    lines = ["| table | check's round factors | ±5% calib., τ raw: plain | check scaled | check and table scaled |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        cells = [f"{r[k]['within_5_calibrated']:.0%}, {r[k]['tau_raw']:.3f}"
                 for k in ("plain", "check scaled", "both scaled")]
        lines.append(f"| {name} | {' '.join(f'{f:.2f}' for f in r['check_factors'])} | " + " | ".join(cells) + " |")
    mean = {k: np.mean([r[k]["within_5_calibrated"] for r in results.values()]) for k in
            ("plain", "check scaled", "both scaled")}
    lines.append("| mean | | " + " | ".join(f"{v:.0%}" for v in mean.values()) + " |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
        a.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
