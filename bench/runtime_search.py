"""Does the runtime that measured the table change the network the search picks? For each deployment runtime's
latency table of this CPU (bench/runtime_tables.sh, Small at 360×480, 11 classes), search CamVid for a network as
fast as the released squeezenas_lat_small in that runtime, select it (second look: finalists timed end to end in
that runtime), then time every chosen network and lat_small in every runtime. Every step resumes.

    python bench/runtime_search.py --tables bench/results/lut/runtimes --out runs/runtime_search
    → bench/results/runtime_search/summary.json, summary.md   (and runs/runtime_search/<backend>/: table, search)

Tables from several folders (each backend's from the first that holds one), each with the check made of it:

    python bench/runtime_search.py --tables bench/results/lut/runtimes_layout bench/results/lut/runtimes_norm \
        --checks bench/results/lut/runtimes_norm/check_rounds32 --rounds 8 --keep median \
        --out runs/runtime_search_now --results bench/results/runtime_search_now

The search flags are the defaults (docs/SEARCH.md) except --supernet path (6x the mixture's throughput on this CPU,
bench/results/supernet/) and the short schedule of --epochs; the table of each run is a copy of the committed one
with the calibration of its committed check stored (``squeezenas lut calibrate``), so targets and budgets are in
measured milliseconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squeezenas.cost.benchmark import benchmark  # noqa: E402
from squeezenas.cost.lut import calibrate_lut_file, load_lut, table_config  # noqa: E402
from squeezenas.models import build_model  # noqa: E402
from squeezenas.models.zoo import get_model_entry  # noqa: E402
from squeezenas.search import SampleConfig, SearchConfig, run_search, sample_and_select  # noqa: E402
from squeezenas.space.genotype import Genotype  # noqa: E402
from squeezenas.utils.io import atomic_write_json  # noqa: E402

REFERENCE = "squeezenas_lat_small"
KEEP = {"min": min, "median": statistics.median}  # how the cross-runtime timings combine their rounds


def reference_genotype(table) -> Genotype:
    return Genotype(table.macro, get_model_entry(REFERENCE).genotype.ops)


def table_and_check(stem: str, args: argparse.Namespace) -> tuple[Path, Path]:
    """The table ``stem``.json of the first folder of ``--tables`` holding one, and its check: the first in
    ``--checks`` whose "table" field names that very file, else the one beside the table (the pair
    bench/runtime_tables.sh writes, whatever checkout it named its table from)."""
    tables = [Path(d) / f"{stem}.json" for d in args.tables]
    table = next((t for t in tables if t.is_file()), None)
    if table is None:
        raise SystemExit(f"no {stem}.json in {' or '.join(args.tables)}")
    for folder in map(Path, args.checks):
        check = folder / f"{stem}_check.json"
        named = check.is_file() and json.loads(check.read_text()).get("table")
        if named and Path(named).resolve() == table.resolve():
            return table, check
    beside = table.with_name(f"{stem}_check.json")
    if beside.is_file():
        return table, beside
    raise SystemExit(f"no check of {table} in {' or '.join([*args.checks, str(table.parent)])}")


def search_one(backend: str, args: argparse.Namespace) -> dict:
    """Table copy + calibration, search, sample with the second look; returns the chosen network's record."""
    root = Path(args.out) / backend
    root.mkdir(parents=True, exist_ok=True)
    stem = f"small_{args.size[0]}x{args.size[1]}_{backend}"
    lut = root / "lut.json"
    if not lut.is_file():  # calibrated before it takes its name: a copy left uncalibrated would pass for done
        source, check = table_and_check(stem, args)
        tmp = root / "lut.tmp.json"
        shutil.copyfile(source, tmp)
        calibrate_lut_file(tmp, check)
        os.replace(tmp, lut)
        atomic_write_json(root / "source.json", {"table": str(source), "check": str(check)})
    table = load_lut(lut)
    target = table.predict(reference_genotype(table), calibrated=True)
    search = root / "search"
    scfg = SearchConfig(space="small", dataset="camvid", data_root=args.data_root, cost="latency", lut=str(lut),
                        target=target, supernet="path", epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                        crop=tuple(args.crop),
                        batch_size=args.batch_size, workers=args.workers, device="cpu", seed=args.seed,
                        progress=False, out=str(search))
    if not (search / "result.json").is_file():
        run_search(scfg, table, resume=(search / "checkpoint.pt").is_file())
    refused = root / "no_choice.json"
    if not (search / "pareto.json").is_file() and not refused.is_file():
        try:
            sample_and_select(SampleConfig(search=str(search), n=args.n, val_limit=args.val_limit,
                                           val_size=tuple(args.val_size), budget=target, finalists=args.finalists,
                                           device="cpu", workers=args.workers, seed=args.seed, progress=False))
        except ValueError as e:  # no sample within the budget: recorded, so that a rerun goes on to the next
            atomic_write_json(refused, {"error": str(e)})
    pareto = None if refused.is_file() else json.loads((search / "pareto.json").read_text())
    chosen = pareto and pareto.get("chosen")
    second_look = None  # the finalists' first and second scores, predicted and measured latency
    if pareto and pareto.get("second_look"):
        second_look = {**pareto["second_look"], "finalists": [
            {k: pareto["samples"][i].get(k) for k in ("genotype", "miou", "miou_rescored", "latency_ms", "measured_ms")}
            for i in pareto["second_look"]["finalists"]]}
    print(f"[{backend}] target {target:.2f} ms; chosen: "
          + (f"score {chosen['miou']:.3f}, predicted {chosen['latency_ms']:.2f} ms, measured "
             f"{chosen.get('measured_ms', float('nan')):.2f} ms" if chosen else "none within the budget"), flush=True)
    return {"backend": backend, "target_ms": target, "calibration": table.calibration, "chosen": chosen,
            "second_look": second_look,
            **(_search_log(search) or {})}


