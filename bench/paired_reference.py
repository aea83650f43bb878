"""Does a reference network timed right beside each measurement cancel this VM's slow spells?

The checks of bench/runtime_tables.sh do not repeat within 5% (docs/LATENCY.md: the fastest two rounds of 33-83%
of the networks agree within 5%), and dividing out a whole round's speed does not help: the spells are shorter
than a round. This script times a check's networks (``spanning_genotypes`` of a table, as ``lut check`` does) in
round-robin rounds, and in every round times a fixed reference network (the released squeezenas_lat_small at
the same size, in the same runtime and threads) right before and right after each network. It then compares,
for the plain figure (the fastest call) and the paired one (the fastest call over the mean of the reference's
fastest calls before and after), how well they repeat:

- ``fastest two within 5%``: share of networks whose two best rounds agree within 5% (the check's
  ``repeatability``);
- ``halves within 5%``: share of networks whose first-half figure (best of the first R/2 rounds) and second-half
  figure agree within 5% after one common scale (two independent measurements, as a table and its check are);
- the same for one figure per half made three ways from its rounds: the fastest round, the median round, and the
  speed-normalised median that ``lut build``/``check`` use (``cost/timing/rounds.py``).

The reference turned out not to track the networks (docs/LATENCY.md); many short rounds and the
speed-normalised median did. ``--ref-s 0`` leaves the reference out.

    python bench/paired_reference.py --table bench/results/lut/runtimes_fixed/small_128x256_eager.json \\
        --rounds 8 --out bench/results/lut/paired/small_128x256_eager.json
    python bench/paired_reference.py --table bench/results/lut/runtimes_fixed/small_128x256_eager.json \\
        --rounds 32 --net-s 0.1 --ref-s 0.03 --out bench/results/lut/paired/short_128x256_eager.json

Run it on an idle machine. Writes the raw per-round times (JSON) and a summary (the same name, .md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from squeezenas.cost.lut import load_lut
from squeezenas.cost.lut.loading import table_config
from squeezenas.cost.lut.check import spanning_genotypes
from squeezenas.cost.timing import BACKENDS
from squeezenas.cost.timing.config import make_input
from squeezenas.cost.timing.rounds import combine_all
from squeezenas.cost.timing.targets import TimingTargets
from squeezenas.models.builder import build_model
from squeezenas.models.resolve import resolve_model
from squeezenas.utils.runtime import tune_cpu_allocator

REFERENCE = "squeezenas_lat_small"


def fastest_ms(call, seconds: float, warm: int = 2) -> float:
    """The fastest single call (ms) over ``seconds`` of calls, after ``warm`` untimed ones."""
    for _ in range(warm):
        call.time(1)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        best = min(best, call.time(1))
    return best * 1e3


def run(table_path: Path, samples: int, rounds: int, net_s: float, ref_s: float, seed: int) -> dict:
    table = load_lut(table_path)
    config = table_config(table).resolved()
    size = tuple(table.input_size)
    torch.set_num_threads(config.threads)
    tune_cpu_allocator()
    nets = spanning_genotypes(table, samples, seed)
    classes = table.meta.get("num_classes")
    shape = (config.batch, 3, *size)
    backend = BACKENDS.get(config.backend)
    rows = [{"index": k, "genotype": n.genotype.to_dict(), "predicted_ms": table.predict(n.genotype),
             "net_ms": [], "ref_before_ms": [], "ref_after_ms": []} for k, n in enumerate(nets)]
    with TimingTargets(config) as targets, torch.inference_mode():
        def timed(key, build):
            return backend.prepare(targets.get(key, build, shape[1:]), make_input(shape[1:], config), config,
                                   config.threads)

        ref = timed("ref", lambda: resolve_model(REFERENCE, num_classes=classes).model.eval())
        calls = [timed(str(k), lambda n=n: build_model(n.genotype, num_classes=classes).eval())
                 for k, n in enumerate(tqdm(nets, desc="prepare"))]
        start = time.time()
        for _ in tqdm(range(rounds), desc="rounds"):
            for row, call in zip(rows, calls):
                if ref_s > 0:
                    row["ref_before_ms"].append(fastest_ms(ref, ref_s))
                row["net_ms"].append(fastest_ms(call, net_s))
                if ref_s > 0:
                    row["ref_after_ms"].append(fastest_ms(ref, ref_s))
    return {"table": str(table_path), "backend": config.backend, "threads": config.threads, "size": list(size),
            "rounds": rounds, "net_s": net_s, "ref_s": ref_s, "reference": REFERENCE, "seed": seed,
            "wall_s": time.time() - start, "rows": rows}


def paired(row: dict) -> list[float]:
    """Per round: the network's fastest call over the mean of the reference's beside it."""
    return [n / ((b + a) / 2) for n, b, a in zip(row["net_ms"], row["ref_before_ms"], row["ref_after_ms"])]


def fastest_two_within(values: list[float], tol: float = 0.05) -> bool:
    a, b = sorted(values)[:2]
    return b / a - 1 <= tol


def agree_share(first: list[float], second: list[float], tol: float = 0.05) -> float:
    """Share of items whose two figures agree within ``tol`` after one common scale (their median ratio)."""
    scale = statistics.median(b / a for a, b in zip(first, second))
    return sum(abs(b / (a * scale) - 1) <= tol for a, b in zip(first, second)) / len(first)


def halves_share(series: list[list[float]], tol: float = 0.05, k: int | None = None) -> float:
    """``agree_share`` of each item's best of the first half of the rounds and best of the second; ``k``: only the
    first k rounds of each half."""
    h = len(series[0]) // 2
    k = k or h
    return agree_share([min(s[:k]) for s in series], [min(s[h:h + k]) for s in series], tol)


def estimator_shares(result: dict, tol: float = 0.05) -> dict[str, float]:
    """Share of networks whose figure from the first half of the rounds and from the second agree within ``tol``
    (one common scale), for three ways of making one figure from rounds: the fastest round, the median round, and
    the speed-normalised median (``combine_all``; each half normalised on its own, the measurements in the order
    they were taken: round after round, network after network)."""
    rows, half = result["rows"], result["rounds"] // 2
    n = len(rows)

    def figures(lo: int, hi: int) -> dict[str, list[float]]:
        measured = {str(k): [{"min_ms": v, "median_ms": v, "at": float(r * n + k)}
                             for r, v in enumerate(row["net_ms"][lo:hi], start=lo)] for k, row in enumerate(rows)}
        normalised = combine_all(measured, "min_ms")
        return {"fastest round": [min(row["net_ms"][lo:hi]) for row in rows],
                "median round": [statistics.median(row["net_ms"][lo:hi]) for row in rows],
                "speed-normalised median": [normalised[str(k)]["min_ms"] for k in range(n)]}

    first, second = figures(0, half), figures(half, 2 * half)
    return {name: agree_share(first[name], second[name], tol) for name in first}


def summarise(result: dict) -> dict:
    rows = result["rows"]
    series = {"plain": [r["net_ms"] for r in rows]}
    refs = [v for r in rows for v in r["ref_before_ms"] + r["ref_after_ms"]]
    if refs:
        series["paired"] = [paired(r) for r in rows]
    spread = lambda s: statistics.median(max(v) / min(v) - 1 for v in s)  # noqa: E731
    half = result["rounds"] // 2
    ks = sorted({k for k in (1, 2, 4, 8, 16, 32) if k < half} | {half})
    out = {name: {"fastest_two_within_5pct": sum(map(fastest_two_within, s)) / len(rows),
                  "halves_within_5pct": {k: halves_share(s, k=k) for k in ks}, "median_spread": spread(s)}
           for name, s in series.items()}
    if refs:
        out["reference_ms"] = {"min": min(refs), "median": statistics.median(refs), "max": max(refs)}
    out["estimators"] = estimator_shares(result)
    out["rounds"] = round_speeds(result)
    if refs:
        gap = lambda a, b: abs(a / b - 1)  # noqa: E731
        out["reference_gaps"] = {
            # the reference's readings right before and right after one network
            "around_a_network": statistics.median(gap(b, a) for r in rows
                                                  for b, a in zip(r["ref_before_ms"], r["ref_after_ms"])),
            # the reading after one network and the one before the next: back to back
            "back_to_back": statistics.median(gap(a, b) for r, nxt in zip(rows, rows[1:])
                                              for a, b in zip(r["ref_after_ms"], nxt["ref_before_ms"]))}
    return out


def round_speeds(result: dict) -> dict[str, list[float]]:
    """Per round: the networks' median value over their own fastest round, and the share within 3% of it."""
    rows = result["rows"]
    rel = [[v / min(r["net_ms"]) for r in rows for v in [r["net_ms"][i]]] for i in range(result["rounds"])]
    return {"median_over_fastest": [statistics.median(x) for x in rel],
            "share_within_3pct_of_fastest": [sum(v <= 1.03 for v in x) / len(x) for x in rel]}


