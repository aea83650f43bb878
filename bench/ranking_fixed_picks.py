"""How well does each search configuration's supernet rank networks whose retrained accuracy is already known?

``ranking_fidelity.py`` retrains K picks per configuration (the expensive part: K × 40 epochs), and every
configuration has picks of its own, so two configurations' τ differ by their picks as much as by their supernets.
Here every configuration searches once (the same table, target, epochs and seed as ``ranking_fidelity.py``, in the
same folder, so either script reuses the other's search) and scores **the same fixed networks** — the picks of
committed ground-truth reports — through its supernet on the whole scoring split. The Kendall τ and Spearman ρ
of those scores against the retrained val and test mIoU then compare the configurations' supernets on equal
terms, next to the τ of the measured latency alone (the bar a score must clear) and the ground truth's own val–test
τ. A pick that uses a candidate the configuration's search pruned cannot be scored through its supernet; it is
listed as pruned and left out of that configuration's τ.

    python bench/ranking_fixed_picks.py --configurations new_path new_path_alternate old_mixture \\
        --ground-truth bench/results/ranking/new_path_v2_s0-1.json bench/results/ranking/old_mixture_v2.json \\
        --lut runs/ranking/lut.json --target 7.77 --data-root ../shared/data/camvid
    → bench/results/ranking/fixed_picks.json  (each pick's score is kept in runs/ranking/C/fixed_picks/: a run
      resumes, and a configuration already scored is not searched or scored again)

Configurations in two lanes, one thread each, write the same report (each its own entry, under a lock):
    for cs in "new_path new_path_alternate" "old_mixture new_mixture"; do
      OMP_NUM_THREADS=1 python bench/ranking_fixed_picks.py --configurations $cs ... & done; wait
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ranking_fidelity import CONFIGURATIONS, SCORING_SPLIT, search, spearman  # noqa: E402

from squeezenas.cli.options import parse_data_options  # noqa: E402
from squeezenas.cost.lut import kendall_tau  # noqa: E402
from squeezenas.search import SampleConfig, path_scorer  # noqa: E402
from squeezenas.space.genotype import Genotype, GenotypeError  # noqa: E402
from squeezenas.utils.io import atomic_write_json  # noqa: E402


def ground_truth(paths: list[str]) -> list[dict]:
    """The picks of the reports, each with its retrained val and test mIoU, its measured latency and its set."""
    picks = []
    for path in paths:
        report = json.loads(Path(path).read_text())
        for n, p in enumerate(report["pairs"]):
            if not all(k in p for k in ("genotype", "val_miou", "test_miou", "measured_ms")):
                raise SystemExit(f"{path}: pair {n} lacks the retrained val/test mIoU or the measured latency")
            picks.append({"set": Path(path).stem, "index": n, "genotype": list(p["genotype"]),
                          "val_miou": p["val_miou"], "test_miou": p["test_miou"], "measured_ms": p["measured_ms"]})
    return picks


def score_picks(args: argparse.Namespace, configuration: str, picks: list[dict], data: dict) -> list[float | None]:
    """The configuration's supernet score of every pick on the whole scoring split (None: a candidate was pruned);
    each score is kept in a file named by the network, so an interrupted run goes on where it stopped and another
    ground truth holding the same networks reuses the scores."""
    root = Path(args.out) / configuration
    folder = root / "fixed_picks"
    scores: list[float | None] = []
    scorer = None
    for pick in picks:
        path = folder / f"{hashlib.sha1(' '.join(pick['genotype']).encode()).hexdigest()[:16]}.json"
        if path.is_file() and json.loads(path.read_text())["genotype"] == pick["genotype"]:
            scores.append(json.loads(path.read_text())["miou"])
            continue
        if scorer is None:
            search(argparse.Namespace(**{**vars(args), "configuration": configuration}), root, data)
            scorer = path_scorer(SampleConfig(search=str(root / "search"), device="cpu", workers=args.workers,
                                              seed=args.seed, progress=False,
                                              split=SCORING_SPLIT.get(configuration, "val")), limit=None)
        try:
            score = scorer(Genotype.from_dict({"macro": "small", "genotype": pick["genotype"]}))["miou"]
        except GenotypeError as e:  # the search pruned one of its candidates
            print(f"[{configuration}] {pick['set']} pick {pick['index']}: not scored ({e})", flush=True)
            score = None
        atomic_write_json(path, {"genotype": pick["genotype"], "miou": score})
        scores.append(score)
    return scores


def agreement(scores: list[float | None], picks: list[dict]) -> dict:
    """τ and ρ of the scores (the picks they exist for) against retrained val and test mIoU, and the bars."""
    keep = [i for i, s in enumerate(scores) if s is not None]
    out: dict = {"k": len(keep), "pruned": len(scores) - len(keep)}
    if len(keep) < 3:
        return out
    for split in ("val", "test"):
        truth = [picks[i][f"{split}_miou"] for i in keep]
        for name, values in (("score", [scores[i] for i in keep]),
                             ("measured_ms", [picks[i]["measured_ms"] for i in keep])):
            out[f"kendall_tau_{name}_{split}"] = kendall_tau(values, truth)
            out[f"spearman_rho_{name}_{split}"] = spearman(values, truth)
    out["kendall_tau_retrained_val_test"] = kendall_tau([picks[i]["val_miou"] for i in keep],
                                                        [picks[i]["test_miou"] for i in keep])
    return out


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    picks = ground_truth(args.ground_truth)
    data = {"dataset": args.dataset, "data_root": args.data_root or None,
            "data_options": parse_data_options(args.data_option)}
    sets = list(dict.fromkeys(p["set"] for p in picks))
    out, command = Path(args.results), " ".join(shlex.quote(x) for x in ["python", *sys.argv])
    report = _record(args, out, command)  # refuses a report of other settings before any work
    for c in args.configurations:
        scores = score_picks(args, c, picks, data)
        entry = {"search_fields": CONFIGURATIONS[c][0], "is_default": CONFIGURATIONS[c][1],
                 "scoring_split": SCORING_SPLIT.get(c, "val"), "scores": scores,
                 "all": agreement(scores, picks)}
        for name in sets:  # each set of picks alone: its own ground truth, its own spread
            idx = [i for i, p in enumerate(picks) if p["set"] == name]
            entry[name] = agreement([scores[i] for i in idx], [picks[i] for i in idx])
        a = entry["all"]
        print(f"[{c}] {a['k']} picks scored ({a['pruned']} pruned): τ score–val "
              f"{a.get('kendall_tau_score_val', float('nan')):.2f}, score–test "
              f"{a.get('kendall_tau_score_test', float('nan')):.2f} (latency alone "
              f"{a.get('kendall_tau_measured_ms_val', float('nan')):.2f} / "
              f"{a.get('kendall_tau_measured_ms_test', float('nan')):.2f})", flush=True)
        report = _record(args, out, command, c, entry)  # after every configuration: an interruption keeps it
    print(f"{len(report['configurations'])} configuration(s) → {out} ({time.perf_counter() - t0:.0f} s this call)")
    return report


def _record(args: argparse.Namespace, out: Path, command: str, configuration: str | None = None,
            entry: dict | None = None) -> dict:
    """Add one configuration's entry to the report. Processes scoring other configurations side by side write the
    same file: under an exclusive lock, what it holds now is kept and only this entry replaced."""
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open(Path(args.out) / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        report = json.loads(out.read_text()) if out.is_file() else {}
        if report and (report.get("ground_truth") != args.ground_truth
                       or report.get("search") != search_settings(args)):
            raise SystemExit(f"{out}: holds another ground truth or search settings; choose another --results")
        report.update({"ground_truth": args.ground_truth, "search": search_settings(args),
                       "configurations": report.get("configurations", {})})
        if configuration is not None:
            report["configurations"][configuration] = entry
            report["commands"] = list(dict.fromkeys([*report.get("commands", []), command]))
            atomic_write_json(out, report)
        return report


def search_settings(args: argparse.Namespace) -> dict:
    """What every configuration's search shares (a report holds one setting only)."""
    return {k: getattr(args, k) for k in ("dataset", "lut", "target", "search_epochs", "crop", "batch_size", "seed")}


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
    run(p.parse_args())


if __name__ == "__main__":
    main()
