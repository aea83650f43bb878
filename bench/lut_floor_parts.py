"""Parts of a latency table that the adapter subtraction could not isolate (no timing): an op timed after an
adapter costs (adapter + op) − adapter, and where the pair ran no slower than the adapter alone the op is kept at
the 1 µs floor, so the table cannot tell those candidates apart and their cost is missing from every sum.

    python bench/lut_floor_parts.py bench/results/lut/runtimes bench/results/lut/runtimes_rounds6 \\
        --out bench/results/lut/runtimes_rounds6/floor_parts.md

Per table: the positions with candidates at the floor, how many, and the figures of the first of them (the pair
and the adapter alone, fastest call).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FLOOR_MS = 1.1e-3  # the build keeps a difference within the noise floor at 1 µs


def floor_parts(path: Path) -> list[dict]:
    """One row per position with candidates at the floor."""
    t = json.loads(path.read_text())
    meta, rows = t["meta"], []
    stat = "min_ms" if meta["timing"].get("statistic") == "min" else "median_ms"
    for pos, (costs, keys) in enumerate(zip(t["table"], meta["cells"])):
        floored = [j for j, (c, k) in enumerate(zip(costs, keys)) if 0 < c <= FLOOR_MS and k in meta["entries"]]
        if not floored:
            continue
        entry = meta["entries"][keys[floored[0]]]
        pair = entry.get("with_adapter", {}).get(stat)
        adapter = meta["entries"][entry["adapter"]][stat] if "adapter" in entry else None
        rows.append({"position": pos, "at_floor": len(floored), "candidates": len(costs),
                     "example": t["candidates"][floored[0]], "pair_ms": pair, "adapter_ms": adapter})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    lines = ["| table | CPU | position | candidates at the floor | e.g. | adapter + op ms | adapter alone ms |",
             "|---|---|---|---|---|---|---|"]
    for folder in a.folders:
        for path in sorted(folder.glob("small_*.json")):
            if path.stem.endswith(("_check", "_fresh")):
                continue
            cpu = json.loads(path.read_text())["meta"].get("fingerprint", {}).get("cpu_model", "")
            for r in floor_parts(path):
                fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
                lines.append(f"| {folder.name}/{path.stem} | {cpu} | {r['position']} | {r['at_floor']} of "
                             f"{r['candidates']} | {r['example']} | {fmt(r['pair_ms'])} | {fmt(r['adapter_ms'])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
