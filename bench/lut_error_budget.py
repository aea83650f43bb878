"""Where the ±5% goal of the latency tables is lost, from check reports already on disk (no timing):

- **repeatability**: each check network is timed in several round-robin rounds; the gap between its fastest and
  second-fastest round (checks that kept the fastest round), or between the medians of its odd and of its even
  speed-normalised rounds (checks with ``round_speeds``), says how far the figure itself can move when the
  network is timed again. A network whose gap exceeds 5% cannot be predicted within ±5% reliably by any table.
- **calibration form**: held-out (leave-one-out) share within ±5% / ±10% of the fit the tool stores
  (measured ≈ overhead + scale · table sum) and of one with a MAC term (+ c · GMACs), which would stay additive
  per candidate (so the search could use it), and of one with a per-op term (+ d · the number of positions that
  are not skips: a fixed cost per block the table misses), to see whether the misses are structure or noise.

    python bench/lut_error_budget.py bench/results/lut/runtimes bench/results/lut/runtimes_1thread \
        --out bench/results/lut/error_budget.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from squeezenas.cost.lut import leave_one_out, repeatability
from squeezenas.cost.timing.rounds import normalised_rounds
from squeezenas.space.ops import parse_op


def _loo(features: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Held-out predictions of a least-squares fit measured ≈ features · c (the fit with a MAC term)."""
    out = np.empty(len(measured))
    for i in range(len(measured)):
        keep = np.arange(len(measured)) != i
        c, *_ = np.linalg.lstsq(features[keep], measured[keep], rcond=None)
        out[i] = features[i] @ c
    return out


def _within(pred: np.ndarray, measured: np.ndarray, pct: float) -> float:
    return float(np.mean(np.abs(pred - measured) / measured * 100 <= pct))


def round_gaps(rows: list[dict]) -> dict | None:
    """``repeatability`` of a check's networks as the check made its figures: the gap between the medians of the
    odd and even speed-normalised rounds (checks with ``round_speeds``), else, for checks that kept the fastest
    round, the gap between the fastest and the second-fastest round."""
    if any("round_speeds" in r for r in rows):
        return repeatability([normalised_rounds(r) for r in rows if "round_speeds" in r])
    gaps = np.array([sorted(v)[1] / min(v) - 1 for r in rows if len(v := r.get("round_values", [])) > 1]) * 100
    if not len(gaps):
        return None
    return {"median_round_gap_pct": float(np.median(gaps)), "within_5pct": float(np.mean(gaps <= 5))}


def analyse(check: dict) -> dict:
    rows = check["networks"]
    p = np.array([r["predicted_ms"] for r in rows])
    m = np.array([r["measured_ms"] for r in rows])
    g = np.array([r["gmacs"] for r in rows])
    blocks = np.array([sum(not parse_op(op).is_skip for op in r["genotype"]) for r in rows], float)
    rep = round_gaps(rows)
    affine = np.asarray(leave_one_out(list(p), list(m)))  # exactly the check's held-out figures
    with_macs = _loo(np.c_[np.ones_like(p), p, g], m)
    with_blocks = _loo(np.c_[np.ones_like(p), p, blocks], m)
    return {"networks": len(rows), "rounds": check.get("rounds"), "threads": check.get("threads"),
            "median_round_gap_pct": rep["median_round_gap_pct"] if rep else float("nan"),
            "share_round_gap_over_5pct": 1 - rep["within_5pct"] if rep else float("nan"),
            "affine_within_5": _within(affine, m, 5), "affine_within_10": _within(affine, m, 10),
            "macs_within_5": _within(with_macs, m, 5), "macs_within_10": _within(with_macs, m, 10),
            "blocks_within_5": _within(with_blocks, m, 5), "blocks_within_10": _within(with_blocks, m, 10)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="folders holding *_check.json reports")
    ap.add_argument("--out", type=Path, help="write the table here (Markdown) and the figures next to it (.json)")
    a = ap.parse_args()
    head = ["check", "threads", "rounds", "networks", "median round gap", "rounds gap > 5%",
            "±5% affine (stored fit)", "±5% + MAC term", "±5% + per-op term", "±10% affine", "±10% + MAC term",
            "±10% + per-op term"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    results = {}
    for folder in a.folders:
        for f in sorted(folder.glob("*_check.json")):
            r = analyse(json.loads(f.read_text()))
            results[str(f)] = r
            lines.append(f"| {f.parent.name}/{f.name.removesuffix('_check.json')} | {r['threads']} | {r['rounds']} | "
                         f"{r['networks']} | {r['median_round_gap_pct']:.1f}% | "
                         f"{100 * r['share_round_gap_over_5pct']:.0f}% | "
                         f"{100 * r['affine_within_5']:.0f}% | {100 * r['macs_within_5']:.0f}% | "
                         f"{100 * r['blocks_within_5']:.0f}% | {100 * r['affine_within_10']:.0f}% | "
                         f"{100 * r['macs_within_10']:.0f}% | {100 * r['blocks_within_10']:.0f}% |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
        a.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
