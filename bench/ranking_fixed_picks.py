"""How well does each search configuration's supernet rank networks whose retrained accuracy is already known?

``ranking_fidelity.py`` retrains K picks per configuration (the expensive part: K × 40 epochs), and every
configuration has picks of its own, so two configurations' τ differ by their picks as much as by their supernets.
Here every configuration searches once (the same table, target, epochs and seed as ``ranking_fidelity.py``, in the
same folder, so either script reuses the other's search) and scores **the same fixed networks** — the picks of
committed ground-truth reports, retrained with one recipe — through its supernet on the whole scoring split.

Per set of picks (one report) the Kendall τ and Spearman ρ of the scores against the retrained val and test mIoU,
next to the τ of the measured latency alone (the bar a score must clear) and the ground truth's own val–test τ;
pooled over the sets, τ counts only pairs within a set (``within_sets``: each report's networks were retrained and
timed together, pairs across reports would also compare the reports). A pick that uses a candidate a
configuration's search pruned cannot be scored through its supernet: it is left out of that configuration's
figures, and ``common`` gives every configuration's figures on the picks all of them scored.

    python bench/ranking_fixed_picks.py --configurations new_path new_path_alternate old_mixture \\
        --ground-truth bench/results/ranking/new_path_v2_s0-1.json bench/results/ranking/old_mixture_v2.json \\
        --lut runs/ranking/lut.json --target 7.77 --data-root ../shared/data/camvid
    → bench/results/ranking/fixed_picks.json  (each pick's score is kept in runs/ranking/C/fixed_picks/ with the
      search settings: a run resumes, and a configuration already scored is not searched or scored again)

Configurations in two lanes, one thread each, write the same report (each its own entry, under a lock in --out:
lanes share --out, where their searches live):
    for cs in "new_path new_path_alternate" "old_mixture new_mixture"; do
      OMP_NUM_THREADS=1 python bench/ranking_fixed_picks.py --configurations $cs ... & done; wait
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ranking_fidelity import CONFIGURATIONS, SCORING_SPLIT, search  # noqa: E402

from squeezenas.cli.options import parse_data_options  # noqa: E402
from squeezenas.cost.lut import kendall_tau, load_lut, spearman  # noqa: E402
from squeezenas.search import SampleConfig, path_scorer  # noqa: E402
from squeezenas.space.genotype import Genotype  # noqa: E402
from squeezenas.utils.io import atomic_write_json, update_json_locked  # noqa: E402

# What a ground truth's mIoU depends on besides the network and the seeds: the reports pooled must agree on it.
RETRAINING = ("dataset", "recipe", "train_epochs", "crop", "size", "batch_size")


def ground_truth(paths: list[str]) -> tuple[list[dict], dict]:
    """The picks of the reports, each with its retrained val and test mIoU, its measured latency and its set (a
    network already in an earlier report is kept there only); and the sets' retraining settings and seeds."""
    picks, seen, sets, retraining = [], set(), {}, None
    for path in paths:
        report = json.loads(Path(path).read_text())
        settings = report.get("configuration", {}).get("settings", {})
        this = {k: settings.get(k) for k in RETRAINING}
        if retraining is not None and this != retraining:
            raise SystemExit(f"{path}: retrained with {this}, the first report with {retraining}; pool only reports "
                             "of one retraining recipe")
        retraining = this
        sets[Path(path).stem] = {"seeds": settings.get("seeds"), "path": path}
        for n, p in enumerate(report["pairs"]):
            if not all(k in p for k in ("genotype", "val_miou", "test_miou", "measured_ms")):
                raise SystemExit(f"{path}: pair {n} lacks the retrained val/test mIoU or the measured latency")
            if tuple(p["genotype"]) in seen:
                print(f"{path}: pair {n} is a network of an earlier report; kept there only", flush=True)
                continue
            seen.add(tuple(p["genotype"]))
            picks.append({"set": Path(path).stem, "index": n, "genotype": list(p["genotype"]),
                          "val_miou": p["val_miou"], "test_miou": p["test_miou"], "measured_ms": p["measured_ms"]})
    return picks, {"retraining": retraining, "sets": sets}


