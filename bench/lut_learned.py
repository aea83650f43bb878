"""Can corrections learned from whole networks close the latency table's remaining error? (no timing)

A check report (``squeezenas lut check --samples N``) holds N networks, each with the table's prediction and its
measured latency. The tool's calibration fits measured ≈ overhead + scale · prediction. The forms below add
corrections that stay a sum over positions (so a search could fold them into the table's entries), fitted by
ridge regression on relative errors (each network's row divided by its measured latency; the overhead and scale
are not shrunk, the corrections are, with the strength chosen by cross-validation inside the training networks):

- ``affine``: the tool's calibration form (fitted here on relative errors, as every form);
- ``per-op``: + c_op · (how many positions run op), one term per candidate (a cost per op the parts miss);
- ``per-op-scale``: + d_op · (the table's sum over the positions that run op): each op's parts scaled on their own;
- ``per-cell``: + e_ij for position i running candidate j (a correction per table entry).

Each form is trained on ``--train`` networks drawn at random and scored on the others (``--splits`` draws): the
share within ±5% / ±10% and the SD of the relative error, held out.

    python bench/lut_learned.py bench/results/lut/learned/small_128x256_eager_check120.json \\
        --out bench/results/lut/learned/small_128x256_eager.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from squeezenas.cost.tables import CostTable

FORMS = ("affine", "per-op", "per-op-scale", "per-cell")
LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def features(table: CostTable, rows: list[dict], form: str) -> np.ndarray:
    """(networks, 2 + k): [1, prediction, corrections...] for ``form``."""
    index = {c: j for j, c in enumerate(table.candidates)}
    n_pos, n_cand = len(table.table), len(table.candidates)
    out = []
    for r in rows:
        ops = [index[op] for op in r["genotype"]]
        base = [1.0, r["predicted_ms"]]
        if form == "affine":
            extra = []
        elif form == "per-op":
            extra = np.bincount(ops, minlength=n_cand).astype(float).tolist()
        elif form == "per-op-scale":
            sums = np.zeros(n_cand)
            for i, j in enumerate(ops):
                sums[j] += table.table[i][j]
            extra = sums.tolist()
        elif form == "per-cell":
            cells = np.zeros((n_pos, n_cand))
            cells[np.arange(n_pos), ops] = 1.0
            extra = cells.ravel().tolist()
        else:
            raise ValueError(f"unknown form {form!r}")
        out.append(base + extra)
    return np.asarray(out)


def ridge_fit(x: np.ndarray, m: np.ndarray, lam: float) -> np.ndarray:
    """Coefficients minimising Σ((m - x·c)/m)² + lam · n · |c_s[2:]|², c_s the coefficients of the columns of
    x/m scaled to unit RMS, n the networks (the overhead and scale unshrunk)."""
    xw, yw = x / m[:, None], np.ones(len(m))
    scale = np.sqrt(np.mean(xw ** 2, axis=0))
    scale[scale == 0] = 1.0
    xs = xw / scale
    penalty = np.full(x.shape[1], lam * len(m))
    penalty[:2] = 0.0
    c = np.linalg.solve(xs.T @ xs + np.diag(penalty) + 1e-9 * np.eye(x.shape[1]), xs.T @ yw)
    return c / scale


def fit(x: np.ndarray, m: np.ndarray, rng: np.random.Generator, folds: int = 5) -> np.ndarray:
    """``ridge_fit`` with its strength chosen by ``folds``-fold cross-validation inside (x, m)."""
    if x.shape[1] == 2:
        return ridge_fit(x, m, 0.0)
    fold = rng.permutation(len(m)) % folds
    def cv_error(lam: float) -> float:
        err = []
        for f in range(folds):
            c = ridge_fit(x[fold != f], m[fold != f], lam)
            err.append((x[fold == f] @ c - m[fold == f]) / m[fold == f])
        return float(np.mean(np.concatenate(err) ** 2))
    best = min(LAMBDAS, key=cv_error)
    return ridge_fit(x, m, best)


def score(rows: list[dict], table: CostTable, train: int, splits: int, seed: int) -> dict:
    """Held-out relative errors of each form over ``splits`` random train/test splits."""
    m = np.array([r["measured_ms"] for r in rows])
    xs = {form: features(table, rows, form) for form in FORMS}
    rng = np.random.default_rng(seed)
    errors: dict[str, list[np.ndarray]] = {form: [] for form in FORMS}
    for _ in range(splits):
        order = rng.permutation(len(m))
        tr, te = order[:train], order[train:]
        for form in FORMS:
            c = fit(xs[form][tr], m[tr], rng)
            errors[form].append((xs[form][te] @ c - m[te]) / m[te] * 100)
    out = {}
    for form, errs in errors.items():
        e = np.concatenate(errs)
        shares = [float(np.mean(np.abs(s) <= 5)) for s in errs]
        out[form] = {"within_5pct": float(np.mean(np.abs(e) <= 5)), "within_10pct": float(np.mean(np.abs(e) <= 10)),
                     "sd_pct": float(np.std(e)), "splits_meeting_95pct": float(np.mean(np.array(shares) >= 0.95))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checks", nargs="+", type=Path, help="check reports (their table is read from the report)")
    ap.add_argument("--train", type=int, nargs="+", default=[24, 48, 96], help="training networks per split")
    ap.add_argument("--splits", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = ["| check | networks | train | form | ±5% held out | ±10% | SD of error | splits ≥ 95% within ±5% |",
             "|---|---|---|---|---|---|---|---|"]
    report = {}
    for path in args.checks:
        check = json.loads(path.read_text())
        table = CostTable.load(check["table"])
        rows = check["networks"]
        name = f"{path.parent.name}/{path.stem}"
        for train in args.train:
            if train >= len(rows) - 4:
                continue
            res = score(rows, table, train, args.splits, args.seed)
            report[f"{name}/train{train}"] = res
            for form, r in res.items():
                lines.append(f"| {name} | {len(rows)} | {train} | {form} | {r['within_5pct']:.0%} | "
                             f"{r['within_10pct']:.0%} | {r['sd_pct']:.2f}% | {r['splits_meeting_95pct']:.0%} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
