"""Reports behind docs/LATENCY.md, from the files ``bench/lut_experiment.sh`` writes.

    python bench/lut_experiment.py summary --dir bench/results/lut       # build times, check errors
    python bench/lut_experiment.py compare --eager A.json --ort B.json \
        --positions 0 4 8 12 16 --plot docs/img/lut_ort_vs_eager.png      # where the backends disagree
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

from squeezenas.cost.lut import IDENTITY_KEY, kendall_tau, load_lut, shifted_rows


def checked_tables(folder: Path) -> list[tuple[Path, Path]]:
    """(table, its check) for every ``NAME_check.json`` in ``folder`` with the table ``NAME.json`` beside it, or
    else the table its "table" field names (a check made again in a folder of its own)."""
    pairs = []
    for check in sorted(folder.glob("*_check.json")):
        table = check.with_name(check.name.removesuffix("_check.json") + ".json")
        if not table.is_file():
            table = Path(json.loads(check.read_text()).get("table") or table)
        pairs.append((table, check))
    return [(table, check) for table, check in pairs if table.is_file()]


def summary(folder: Path) -> str:
    """One row per table: parts, build time, check errors (raw, held-out calibrated, fresh sample)."""
    head = ["table", "parts timed", "build s", "networks", "measured ms (min–max)", "MAPE raw", "τ raw",
            "MAPE calib. (LOO)", "max err calib.", "τ calib.", "fresh sample: MAPE stored calib.", "τ fresh",
            "τ by MACs", "fit: overhead ms, scale", "load avg: build, check, fresh (start/end)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, check in checked_tables(folder):
        fresh = path.with_name(path.stem + "_fresh.json")
        table = load_lut(path)
        c = json.loads(check.read_text())
        f = json.loads(fresh.read_text()) if fresh.is_file() else None
        measured = [r["measured_ms"] for r in c["networks"]]
        fit = c["calibration_fit"]
        s = (f or {}).get("stored_calibration") or {}
        lines.append("| " + " | ".join([
            path.stem, str(len(table.meta["entries"])), f"{table.meta.get('build_seconds', float('nan')):.0f}",
            str(c["n"]), f"{min(measured):.1f}–{max(measured):.1f}", f"{c['raw']['mape']:.1f}%",
            f"{c['raw']['kendall_tau']:.3f}", f"{c['calibrated']['mape']:.1f}%",
            f"{c['calibrated']['max_abs_pct_error']:.1f}%", f"{c['calibrated']['kendall_tau']:.3f}",
            f"{s['mape']:.1f}% (n={f['n']})" if s else "–", f"{f['kendall_tau']:.3f}" if f else "–",
            f"{c.get('kendall_tau_macs', float('nan')):.3f}", f"{fit['overhead_ms']:+.2f}, {fit['scale']:.3f}",
            ", ".join(_load(x) for x in (table.meta.get("load_average"), c.get("load_average"),
                                         (f or {}).get("load_average"))),
        ]) + " |")
    return "\n".join(lines)


def _load(d: dict | None) -> str:
    """'start/end' 1-minute load averages of a step, '–' when not recorded."""
    if not d or not d.get("start") or not d.get("end"):
        return "–"
    return f"{d['start'][0]:.1f}/{d['end'][0]:.1f}"


def compare(eager_path: Path, ort_path: Path, positions: list[int], margin: float, plot: Path | None,
            top: int = 6) -> str:
    """Per-candidate latency under both backends at a few positions, the ratio ORT/eager, each backend's rank,
    and the candidate pairs whose order flips (each backend separating them by more than ``margin``)."""
    eager, ort = load_lut(eager_path), load_lut(ort_path)
    eager.check_compatible(ort.macro, ort.input_size, where=str(eager_path))
    cands = eager.candidates
    out = [f"Small {eager.input_size[0]}×{eager.input_size[1]}, {eager.meta['threads']} threads: "
           f"fixed parts eager {eager.fixed_total:.2f} ms, ORT {ort.fixed_total:.2f} ms "
           f"({', '.join(f'{k} {eager.fixed[k]:.2f}/{ort.fixed[k]:.2f}' for k in eager.fixed)})", ""]
    macro_pos = eager.macro.positions()
    sizes = eager.macro.input_sizes(*eager.input_size)
    for i in positions:
        p, (h, w) = macro_pos[i], sizes[i]
        e_row, o_row = eager.table[i], ort.table[i]
        live = [j for j in range(len(cands)) if eager.meta["cells"][i][j] != IDENTITY_KEY]
        rank_e = {j: r for r, j in enumerate(sorted(live, key=lambda j: e_row[j]), 1)}
        rank_o = {j: r for r, j in enumerate(sorted(live, key=lambda j: o_row[j]), 1)}
        tau = kendall_tau([e_row[j] for j in live], [o_row[j] for j in live])
        out += [f"**Position {i}** ({p.c_in}→{p.c_out}, stride {p.stride}, input {h}×{w}); Kendall τ between the "
                f"backends' orders: {tau:.2f}", "",
                "| candidate | eager ms | ORT ms | ORT/eager | rank eager | rank ORT |", "|---|---|---|---|---|---|"]
        for j in live:
            out.append(f"| {cands[j]} | {e_row[j]:.3f} | {o_row[j]:.3f} | {o_row[j] / e_row[j]:.2f} | "
                       f"{rank_e[j]} | {rank_o[j]} |")
        flips = []
        for a, b in itertools.combinations(live, 2):
            de, do = e_row[a] / e_row[b], o_row[a] / o_row[b]
            if (de < 1 - margin and do > 1 + margin) or (de > 1 + margin and do < 1 - margin):
                a, b = (a, b) if de < 1 else (b, a)  # a: cheaper in eager
                sep_e, sep_o = e_row[b] / e_row[a], o_row[a] / o_row[b]
                flips.append((min(sep_e, sep_o), f"eager: {cands[a]} {sep_e:.2f}x cheaper than {cands[b]}; "
                                                 f"ORT: {cands[b]} {sep_o:.2f}x cheaper than {cands[a]}"))
        flips.sort(reverse=True)
        out += ["", f"{len(flips)} pairs flip order (each backend > {margin:.0%} apart)"
                + (f"; the {min(len(flips), top)} clearest:" if flips else ""), *[f"- {f}" for _, f in flips[:top]], ""]
    all_flips = count_flips(eager, ort, margin)
    out.append(f"Over all {eager.macro.num_positions} positions: {all_flips} candidate pairs flip order "
               f"(> {margin:.0%} apart in both backends).")
    if plot:
        _plot(eager, ort, plot)
        out.append(f"\n![ORT/eager latency ratio per position and candidate]({plot})")
    return "\n".join(out)


def count_flips(eager, ort, margin: float) -> int:
    """Candidate pairs, over all positions, whose order the two tables reverse, each by more than ``margin``.

    Positions whose row either table shifted (``shifted_rows``: an unknown offset, so no ratios) are left out."""
    skip = set(shifted_rows(eager)) | set(shifted_rows(ort))
    n = 0
    for i, (e_row, o_row) in enumerate(zip(eager.table, ort.table)):
        if i in skip:
            continue
        live = [j for j in range(len(e_row)) if eager.meta["cells"][i][j] != IDENTITY_KEY]
        for a, b in itertools.combinations(live, 2):
            de, do = e_row[a] / e_row[b], o_row[a] / o_row[b]
            n += (de < 1 - margin and do > 1 + margin) or (de > 1 + margin and do < 1 - margin)
    return n


def _plot(eager, ort, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ratio = np.full((len(eager.table), len(eager.candidates)), np.nan)
    skip = set(shifted_rows(eager)) | set(shifted_rows(ort))  # no ratios there (blank)
    for i, (e_row, o_row) in enumerate(zip(eager.table, ort.table)):
        for j, (e, o) in enumerate(zip(e_row, o_row)):
            if e > 0 and o > 0 and i not in skip:
                ratio[i, j] = math.log2(o / e)
    lim = np.nanmax(np.abs(ratio))
    fig, ax = plt.subplots(figsize=(9, 6))
    im = ax.imshow(ratio.T, cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(len(eager.candidates)), eager.candidates, fontsize=8)
    ax.set_xticks(range(len(eager.table)))
    ax.set_xlabel("position")
    ax.set_title(f"log2(ORT / eager) latency, Small {eager.input_size[0]}×{eager.input_size[1]}, "
                 f"{eager.meta['threads']} threads (blue: ORT relatively faster)", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a figure (its folder made first) and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--dir", type=Path, default=Path("bench/results/lut"))
    c = sub.add_parser("compare")
    c.add_argument("--eager", type=Path, required=True)
    c.add_argument("--ort", type=Path, required=True)
    c.add_argument("--positions", type=int, nargs="+", default=[0, 4, 8, 12, 16])
    c.add_argument("--margin", type=float, default=0.10)
    c.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    if args.cmd == "summary":
        print(summary(args.dir))
    else:
        print(compare(args.eager, args.ort, args.positions, args.margin, args.plot))


if __name__ == "__main__":
    main()