def score_picks(args: argparse.Namespace, configuration: str, picks: list[dict], data: dict) -> list[float | None]:
    """The configuration's supernet score of every pick on the whole scoring split (None: a candidate was pruned);
    each score is kept in a file named by the network, with the search settings it was computed under, so an
    interrupted run goes on where it stopped and another ground truth holding the same networks reuses it."""
    root = Path(args.out) / configuration
    key = {**search_settings(args), "configuration": configuration}
    scores: list[float | None] = []
    scorer = None
    for pick in picks:
        path = root / "fixed_picks" / f"{hashlib.sha1(' '.join(pick['genotype']).encode()).hexdigest()[:16]}.json"
        kept = json.loads(path.read_text()) if path.is_file() else {}
        if kept.get("genotype") == pick["genotype"] and kept.get("settings") == key:
            scores.append(kept["miou"])
            continue
        if scorer is None:
            search(argparse.Namespace(**{**vars(args), "configuration": configuration}), root, data)
            scorer = path_scorer(SampleConfig(search=str(root / "search"), device="cpu", workers=args.workers,
                                              seed=args.seed, progress=False,
                                              split=SCORING_SPLIT.get(configuration, "val")), limit=None)
        genotype = Genotype.from_dict({"macro": "small", "genotype": pick["genotype"]})
        pruned = scorer.net.pruned_in(genotype)
        if pruned:
            print(f"[{configuration}] {pick['set']} pick {pick['index']}: not scored, its search pruned "
                  + ", ".join(f"{i}:{c}" for i, c in pruned), flush=True)
        score = None if pruned else scorer(genotype)["miou"]
        atomic_write_json(path, {"genotype": pick["genotype"], "miou": score, "settings": key})
        scores.append(score)
    return scores


def agreement(scores: list[float | None], picks: list[dict]) -> dict:
    """Per set of picks: τ and ρ of the scores (where they exist) against retrained val and test mIoU, and the
    bars; pooled over the sets, τ over the pairs within a set (each set's τ weighted by its number of pairs)."""
    sets: dict[str, dict] = {}
    for name in dict.fromkeys(p["set"] for p in picks):
        keep = [i for i, (s, p) in enumerate(zip(scores, picks)) if s is not None and p["set"] == name]
        entry: dict = {"k": len(keep), "pruned": sum(p["set"] == name for p in picks) - len(keep)}
        if len(keep) >= 3:
            for split in ("val", "test"):
                truth = [picks[i][f"{split}_miou"] for i in keep]
                for what, values in (("score", [scores[i] for i in keep]),
                                     ("measured_ms", [picks[i]["measured_ms"] for i in keep])):
                    entry[f"kendall_tau_{what}_{split}"] = kendall_tau(values, truth)
                    entry[f"spearman_rho_{what}_{split}"] = spearman(values, truth)
            entry["kendall_tau_retrained_val_test"] = kendall_tau([picks[i]["val_miou"] for i in keep],
                                                                  [picks[i]["test_miou"] for i in keep])
            entry["tau_se_if_unrelated"] = tau_se(len(keep))
        sets[name] = entry
    pairs = {name: e["k"] * (e["k"] - 1) / 2 for name, e in sets.items() if e["k"] >= 3}
    pooled: dict = {"k": sum(e["k"] for e in sets.values()), "pruned": sum(e["pruned"] for e in sets.values())}
    if pairs:
        for key in sets[next(iter(pairs))]:
            if key.startswith("kendall_tau"):
                pooled[key] = sum(sets[n][key] * w for n, w in pairs.items()) / sum(pairs.values())
        pooled["tau_se_if_unrelated"] = (sum((w * tau_se(sets[n]["k"])) ** 2 for n, w in pairs.items()) ** 0.5
                                         / sum(pairs.values()))
    return {"within_sets": pooled, "sets": sets}


