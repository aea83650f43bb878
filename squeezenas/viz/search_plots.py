"""Search pictures: the architecture distribution over the epochs (heat-map) and the accuracy–cost plane (Pareto)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from squeezenas.space.macro import MacroArch

COST_LABELS = {"gmacs": "GMACs", "latency_ms": "latency (ms)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def theta_heatmap(theta_history: Sequence[dict[str, Any]], macro: MacroArch, path: str | Path,
                  title: str | None = None) -> Path:
    """One small heat-map per searched position: candidates (rows) × epochs (columns), colour = p(i, j).

    ``theta_history`` is the ``epochs`` list of ``theta.json`` (epoch 0 is the uniform start); pruned
    candidates show as hatched cells from the epoch they were removed.
    """
    import numpy as np

    plt = _pyplot()
    codes = list(macro.candidates)
    positions = macro.positions()
    probs = np.array([h["probabilities"] for h in theta_history], dtype=float)  # (E, P, C)
    alive = np.array([h["alive"] for h in theta_history], dtype=bool)
    epochs = [h["epoch"] for h in theta_history]
    vmax = max(0.25, float(probs.max()))  # uniform is 1/13: a 0–1 scale would hide the early search
    n = len(positions)
    cols = min(6, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols + 1.4, 2.3 * rows + 0.6), squeeze=False,
                             sharex=True, sharey=True)
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        data = np.ma.masked_where(~alive[:, k, :].T, probs[:, k, :].T)
        im = ax.imshow(data, aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest",
                       extent=(-0.5, len(epochs) - 0.5, len(codes) - 0.5, -0.5))
        ax.set_facecolor("#dddddd")
        p = positions[k]
        ax.set_title(f"{k}: {p.c_in}→{p.c_out}" + (" s2" if p.stride == 2 else ""), fontsize=8,
                     color="#c0392b" if p.stride == 2 else "black")
        ax.set_yticks(range(len(codes)))
        ax.set_yticklabels(codes, fontsize=5)
        ticks = range(0, len(epochs), max(1, len(epochs) // 5))
        ax.set_xticks(list(ticks))
        ax.set_xticklabels([str(epochs[t]) for t in ticks], fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=7)
    fig.suptitle(title or f"architecture distribution over the search ({macro.name}; grey: pruned)", fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="p(candidate)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto_plot(samples: Sequence[dict[str, Any]], path: str | Path, *, cost_key: str, cost_label: str,
                chosen: dict[str, Any] | None = None, budget: float | None = None, title: str | None = None,
                most_likely: dict[str, Any] | None = None) -> Path:
    """mIoU (supernet path estimate) against cost for every sampled architecture, like the paper's Figure 6:
    samples grey, the Pareto front as a red staircase, the chosen network starred, the budget a dashed line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs = [s[cost_key] for s in samples]
    ys = [100 * s["miou"] for s in samples]
    ax.scatter(xs, ys, s=14, c="#9aa5b1", label=f"sampled ({len(samples)})", zorder=2)
    front = sorted((s for s in samples if s.get("on_front")), key=lambda s: s[cost_key])
    if front:
        fx, fy = [s[cost_key] for s in front], [100 * s["miou"] for s in front]
        ax.step(fx, fy, where="post", color="#c0392b", lw=1.2, zorder=3)
        ax.scatter(fx, fy, s=26, c="#c0392b", label=f"Pareto front ({len(front)})", zorder=4)
    if most_likely is not None:
        ax.scatter([most_likely[cost_key]], [100 * most_likely["miou"]], s=60, marker="D", facecolors="none",
                   edgecolors="#2c3e50", lw=1.4, label="most probable (argmax θ)", zorder=5)
    if budget is not None:
        ax.axvline(budget, color="#2c7fb8", ls="--", lw=1.2, label=f"budget {budget:g} {cost_label}", zorder=1)
    if chosen is not None:
        ax.scatter([chosen[cost_key]], [100 * chosen["miou"]], s=180, marker="*", c="#f1c40f", edgecolors="black",
                   lw=0.8, label="chosen", zorder=6)
    ax.set_xlabel(cost_label)
    ax.set_ylabel("mIoU (%) through the supernet, validation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "sampled architectures: accuracy against cost", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_search(search_dir: str | Path) -> Path:
    """``theta_heatmap.png`` of a search folder, from its ``theta.json`` (the space from its cost table)."""
    import json

    from squeezenas.cost.tables import CostTable

    search_dir = Path(search_dir)
    theta = json.loads((search_dir / "theta.json").read_text())
    macro = CostTable.load(search_dir / "cost_table.json").macro
    return theta_heatmap(theta["epochs"], macro, search_dir / "theta_heatmap.png")


def draw_selection(search_dir: str | Path) -> Path:
    """``pareto.png`` of a search folder, from the ``pareto.json`` that ``squeezenas sample`` wrote."""
    import json

    search_dir = Path(search_dir)
    report = json.loads((search_dir / "pareto.json").read_text())
    samples, cost_key = report["samples"], report["cost_key"]
    h, w = report["size"]
    most = next((s for s in samples if s.get("most_probable")), None)
    return pareto_plot(samples, search_dir / "pareto.png", cost_key=cost_key, cost_label=COST_LABELS[cost_key],
                       chosen=report["chosen"], budget=report.get("budget"), most_likely=most,
                       title=f"{len(samples)} architectures sampled from {search_dir.name} ({h}×{w})")