def report(result: dict, summary: dict) -> str:
    lines = [f"# Paired reference: {Path(result['table']).name}", "",
             f"backend {result['backend']}, {result['threads']} threads, {result['size'][0]}x{result['size'][1]}, "
             f"{len(result['rows'])} networks x {result['rounds']} rounds, network {result['net_s']} s and "
             f"reference {result['ref_s']} s per reading, wall {result['wall_s'] / 60:.1f} min"]
    if "reference_ms" in summary:
        r = summary["reference_ms"]
        lines[-1] += (f"; reference {result['reference']}: {r['min']:.2f}-{r['max']:.2f} ms "
                      f"(median {r['median']:.2f})")
    ks = list(summary["plain"]["halves_within_5pct"])
    lines += ["", "Halves within 5%: the best of the first k rounds of each half of the run, after one common scale.",
              "", "| figure | fastest two rounds within 5% | median spread (max/min - 1) | "
              + " | ".join(f"halves k={k}" for k in ks) + " |", "|---|---|---|" + "---|" * len(ks)]
    for name in ("plain", "paired"):
        if name in summary:
            s = summary[name]
            lines.append(f"| {name} | {s['fastest_two_within_5pct']:.0%} | {s['median_spread']:.1%} | "
                         + " | ".join(f"{s['halves_within_5pct'][k]:.0%}" for k in ks) + " |")
    lines += ["", f"One figure from each half ({result['rounds'] // 2} rounds), share of networks whose two figures "
              "agree within 5% (one common scale):", "", "| figure from rounds | halves within 5% |", "|---|---|"]
    lines += [f"| {name} | {share:.0%} |" for name, share in summary["estimators"].items()]
    r = summary["rounds"]
    lines += ["", "Per round, the networks' median time over their own fastest round: "
              + " ".join(f"{v:.2f}" for v in r["median_over_fastest"]),
              "", "Per round, the share of networks within 3% of their fastest round: "
              + " ".join(f"{v:.0%}" for v in r["share_within_3pct_of_fastest"])]
    if "reference_gaps" in summary:
        g = summary["reference_gaps"]
        lines += ["", f"Reference readings, median gap: right before and right after one network "
                  f"{g['around_a_network']:.1%}; back to back (after one network, before the next) "
                  f"{g['back_to_back']:.1%}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--net-s", type=float, default=0.5, help="seconds of calls per network reading")
    p.add_argument("--ref-s", type=float, default=0.15, help="seconds of calls per reference reading")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--report-only", action="store_true", help="summarise an existing --out without timing")
    args = p.parse_args()
    if args.report_only:
        result = json.loads(args.out.read_text())
    else:
        result = run(args.table, args.samples, args.rounds, args.net_s, args.ref_s, args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    summary = summarise(result)
    text = report(result, summary)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