def _search_log(search: Path) -> dict[str, float] | None:
    """From the search's log.csv: θ's entropy after the last epoch (uniform: ln 13) and the seconds of its steps."""
    log = search / "log.csv"
    if not log.is_file():
        return None
    rows = list(csv.DictReader(log.open()))
    return {"theta_entropy": float(rows[-1]["entropy"]), "search_seconds": sum(float(r["seconds"]) for r in rows)}


def cross_runtime(runs: list[dict], args: argparse.Namespace) -> dict:
    """Every chosen network and the reference timed end to end in every runtime, each with that runtime's table
    settings, in ``args.rounds`` round-robin rounds (combined as ``args.keep`` says); cached in
    OUT/cross.json so a rerun times only what is missing."""
    cache_path = Path(args.out) / "cross.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    tables = {r["backend"]: load_lut(Path(args.out) / r["backend"] / "lut.json") for r in runs}
    networks = {f"searched_{r['backend']}": r["chosen"]["genotype"] for r in runs if r["chosen"]}
    any_table = next(iter(tables.values()))
    networks[REFERENCE] = list(reference_genotype(any_table).ops)
    for name, ops in networks.items():
        for backend, table in tables.items():
            key = f"{name}@{backend}"
            c = cache.get(key, {})
            if "round_values" not in c and "measured_ms" in c:  # a cache of one round per cell
                c["round_values"] = [c["measured_ms"]]
            if c.get("genotype") != ops or c.get("calibration") != table.calibration or "round_values" not in c:
                cache[key] = {"genotype": ops, "calibration": table.calibration, "round_values": [],
                              "predicted_ms": table.predict(Genotype(table.macro, tuple(ops)), calibrated=True)}
    for round_ in range(args.rounds):  # round-robin: a slow spell of the machine spoils one round of a cell
        for name, ops in networks.items():
            for backend, table in tables.items():
                cell = cache[f"{name}@{backend}"]
                if len(cell["round_values"]) > round_:
                    continue
                config = table_config(table)
                net = build_model(Genotype(table.macro, tuple(ops)), num_classes=int(table.meta["num_classes"]))
                cell["round_values"].append(benchmark(net, tuple(table.input_size), config,
                                                      memory=False)[f"{config.statistic}_ms"])
                cell["measured_ms"] = KEEP[args.keep](cell["round_values"])
                atomic_write_json(cache_path, cache)
                print(f"  round {round_ + 1}: {name} in {backend}: {cell['round_values'][-1]:.2f} ms "
                      f"(table {cell['predicted_ms']:.2f})", flush=True)
    return {"networks": networks, "cells": cache, "rounds": args.rounds}


