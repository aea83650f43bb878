"""Does the supernet's ranking hold after retraining? Search with one configuration, sample the learned
distribution, take K architectures spread over the front and the sampled cloud, retrain each with one short
recipe, and compare the supernet's path scores with the retrained validation and test mIoU (Kendall τ,
Spearman ρ). The picks are also scored again on the whole scoring split (val; for ``new_path_drive`` the held-out
drive), what the second look of the selection does (``score_full_val``), and the retrained networks' val and test
mIoU are ranked against each other: the agreement that any score can at best reach with so short a retraining;
the measured latency is ranked against them too (``kendall_tau_measured_ms_*``): the bar a supernet score must
clear, since bigger networks tend to learn more whatever the search. Every step resumes: an interrupted run
continues where it stopped.

    python bench/ranking_fidelity.py --configuration new_path --dataset camvid --data-root ../shared/data/camvid \\
        --lut runs/ranking/lut.json --out runs/ranking --k 10
    → bench/results/ranking/new_path.json   (and runs/ranking/new_path/: the search, the K trainings)

    python bench/ranking_fidelity.py --configuration new_path --picks-from bench/results/ranking/new_path.json \
        --recipe v2 --train-epochs 40 --seeds 0 1
    → bench/results/ranking/new_path_v2_s0-1.json: the same picks retrained with a better recipe; each finished
      retraining is also kept in new_path_v2_sSEED.progress.json (commit it: a later session or clone goes on);
      ``kendall_tau_{val,test}_vs_picks_from``: how far the two ground truths rank the picks alike.
      Seeds side by side, one thread each, then the combined report (nothing retrained):
        for s in 0 1; do OMP_NUM_THREADS=1 python bench/ranking_fidelity.py ... --seeds $s & done; wait
        python bench/ranking_fidelity.py ... --seeds 0 1
      or one seed in two lanes, each retraining other picks (``--picks``, disjoint: progress only, no report;
      each entry records the command that retrained it):
        OMP_NUM_THREADS=1 python bench/ranking_fidelity.py ... --seeds 0 --picks 5 6 7 &
        OMP_NUM_THREADS=1 python bench/ranking_fidelity.py ... --seeds 0 --picks 8 9 & wait

Configurations (``CONFIGURATIONS``): the search flags of the old defaults (the paper's formulation) and of the
new ones, each with the mixture and the discrete-path supernet; ``new_path_drive`` keeps CamVid's training drive
0006R0 out of the search and scores the samples on it (``SCORING_SPLIT``) instead of on val.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squeezenas.cli.options import parse_data_options  # noqa: E402
from squeezenas.cost.lut import kendall_tau, load_lut, spearman, table_config  # noqa: E402
from squeezenas.cost.tables import CostTable  # noqa: E402
from squeezenas.engine.config import EvalConfig, TrainConfig  # noqa: E402
from squeezenas.engine.evaluate import evaluate_checkpoint  # noqa: E402
from squeezenas.engine.train import train  # noqa: E402
from squeezenas.search import SampleConfig, SearchConfig, path_scorer, run_search, sample_and_select  # noqa: E402
from squeezenas.space.genotype import Genotype, load_genotype  # noqa: E402
from squeezenas.utils.io import atomic_write_json, update_json_locked  # noqa: E402

PAPER = {"warmup_epochs": 0, "cost_ramp": 0.0, "theta": "joint", "cost_through": "softmax"}
CONFIGURATIONS = {  # name → (search fields, whether they are the defaults)
    "old_mixture": ({**PAPER, "supernet": "mixture"}, False),
    "old_path": ({**PAPER, "supernet": "path"}, False),
    "new_mixture": ({"supernet": "mixture"}, True),
    "new_path": ({"supernet": "path"}, True),
    "new_path_alternate": ({"supernet": "path", "alternate": True}, False),  # θ on a held-out 20% of train
    # one training drive (0006R0, 101 of CamVid's 367 training frames) kept out of the search and scored on: val
    # is a drive the search trains on, test mostly one no split holds (docs/SEARCH.md)
    "new_path_drive": ({"supernet": "path", "train_split": "train:without=0006R0*"}, False),
}
SCORING_SPLIT = {"new_path_drive": "train:only=0006R0*"}  # where the sample step scores (default: val)


def spread(samples: list[dict], k: int) -> list[int]:
    """K samples spread over the scores: every front point (up to K/2, spread over its cost range) and the rest at
    evenly spaced quantiles of the whole cloud's score."""
    front = sorted((i for i, s in enumerate(samples) if s["on_front"]), key=lambda i: samples[i]["latency_ms"])
    take = [front[round(j * (len(front) - 1) / max(1, k // 2 - 1))] for j in range(min(k // 2, len(front)))]
    take = list(dict.fromkeys(take))
    rest = sorted((i for i in range(len(samples)) if i not in take), key=lambda i: samples[i]["miou"])
    need = k - len(take)
    take += [rest[round(j * (len(rest) - 1) / max(1, need - 1))] for j in range(need)] if need > 0 and rest else []
    return list(dict.fromkeys(take))


# The retraining recipes of the ground truth: "short" (plain cross-entropy, the first runs) and "v2" (that of
# bench/camvid_recipe.sh: median-frequency class weights, colour jitter, weight decay 1e-4). Both score last.pt:
# choosing an epoch on val would bias the val-vs-test agreement the report measures.
RECIPES = {"short": {}, "v2": {"class_weights": "auto", "color_jitter": 0.4, "weight_decay": 1e-4}}


def retrain(folder: Path, data: dict, args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Train the pick in ``folder`` from scratch with the ground-truth recipe and seed (resuming), score last.pt
    on val and test; the first recipe and seed keep the folder names of the first runs (train/, val.json)."""
    tag = "" if (args.recipe, seed) == ("short", args.seed) else f"_{args.recipe}_s{seed}"
    run_dir = folder / f"train{tag}"
    tcfg = TrainConfig(model=str(folder / "genotype.json"), **data, out=str(run_dir), epochs=args.train_epochs,
                       batch_size=args.batch_size, crop=tuple(args.crop), schedule="poly", workers=args.workers,
                       device="cpu", seed=seed, progress=False, tensorboard=False, val_every=args.train_epochs,
                       resume=(run_dir / "last.pt").is_file(), **RECIPES[args.recipe])
    train(tcfg)
    scores = {}
    for split in ("val", "test"):
        path = folder / f"{split}{tag}.json"
        if not path.is_file():
            evaluate_checkpoint(EvalConfig(checkpoint=str(run_dir / "last.pt"), split=split, size=tuple(args.size),
                                           workers=args.workers, device="cpu", report=str(path), progress=False))
        scores[split] = json.loads(path.read_text())["miou"]
    return scores


def expected_range(k: int) -> float:
    """The expected range (max − min) of ``k`` independent standard normal draws (3.08 for 10), by a fixed-seed
    Monte Carlo accurate to about 0.005."""
    return float(np.ptp(np.random.default_rng(0).standard_normal((200_000, k)), axis=1).mean())


def ground_truth_settings(args: argparse.Namespace) -> dict:
    """What a retraining's result depends on besides the network and the seed (kept with it in the progress file)."""
    return {"recipe": args.recipe, "train_epochs": args.train_epochs, "crop": list(args.crop),
            "size": list(args.size), "batch_size": args.batch_size, "dataset": args.dataset}


def search(args: argparse.Namespace, root: Path, data: dict) -> CostTable:
    """The configuration's search in ``root/search`` (resumed, or nothing to do when it finished); its table."""
    fields, _ = CONFIGURATIONS[args.configuration]
    table = load_lut(args.lut)
    scfg = SearchConfig(space="small", **data, cost="latency", lut=args.lut, target=args.target,
                        epochs=args.search_epochs, crop=tuple(args.crop), batch_size=args.batch_size,
                        workers=args.workers, device="cpu", seed=args.seed, progress=False, out=str(root / "search"),
                        **fields)
    ckpt = root / "search" / "checkpoint.pt"
    result = run_search(scfg, table, resume=ckpt.is_file())
    print(f"[{args.configuration}] search: {result.epochs} epochs, {len(result.pruned)} pruned", flush=True)
    return table


def picks_from_search(args: argparse.Namespace, root: Path, data: dict) -> list[dict]:
    """Search with the configuration, sample, take K picks spread over the front and the cloud; each pick's
    supernet score (sample's, and again on the whole scoring split), predicted and measured latency."""
    table = search(args, root, data)
    split = SCORING_SPLIT.get(args.configuration, "val")
    pareto = root / "search" / "pareto.json"
    if not pareto.is_file():
        sample_and_select(SampleConfig(search=str(root / "search"), n=args.n, val_limit=args.val_limit,
                                       budget=None, finalists=0, device="cpu", workers=args.workers,
                                       seed=args.seed, progress=False, split=split))
    samples = json.loads(pareto.read_text())["samples"]
    full_scorer = None  # the picks scored again through the supernet on the whole scoring split
    timing = replace(table_config(table), min_run_time=max(1.0, table_config(table).min_run_time))
    picks = []
    for n, i in enumerate(spread(samples, args.k)):
        s = samples[i]
        folder = root / "archs" / f"{n:02d}"
        genotype = Genotype(table.macro, tuple(s["genotype"]))
        measured = folder / "latency.json"
        if not measured.is_file():  # timed in a new process, not in this one that searched (docs/SEARCH.md)
            from squeezenas.cost.benchmark import benchmark_fresh
            from squeezenas.models import build_model

            net = build_model(genotype, num_classes=int(table.meta.get("num_classes", 11)))
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(measured, benchmark_fresh([net], tuple(table.input_size), timing, memory=False)[0])
        full = folder / "score_full.json"
        if not full.is_file():
            full_scorer = full_scorer or path_scorer(
                SampleConfig(search=str(root / "search"), device="cpu", workers=args.workers, seed=args.seed,
                             progress=False, split=split), limit=None)
            atomic_write_json(full, full_scorer(genotype))
        picks.append({"genotype": list(genotype.ops), "score": s["miou"], "predicted_ms": s["latency_ms"],
                      "measured_ms": json.loads(measured.read_text())[f"{timing.statistic}_ms"],
                      "score_full_val": json.loads(full.read_text())["miou"], "on_front": s["on_front"]})
    return picks


PICK_KEYS = ("genotype", "score", "predicted_ms", "measured_ms", "score_full_val", "on_front")


def picks_from_results(path: Path, configuration: str) -> list[dict]:
    """The picks of an earlier report (``--picks-from``): their scores and latencies as it recorded them."""
    report = json.loads(path.read_text())
    name = report.get("configuration", {}).get("name")
    if name != configuration:
        raise SystemExit(f"{path}: holds the picks of configuration {name!r}, not {configuration!r}")
    return [{k: p[k] for k in PICK_KEYS if k in p} for p in report["pairs"]]


def record_progress(path: Path, key: str, entry: dict, lock_dir: Path) -> None:
    """Add one finished retraining to a seed's progress file. Lanes (``--picks``) retrain other picks side by side
    and write the same file: under an exclusive lock, what the file holds now is kept and only ``key`` replaced."""
    update_json_locked(path, lambda entries: {**entries, key: entry}, lock_dir)


def run(args: argparse.Namespace) -> dict:
    _, is_default = CONFIGURATIONS[args.configuration]
    root = Path(args.out) / args.configuration
    data = {"dataset": args.dataset, "data_root": args.data_root or None,
            "data_options": parse_data_options(args.data_option)}
    t0 = time.perf_counter()
    tag = ("" if args.recipe == "short" else f"_{args.recipe}") + \
        ("" if args.seeds == [args.seed] else "_s" + "-".join(map(str, args.seeds)))
    out = Path(args.results) / f"{args.configuration}{tag}.json"
    if args.picks_from and out.resolve() == Path(args.picks_from).resolve():
        raise SystemExit(f"{out}: would overwrite the report the picks come from; choose another --recipe or --seeds")
    if args.picks is not None and not args.picks_from:
        raise SystemExit("--picks: lanes retrain the picks of an earlier report; give --picks-from (a search "
                         "of its own in each lane would race on one folder)")
    picks = (picks_from_results(Path(args.picks_from), args.configuration) if args.picks_from
             else picks_from_search(args, root, data))
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    # each finished retraining, one file per seed (committed: a later session goes on; processes retraining
    # other seeds side by side write other files, and a call with all the seeds combines them)
    progress = {seed: Path(args.results) / f"{args.configuration}_{args.recipe}_s{seed}.progress.json"
                for seed in args.seeds}
    done = {k: v for f in progress.values() if f.is_file() for k, v in json.loads(f.read_text()).items()}
    if args.picks is not None and not set(args.picks) <= set(range(len(picks))):
        raise SystemExit(f"--picks: {sorted(set(args.picks) - set(range(len(picks))))} not among the "
                         f"{len(picks)} picks (0 to {len(picks) - 1})")
    pairs = []
    for n, pick in enumerate(picks):
        if args.picks is not None and n not in args.picks:
            continue
        folder = root / "archs" / f"{n:02d}"
        if not (folder / "genotype.json").is_file():
            Genotype.from_dict({"macro": "small", "genotype": pick["genotype"]}).save(folder / "genotype.json")
        if list(load_genotype(folder / "genotype.json").ops) != list(pick["genotype"]):
            raise SystemExit(f"{folder}: holds another network than pick {n} (another search or report wrote "
                             "it); choose another --out")
        per_seed = []
        for seed in args.seeds:
            # a retraining finished before (in another session, clone or lane) is taken from the progress file
            key, settings = f"{folder.name}/s{seed}", ground_truth_settings(args)
            entry = done.get(key)
            if entry is None or entry.get("genotype") != list(pick["genotype"]) or entry.get("settings") != settings:
                entry = done[key] = {**retrain(folder, data, args, seed), "genotype": list(pick["genotype"]),
                                     "settings": settings, "command": command}
                record_progress(progress[seed], key, entry, Path(args.out))
            per_seed.append({split: entry[split] for split in ("val", "test")})
        scores = {split: float(np.mean([r[split] for r in per_seed])) for split in ("val", "test")}
        pairs.append({**pick, "val_miou": scores["val"], "test_miou": scores["test"],
                      **({f"{split}_miou_seeds": [r[split] for r in per_seed] for split in ("val", "test")}
                         if len(per_seed) > 1 else {})})
        print(f"[{args.configuration}] {n + 1}/{len(picks)}: score {pick['score']:.3f} → val {scores['val']:.3f}, "
              f"test {scores['test']:.3f}, {pick['measured_ms']:.2f} ms", flush=True)
    if args.picks is not None:  # a lane: its retrainings are in the progress files, the report needs them all
        print(f"[{args.configuration}] picks {args.picks} retrained → "
              f"{', '.join(str(f) for f in progress.values())}; the call without --picks writes the report")
        return {"pairs": pairs}
    summary = {}
    for split in ("val", "test"):
        b = [p[f"{split}_miou"] for p in pairs]
        # the measured latency as a predictor too: the bar a supernet score must clear (bigger networks tend to
        # learn more in a short retraining, whatever the search)
        for name, key in (("", "score"), ("_full", "score_full_val"), ("_measured_ms", "measured_ms")):
            if all(key in p for p in pairs):
                a = [p[key] for p in pairs]
                summary[f"kendall_tau{name}_{split}"] = kendall_tau(a, b)
                summary[f"spearman_rho{name}_{split}"] = spearman(a, b)
    # the ground truth's own agreement: how far two evaluations of the same retrained networks rank alike
    summary["kendall_tau_retrained_val_test"] = kendall_tau([p["val_miou"] for p in pairs],
                                                            [p["test_miou"] for p in pairs])
    if args.picks_from:  # and how far this ground truth ranks the picks like the earlier report's did
        earlier = json.loads(Path(args.picks_from).read_text())["pairs"]
        for split in ("val", "test"):
            if all(f"{split}_miou" in e for e in earlier):
                summary[f"kendall_tau_{split}_vs_picks_from"] = kendall_tau([e[f"{split}_miou"] for e in earlier],
                                                                           [p[f"{split}_miou"] for p in pairs])
    if len(args.seeds) > 1:  # the retraining's own noise: how far the seeds rank the networks alike, and its size
        for split in ("val", "test"):
            seeds = np.array([p[f"{split}_miou_seeds"] for p in pairs])  # K × S
            summary[f"kendall_tau_retrained_seed_seed_{split}"] = float(np.mean(
                [kendall_tau(seeds[:, a], seeds[:, b]) for a, b in itertools.combinations(range(seeds.shape[1]), 2)]))
            # one network's sd over seeds, pooled over the K networks (for two seeds √(mean d² / 2))
            sd = float(np.sqrt(seeds.var(axis=1, ddof=1).mean()))
            summary[f"retrained_seed_sd_{split}"] = sd
            # the span of the seed-averaged mIoU, and the span K such averages would have from seed noise alone
            # (the expected range of K normal draws of sd / √S): a span near it says the order is mostly noise
            summary[f"retrained_span_{split}"] = float(np.ptp(seeds.mean(axis=1)))
            summary[f"retrained_span_if_noise_{split}"] = expected_range(len(pairs)) * sd / np.sqrt(seeds.shape[1])
    settings = {k: v for k, v in vars(args).items() if k not in ("configuration", "out")}
    fields, _ = CONFIGURATIONS[args.configuration]
    report = {"configuration": {"name": args.configuration, **fields,
                                "scoring_split": SCORING_SPLIT.get(args.configuration, "val"), "settings": settings},
              "is_default": is_default, "k": len(pairs), **summary, "pairs": pairs,
              "commands": [command],
              "seconds_this_call": round(time.perf_counter() - t0, 1)}
    atomic_write_json(out, report)
    full = (f" (whole-split score: {summary['kendall_tau_full_val']:.2f}, {summary['kendall_tau_full_test']:.2f})"
            if "kendall_tau_full_val" in summary else "")
    size = (f"; measured latency alone: τ test {summary['kendall_tau_measured_ms_test']:.2f}"
            if "kendall_tau_measured_ms_test" in summary else "")
    print(f"[{args.configuration}] Kendall τ val {summary['kendall_tau_val']:.2f}, test "
          f"{summary['kendall_tau_test']:.2f}{full}{size}; Spearman ρ val {summary['spearman_rho_val']:.2f}; "
          f"retrained val vs test τ {summary['kendall_tau_retrained_val_test']:.2f}"
          + (f"; seed sd val {100 * summary['retrained_seed_sd_val']:.2f}, test "
             f"{100 * summary['retrained_seed_sd_test']:.2f} points; test span "
             f"{100 * summary['retrained_span_test']:.2f} points, "
             f"{100 * summary['retrained_span_if_noise_test']:.2f} from seed noise alone"
             if len(args.seeds) > 1 else "")
          + f" → {out}")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configuration", choices=CONFIGURATIONS, required=True)
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--data-root", default="../shared/data/camvid")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--lut", help="latency table of the target (this CPU) at the deployment size (for a search)")
    p.add_argument("--picks-from", metavar="JSON",
                   help="retrain the picks of an earlier report (bench/results/ranking/C.json) instead of searching: "
                        "a better ground truth for the same picks, without the search's folder")
    p.add_argument("--target", type=float, default=None, help="expected-latency target (ms); default: α")
    p.add_argument("--search-epochs", type=int, default=8)
    p.add_argument("--crop", type=int, nargs=2, default=(176, 240))
    p.add_argument("--size", type=int, nargs=2, default=(180, 240), help="evaluation input size")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n", type=int, default=100, help="architectures sampled and scored")
    p.add_argument("--val-limit", type=int, default=50, help="validation images (evenly strided) per score")
    p.add_argument("--k", type=int, default=10, help="architectures retrained")
    p.add_argument("--train-epochs", type=int, default=10)
    p.add_argument("--recipe", choices=RECIPES, default="short",
                   help="retraining recipe of the ground truth, for --train-epochs "
                        "(results: CONFIGURATION[_RECIPE][_sSEEDS].json)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="retraining seeds, mIoU averaged over them (default: --seed)")
    p.add_argument("--picks", type=int, nargs="+", default=None, metavar="N",
                   help="retrain only these picks (0-based), for lanes side by side: progress files only, no report")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/ranking")
    p.add_argument("--results", default="bench/results/ranking")
    args = p.parse_args()
    args.seeds = args.seeds or [args.seed]
    if not args.picks_from and not args.lut:
        p.error("--lut is needed for a search (or retrain earlier picks with --picks-from)")
    run(args)


if __name__ == "__main__":
    main()