def tau_se(k: int) -> float:
    """The standard error of Kendall's τ between two unrelated orders of ``k`` items: √(2(2k + 5) / (9k(k − 1)))
    (0.25 for 10); a τ within about two of it from another is not shown to differ."""
    return (2 * (2 * k + 5) / (9 * k * (k - 1))) ** 0.5


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    picks, about = ground_truth(args.ground_truth)
    digest = hashlib.sha1(json.dumps(picks, sort_keys=True).encode()).hexdigest()[:16]
    data = {"dataset": args.dataset, "data_root": args.data_root or None,
            "data_options": parse_data_options(args.data_option)}
    command = " ".join(shlex.quote(x) for x in ["python", *sys.argv])
    fixed = {"ground_truth": {**about, "digest": digest}, "search": search_settings(args)}

    def record(configuration: str | None = None, scores: list[float | None] | None = None):
        """Add one configuration's scores to the report (lanes write the same file: each keeps the others'), and
        compute every configuration's figures again, also on the picks that all of them scored."""
        def update(report: dict) -> dict:
            if report and {k: report.get(k) for k in fixed} != fixed:
                raise SystemExit(f"{args.results}: holds another ground truth or search settings; choose another "
                                 "--results")
            entries = report.get("configurations", {})
            if configuration is not None:
                entries[configuration] = {"search_fields": CONFIGURATIONS[configuration][0],
                                          "is_default": CONFIGURATIONS[configuration][1],
                                          "scoring_split": SCORING_SPLIT.get(configuration, "val"), "scores": scores}
            common = [all(e["scores"][i] is not None for e in entries.values()) for i in range(len(picks))]
            for e in entries.values():
                e.update(agreement(e["scores"], picks))
                e["common"] = agreement([s if c else None for s, c in zip(e["scores"], common)], picks)["within_sets"]
            commands = report.get("commands", []) + ([command] if configuration is not None else [])
            return {**fixed, "picks": [{k: p[k] for k in ("set", "index", "genotype")} for p in picks],
                    "configurations": entries, "commands": list(dict.fromkeys(commands))}
        return update_json_locked(args.results, update, args.out)

    report = record()  # refuses a report of other settings before any work
    for c in args.configurations:
        report = record(c, score_picks(args, c, picks, data))  # after every configuration: an interruption keeps it
        a = report["configurations"][c]["within_sets"]
        print(f"[{c}] {a['k']} picks scored ({a['pruned']} pruned); within sets τ score–val "
              f"{a.get('kendall_tau_score_val', float('nan')):.2f}, score–test "
              f"{a.get('kendall_tau_score_test', float('nan')):.2f} (latency alone "
              f"{a.get('kendall_tau_measured_ms_val', float('nan')):.2f} / "
              f"{a.get('kendall_tau_measured_ms_test', float('nan')):.2f})", flush=True)
    print(f"{len(report['configurations'])} configuration(s) → {args.results} "
          f"({time.perf_counter() - t0:.0f} s this call)")
    return report


def table_ratio(lut: str, reports: list[str]) -> list[float]:
    """This table's prediction of every pick over the one its report recorded (``predicted_ms``, the table of
    its search): on a day the machine runs slower, a table built then predicts more, and a target scaled by the
    median ratio stays at the same place among the networks."""
    table = load_lut(lut)
    return [table.predict(Genotype(table.macro, tuple(p["genotype"]))) / p["predicted_ms"]
            for path in reports for p in json.loads(Path(path).read_text())["pairs"]]


def search_settings(args: argparse.Namespace) -> dict:
    """What every configuration's search shares (a report holds one setting only; a kept score is reused under
    the same only)."""
    return {k: getattr(args, k) for k in ("dataset", "data_root", "data_option", "lut", "target", "search_epochs",
                                          "crop", "batch_size", "seed")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configurations", nargs="+", choices=CONFIGURATIONS, required=True)
    p.add_argument("--ground-truth", nargs="+", required=True, metavar="JSON",
                   help="reports of bench/ranking_fidelity.py whose picks were retrained (bench/results/ranking/)")
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--data-root", default="../shared/data/camvid")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--lut", required=True, help="the latency table the searches use (as ranking_fidelity.py's)")
    p.add_argument("--target", type=float, default=None, help="expected-latency target (ms); default: α")
    p.add_argument("--search-epochs", type=int, default=8)
    p.add_argument("--crop", type=int, nargs=2, default=[176, 240])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/ranking")
    p.add_argument("--results", default="bench/results/ranking/fixed_picks.json")
    p.add_argument("--table-ratio", action="store_true",
                   help="only print how far --lut predicts the picks above their reports' tables, and --target "
                        "scaled by the median ratio (to pass as --target when the machine runs slow)")
    args = p.parse_args()
    if args.table_ratio:
        ratios = table_ratio(args.lut, args.ground_truth)
        target = "" if args.target is None else f"; --target {args.target:g} scaled: {args.target * median(ratios):.2f}"
        print(f"{args.lut} over the reports' tables: median {median(ratios):.3f} (min {min(ratios):.3f}, max "
              f"{max(ratios):.3f}, {len(ratios)} picks){target}")
        return
    run(args)


if __name__ == "__main__":
    main()