def write_markdown(summary: dict, path: Path) -> None:
    backends = [r["backend"] for r in summary["runs"]]
    cells = summary["cross"]["cells"]
    keep = {"min": "fastest", "median": "median"}[summary["settings"].get("keep", "min")]
    lines = ["# The network searched under each runtime's table, timed in every runtime", "",
             f"CamVid, Small at {summary['size'][0]}×{summary['size'][1]}, 11 classes, this CPU "
             f"(threads as each table: {summary['threads']}); target = {REFERENCE}'s calibrated latency in that "
             f"runtime's table. Measured end to end, the {keep} of {summary['cross']['rounds']} round-robin rounds "
             "(ms); in brackets the table's calibrated prediction; * above that runtime's target.", "",
             "| network | " + " | ".join(backends) + " | supernet score | genotype |",
             "|---|" + "---|" * (len(backends) + 2)]
    scores = {f"searched_{r['backend']}": r["chosen"] for r in summary["runs"] if r["chosen"]}
    targets = {r["backend"]: r["target_ms"] for r in summary["runs"]}
    for name, ops in summary["cross"]["networks"].items():
        row = []
        for b in backends:
            c = cells.get(f"{name}@{b}")
            over = c is not None and c["measured_ms"] > targets[b]
            row.append("–" if c is None else f"{c['measured_ms']:.2f}{'*' if over else ''} ({c['predicted_ms']:.2f})")
        chosen = scores.get(name)
        score = "" if chosen is None else f"{chosen.get('miou_rescored', chosen['miou']):.3f}"
        lines.append(f"| {name} | " + " | ".join(row) + f" | {score} | `{' '.join(ops)}` |")
    lines += ["", "Targets (ms): " + ", ".join(f"{r['backend']} {r['target_ms']:.2f}" for r in summary["runs"]), "",
              "Command: `" + summary["command"] + "`", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", nargs="+", default=["bench/results/lut/runtimes"],
                   help="folders of bench/runtime_tables.sh; each backend's table from the first that holds one")
    p.add_argument("--checks", nargs="+", default=[],
                   help="folders searched first for the check of each table (then the table's own folder)")
    p.add_argument("--backends", nargs="+", default=["eager", "onnxruntime", "openvino", "executorch"])
    p.add_argument("--size", type=int, nargs=2, default=(360, 480), help="the tables' (deployment) size")
    p.add_argument("--data-root", default="../shared/data/camvid")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap an epoch's steps (smoke runs)")
    p.add_argument("--crop", type=int, nargs=2, default=(176, 240))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n", type=int, default=48, help="architectures sampled and scored")
    p.add_argument("--val-limit", type=int, default=24, help="validation images (evenly strided) per score")
    p.add_argument("--val-size", type=int, nargs=2, default=(180, 240), help="input size of the path scores")
    p.add_argument("--finalists", type=int, default=3, help="second look: re-scored and timed in the runtime")
    p.add_argument("--rounds", type=int, default=3, help="round-robin rounds of the cross-runtime timings")
    p.add_argument("--keep", choices=sorted(KEEP), default="min",
                   help="a cross-runtime timing's figure: the fastest of its rounds or their median")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/runtime_search")
    p.add_argument("--results", default="bench/results/runtime_search")
    args = p.parse_args()
    runs = [search_one(b, args) for b in args.backends]
    cross = cross_runtime(runs, args)
    threads = sorted({load_lut(Path(args.out) / b / "lut.json").meta["threads"] for b in args.backends})
    summary = {"size": list(args.size), "threads": threads, "runs": runs, "cross": cross,
               "settings": {k: v for k, v in vars(args).items()},
               "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv])}
    out = Path(args.results)
    atomic_write_json(out / "summary.json", summary)
    write_markdown(summary, out / "summary.md")
    print(f"wrote {out / 'summary.json'} and summary.md")


if __name__ == "__main__":
    main()
