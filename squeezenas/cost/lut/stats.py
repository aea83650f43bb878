"""How well a latency table predicts end-to-end measurements: calibration fit, held-out predictions, errors,
rank correlations (Kendall τ, Spearman ρ; also used by the ranking benchmarks of the search)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def fit_calibration(predicted: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """Least-squares (overhead, scale) with measured ≈ overhead + scale · predicted.

    With fewer than two distinct predictions the scale cannot be fitted: scale 1 and the mean difference.
    A fit with a non-positive scale falls back to a scale through the origin.
    """
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    if len(p) == 0:
        raise ValueError("fit_calibration: no points")
    if len(p) < 2 or np.ptp(p) == 0:
        return float(np.mean(m - p)), 1.0
    scale, overhead = np.polyfit(p, m, 1)
    if scale <= 0:
        # Noise swamped the spread (e.g. a busy machine): a calibration that reverses the table's order is
        # meaningless, so keep the table's order and fit only a scale through the origin.
        return 0.0, float(np.dot(p, m) / np.dot(p, p))
    return float(overhead), float(scale)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b between two rankings (ties in either counted as neither concordant nor discordant)."""
    if len(a) != len(b):
        raise ValueError("kendall_tau: sequences of different length")
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denom if denom else float("nan")


# The shares of networks predicted within these relative errors, as latency predictors are reported in the field
# (nn-Meter, LitePred: "±5% / ±10% accuracy").
WITHIN_PCT = (5, 10)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's ρ: the Pearson correlation of the ranks (ties get their mean rank)."""
    def ranks(x: Sequence[float]) -> np.ndarray:
        x = np.asarray(x, float)
        order = x.argsort()
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):
            r[x == v] = r[x == v].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def error_summary(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """MAPE (%), max absolute percentage error, max absolute error (ms), mean signed error (%), Kendall τ, and
    the share of networks within ±5% and ±10% of their measurement (``within_5pct``, ``within_10pct``, in [0, 1])."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    pct = (p - m) / m * 100
    return {"mape": float(np.mean(np.abs(pct))), "max_abs_pct_error": float(np.max(np.abs(pct))),
            "max_abs_error_ms": float(np.max(np.abs(p - m))), "mean_signed_pct_error": float(np.mean(pct)),
            "kendall_tau": kendall_tau(list(p), list(m)),
            **{f"within_{w}pct": float(np.mean(np.abs(pct) <= w)) for w in WITHIN_PCT}}


def repeatability(round_values: Sequence[Sequence[float]]) -> dict[str, float] | None:
    """How far each network's figure moves when it is timed again: the gap (%) between the medians of its odd and
    of its even rounds (pass the rounds speed-normalised, as the figure is; with two rounds, the gap between them).
    The figure of a network whose gap exceeds 5% might have come out more than 5% apart in another check, so a ±5%
    share above ``within_5pct`` (the share of networks whose gap is at most 5%) rests partly on luck. None with
    fewer than two rounds."""
    halves = [(float(np.median(v[0::2])), float(np.median(v[1::2]))) for v in round_values if len(v) > 1]
    gaps = np.array([max(a, b) / min(a, b) - 1 for a, b in halves]) * 100
    if not len(gaps):
        return None
    return {"n": len(gaps), "median_round_gap_pct": float(np.median(gaps)), "max_round_gap_pct": float(np.max(gaps)),
            **{f"within_{w}pct": float(np.mean(gaps <= w)) for w in WITHIN_PCT}}


def leave_one_out(predicted: Sequence[float], measured: Sequence[float]) -> list[float]:
    """Calibrated predictions, each from a calibration fitted on all the other networks (held-out)."""
    p, m = list(predicted), list(measured)
    out = []
    for i in range(len(p)):
        overhead, scale = fit_calibration(p[:i] + p[i + 1:], m[:i] + m[i + 1:]) if len(p) > 1 else (0.0, 1.0)
        out.append(overhead + scale * p[i])
    return out
