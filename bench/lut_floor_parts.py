"""Where the adapter subtraction of a latency table went below 1 µs (no timing): an op timed after an adapter
costs (adapter + op) − adapter, and where the pair ran no slower than the adapter alone that difference is at or
below zero. Tables built before ``place_in_context`` kept each such op at 1 µs, so their cost was missing from
every sum; today's build shifts the row and keeps the shift as the fixed cost ``adapter_context``.

    python bench/lut_floor_parts.py bench/results/lut/runtimes bench/results/lut/runtimes_rounds6 \\
        --out bench/results/lut/runtimes_rounds6/floor_parts.md

Per table: the positions with candidates at the floor, how many, and the figures of the first of them (the pair
and the adapter alone, fastest call).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from squeezenas.cost.timing.config import stat_key


def floor_parts(path: Path) -> list[dict]:
    """One row per position with candidates at the floor."""
    t = json.loads(path.read_text())
    meta, rows = t["meta"], []
    stat = stat_key(meta["timing"]["statistic"])
    for pos, (costs, keys) in enumerate(zip(t["table"], meta["cells"])):
        floored = [j for j, k in enumerate(keys) if meta["entries"].get(k, {}).get("below_resolution")]
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
