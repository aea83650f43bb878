"""Reports behind docs/LATENCY.md's tables for the deployment runtimes, from what ``bench/runtime_tables.sh`` writes.

    python bench/runtime_tables.py --dir bench/results/lut/runtimes --plots docs/img
    python bench/runtime_tables.py --dir bench/results/lut/runtimes_norm \
        --checks bench/results/lut/runtimes_norm/check_rounds32      # other checks of the same tables

writes DIR/summary.md (per table: build time, the check's figures raw and held-out calibrated, the goal) and, per
size, DIR/disagree_HxW.md with PLOTS/lut_runtimes_HxW.png (where the runtimes disagree about which candidates are
cheap), and prints them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

from lut_experiment import checked_tables, count_flips, save_figure
from squeezenas.cost.lut import IDENTITY_KEY, kendall_tau, load_lut, shifted_rows

GOAL_WITHIN_5 = 0.95  # share of check networks within ±5% (calibrated, held out)
GOAL_TAU = 0.9  # raw Kendall τ


def summary(folder: Path, checks: Path | None = None) -> str:
    """One row per table and its check: build time, the check's errors raw and held-out calibrated, the goal.
    ``checks``: a folder of other checks of ``folder``'s tables (``NAME_check.json`` for ``folder/NAME.json``)."""
    walls = {}
    if (folder / "build_wall.tsv").is_file():
        for line in (folder / "build_wall.tsv").read_text().splitlines():
            size, backend, seconds = line.split("\t")
            walls[size, backend] = int(seconds)
    head = ["table", "backend", "parts", "build s (wall)", "networks", "skip share (min–max)", "measured ms (min–max)",
            "MAPE raw", "τ raw", "±5% raw", "MAPE calib. (held out)", "±5% calib.", "±10% calib.", "τ calib.",
            "max err calib.", "fit: overhead ms, scale", "rounds repeat within 5%", "goal"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    pairs = checked_tables(folder) if checks is None else [
        (folder / c.name.replace("_check.json", ".json"), c) for c in sorted(checks.glob("*_check.json"))]
    for path, check in pairs:
        table, c = load_lut(path), json.loads(check.read_text())
        m = table.meta
        size = f"{table.input_size[0]}x{table.input_size[1]}"
        raw, cal, fit = c["raw"], c["calibrated"], c["calibration_fit"]
        measured = [r["measured_ms"] for r in c["networks"]]
        skips = [r["skip_fraction"] for r in c["networks"]]
        wall = walls.get((size, m["backend"]))
        met = cal["within_5pct"] >= GOAL_WITHIN_5 and raw["kendall_tau"] >= GOAL_TAU
        lines.append("| " + " | ".join([
            path.stem, m["backend"], str(len(m["entries"])),
            f"{m.get('build_seconds', float('nan')):.0f}" + (f" ({wall})" if wall is not None else ""),
            str(c["n"]), f"{min(skips):.2f}–{max(skips):.2f}", f"{min(measured):.2f}–{max(measured):.2f}",
            f"{raw['mape']:.1f}%", f"{raw['kendall_tau']:.3f}", f"{raw['within_5pct']:.0%}", f"{cal['mape']:.1f}%",
            f"{cal['within_5pct']:.0%}", f"{cal['within_10pct']:.0%}", f"{cal['kendall_tau']:.3f}",
            f"{cal['max_abs_pct_error']:.1f}%", f"{fit['overhead_ms']:+.2f}, {fit['scale']:.3f}",
            f"{c['repeatability']['within_5pct']:.0%}" if c.get("repeatability") else "–",
            "met" if met else "not met",
        ]) + " |")
    lines += ["", f"Goal: ≥ {GOAL_WITHIN_5:.0%} of the networks within ±5% (calibrated, each network held out of its "
                  f"own fit) and raw Kendall τ ≥ {GOAL_TAU}. Settings: every table and check with the default flags "
                  "(statistic and rounds as recorded in each table's meta.timing / meta.rounds). Rounds repeat "
                  "within 5%: the check's own repeatability, the share of its networks whose medians of the odd and of "
                  "the even speed-normalised rounds agree within 5% (checks that kept the fastest round: whose "
                  "fastest two rounds do); a ±5% share above it rests partly on luck."]
    return "\n".join(lines)


def live_candidates(table, i: int) -> list[int]:
    """Candidates that are timed at position i (not the identity skip, which costs nothing anywhere)."""
    return [j for j in range(len(table.candidates)) if table.meta["cells"][i][j] != IDENTITY_KEY]


def disagree(paths: list[Path], margin: float, plot: Path | None) -> str:
    """Where the runtimes' tables of one space and size order the candidates differently: per pair of runtimes the
    per-position Kendall τ and the pairs of candidates whose order flips (each runtime > ``margin`` apart); per
    position the cheapest candidate of each runtime."""
    tables = [load_lut(p) for p in paths if p.is_file()]
    if len(tables) < 2:
        return f"fewer than two tables among {[str(p) for p in paths]}: nothing to compare"
    first = tables[0]
    for p, t in zip(paths, tables):
        t.check_compatible(first.macro, first.input_size, where=str(p))
    names = [t.meta["backend"] for t in tables]
    cands, n_pos = first.candidates, first.macro.num_positions
    out = [f"{first.space} {first.input_size[0]}×{first.input_size[1]}, threads "
           f"{', '.join(str(t.meta['threads']) for t in tables)} ({', '.join(names)})", "",
           "| runtimes | mean τ of the candidates' order per position | lowest τ (position) | pairs flipped "
           f"(> {margin:.0%} apart in both) |", "|---|---|---|---|"]
    taus = {}
    for (a, ta), (b, tb) in itertools.combinations(zip(names, tables), 2):
        per = [kendall_tau([ta.table[i][j] for j in live_candidates(ta, i)], [tb.table[i][j] for j in live_candidates(ta, i)])
               for i in range(n_pos)]
        taus[a, b] = per
        low = min(range(n_pos), key=lambda i: per[i])
        out.append(f"| {a} vs {b} | {sum(per) / n_pos:.2f} | {per[low]:.2f} ({low}) | "
                   f"{count_flips(ta, tb, margin)} |")
    out += ["", "The cheapest candidate at each position (fixed parts: " + ", ".join(
        f"{n} {t.fixed_total:.2f} ms" for n, t in zip(names, tables)) + "):", "",
            "| position | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i in range(n_pos):
        cheapest = [cands[min(live_candidates(t, i), key=lambda j: t.table[i][j])] for t in tables]
        mark = "" if len(set(cheapest)) == 1 else " ≠"
        out.append(f"| {i}{mark} | " + " | ".join(cheapest) + " |")
    shifted = {n: rows for n, t in zip(names, tables) if (rows := shifted_rows(t))}
    if shifted:
        out += ["", "Rows shifted by the adapter context (a common offset per row: orders and differences hold, ratios "
                "do not; left out of the flipped pairs and blank in the figure): " + "; ".join(
                    f"{n} at {', '.join(map(str, rows))}" for n, rows in shifted.items()) + "."]
    if plot:
        _plot(tables, names, taus, plot)
        out.append(f"\n![candidate cost relative to the cheapest at each position, per runtime]({plot})")
    return "\n".join(out)


def _plot(tables: list, names: list[str], taus: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first = tables[0]
    n_pos, cands = first.macro.num_positions, first.candidates
    fig = plt.figure(figsize=(3.6 * len(tables), 7.5))
    grid = fig.add_gridspec(2, len(tables), height_ratios=[3, 1.2], hspace=0.35)
    top = [fig.add_subplot(grid[0, k]) for k in range(len(tables))]
    for ax, name, t in zip(top, names, tables):
        rel = np.full((len(cands), n_pos), np.nan)
        shifted = set(shifted_rows(t))
        for i in range(n_pos):
            live = live_candidates(t, i)
            low = min(t.table[i][j] for j in live)
            for j in live if i not in shifted else []:
                rel[j, i] = math.log2(t.table[i][j] / low)
            best = min(live, key=lambda j: t.table[i][j])
            ax.plot(i, best, "o", color="white", markersize=3)
        im = ax.imshow(rel, cmap="viridis", vmin=0, vmax=3, aspect="auto")
        ax.set_title(f"{name} (fixed {t.fixed_total:.2f} ms)", fontsize=9)
        ax.set_xlabel("position", fontsize=8)
        ax.set_yticks(range(len(cands)), cands if ax is top[0] else [""] * len(cands), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    fig.colorbar(im, ax=top, shrink=0.8, label="log2(cost / cheapest at the position); dot: cheapest")
    base = names[0]
    ax = fig.add_subplot(grid[1, :])
    for (a, b), per in taus.items():
        if a == base:
            ax.plot(range(n_pos), per, marker=".", label=f"{b} vs {a}")
    ax.set_ylim(-1, 1.05)
    ax.set_xlabel("position", fontsize=8)
    ax.set_ylabel("Kendall τ", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(f"agreement with {base} on the order of the candidates at each position", fontsize=9)
    fig.suptitle(f"{first.space} {first.input_size[0]}×{first.input_size[1]}: which candidates are cheap, per runtime",
                 fontsize=10)
    save_figure(fig, path)


ORDER = ("eager", "onnxruntime", "openvino", "executorch")  # the reference (eager) first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("bench/results/lut/runtimes"))
    ap.add_argument("--plots", type=Path, default=Path("docs/img"))
    ap.add_argument("--margin", type=float, default=0.10, help="a flipped pair: each runtime this much apart")
    ap.add_argument("--checks", type=Path, help="only the summary, of the checks in this folder (other checks of "
                                                "--dir's tables), written there")
    args = ap.parse_args()
    if args.checks:
        report = summary(args.dir, args.checks)
        (args.checks / "summary.md").write_text(report + "\n")
        print(report)
        return
    report = summary(args.dir)
    (args.dir / "summary.md").write_text(report + "\n")
    print(report)
    groups: dict[str, list[Path]] = {}  # "SPACE_HxW" → its tables
    for path in sorted(args.dir.glob("*.json")):
        stem, _, backend = path.stem.rpartition("_")
        if backend in ORDER:
            groups.setdefault(stem, []).append(path)
    for stem, paths in groups.items():
        paths.sort(key=lambda p: ORDER.index(p.stem.rpartition("_")[2]))
        size = stem.rpartition("_")[2]
        report = disagree(paths, args.margin, args.plots / f"lut_runtimes_{size}.png")
        (args.dir / f"disagree_{size}.md").write_text(report + "\n")
        print(f"\n{report}")


if __name__ == "__main__":
    main()
