"""Time saved by early pruning (paper §4.2): the same short synthetic search with and without pruning.

Both runs share the seed, data and schedule; the pruned one removes candidates whose probability falls below
the threshold after every epoch. Reports seconds per step per epoch and the alive fraction, as JSON and a table.

    .venv/bin/python bench/search_pruning.py --out runs/bench_pruning [--epochs 6 --steps 8 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from squeezenas.cost.tables import mac_table
from squeezenas.search import SearchConfig, run_search


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench_pruning")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop", type=int, nargs=2, default=(64, 128))
    ap.add_argument("--threshold", type=float, default=0.005)
    ap.add_argument("--theta-lr", type=float, default=0.1, help="high, so that θ concentrates within a short run")
    ap.add_argument("--alpha", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    table = mac_table("small", tuple(args.crop), num_classes=8)
    runs = {}
    for name, threshold in (("no_pruning", 0.0), ("pruning", args.threshold)):
        shutil.rmtree(out / name, ignore_errors=True)
        cfg = SearchConfig(space="small", dataset="synthetic", data_options={"num_samples": 64, "size": tuple(args.crop)},
                           crop=tuple(args.crop), scale=(1.0, 1.0), batch_size=args.batch_size, epochs=args.epochs,
                           steps_per_epoch=args.steps, workers=0, theta_lr=args.theta_lr, alpha=args.alpha,
                           prune_threshold=threshold, device=args.device, progress=False, tensorboard=False,
                           out=str(out / name))
        r = run_search(cfg, table)
        runs[name] = {"seconds": sum(h["seconds"] for h in r.history),
                      "epochs": [{k: h[k] for k in ("epoch", "seconds_per_step", "alive_fraction", "pruned")}
                                 for h in r.history],
                      "genotype": list(r.genotype.ops)}
    a, b = runs["no_pruning"], runs["pruning"]
    report = {"settings": vars(args) | {"torch": torch.__version__, "cpu_threads": torch.get_num_threads()},
              "runs": runs, "total_saving": 1 - b["seconds"] / a["seconds"]}
    (out / "pruning.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'epoch':>5} {'s/step (no pruning)':>20} {'s/step (pruning)':>17} {'alive':>7}")
    for ea, eb in zip(a["epochs"], b["epochs"]):
        print(f"{ea['epoch']:>5} {ea['seconds_per_step']:>20.3f} {eb['seconds_per_step']:>17.3f} {eb['alive_fraction']:>7.0%}")
    print(f"total {a['seconds']:.1f} s without pruning, {b['seconds']:.1f} s with: "
          f"{100 * report['total_saving']:.0f}% saved; wrote {out / 'pruning.json'}")


if __name__ == "__main__":
    main()
