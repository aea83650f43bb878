"""What α does: the same short synthetic search at several α, and with a target, reporting the expected cost
of the final distribution and the cost of its most probable architecture.

    .venv/bin/python bench/search_alpha.py --out runs/bench_alpha [--alphas 0 0.1 0.5 2 --target-frac 0.7]
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
    ap.add_argument("--out", default="runs/bench_alpha")
    ap.add_argument("--alphas", type=float, nargs="+", default=(0.0, 0.1, 0.5, 2.0))
    ap.add_argument("--target-frac", type=float, default=0.7, help="target = this × the mean network's GMACs")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop", type=int, nargs=2, default=(64, 128))
    ap.add_argument("--theta-lr", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    table = mac_table("small", tuple(args.crop), num_classes=8)
    e_ref = table.e_ref
    base = dict(space="small", dataset="synthetic", data_options={"num_samples": 64, "size": tuple(args.crop)},
                crop=tuple(args.crop), scale=(1.0, 1.0), batch_size=args.batch_size, epochs=args.epochs,
                steps_per_epoch=args.steps, workers=0, theta_lr=args.theta_lr, prune_threshold=0.0, device="cpu",
                progress=False, tensorboard=False)
    rows = []
    runs = [(f"alpha={a:g}", {"alpha": a}) for a in args.alphas]
    runs.append((f"target={args.target_frac:g}×E_ref", {"target": args.target_frac * e_ref}))
    for name, extra in runs:
        folder = out / name.replace("×", "x").replace("=", "_")
        shutil.rmtree(folder, ignore_errors=True)
        r = run_search(SearchConfig(**base, **extra, out=str(folder)), table)
        rows.append({"run": name, "alpha": r.alpha, "target_gmacs": r.target, "expected_gmacs": r.expected_cost,
                     "argmax_gmacs": r.predicted_cost, "expected_over_mean": r.expected_cost / e_ref,
                     "ce_last_epoch": r.history[-1]["ce"], "lam_total": r.lam_total})
    (out / "alpha.json").write_text(json.dumps({"settings": vars(args), "e_ref_gmacs": e_ref, "runs": rows},
                                               indent=1) + "\n")
    print(f"mean network (uniform distribution): {e_ref:.5f} GMACs at {args.crop[0]}×{args.crop[1]}")
    print(f"{'run':<22}{'E[GMACs]':>10}{'/ mean':>8}{'argmax GMACs':>14}{'CE':>8}")
    for r in rows:
        print(f"{r['run']:<22}{r['expected_gmacs']:>10.5f}{r['expected_over_mean']:>8.3f}{r['argmax_gmacs']:>14.5f}"
              f"{r['ce_last_epoch']:>8.3f}")


if __name__ == "__main__":
    main()
