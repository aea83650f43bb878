"""After the search: draw architectures from the learned distribution, score each through its path in the
supernet (BatchNorm statistics recalibrated per path), place them on the accuracy–cost plane, and pick one
from the Pareto front at the user's budget.

``sample_and_select(search_dir, ...)`` is the library entry point; the scorer and the cost functions are
arguments (``PathScorer`` and the search's cost tables by default), so other evaluators or devices plug in.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from squeezenas.cost.tables import CostTable
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch
from squeezenas.utils.io import atomic_write_json

SELECT_RULES = ("knee", "best")
COST_LABELS = {"gmacs": "GMACs", "latency_ms": "latency (ms)"}


# --- drawing architectures ---------------------------------------------------------------------------------------


def sample_genotypes(probabilities: torch.Tensor, macro: MacroArch, n: int, seed: int = 0,
                     max_draws: int | None = None) -> list[Genotype]:
    """Up to ``n`` distinct architectures drawn from the per-position categorical distributions (pruned
    candidates have probability 0 and are never drawn). Stops after ``max_draws`` draws (default 50·n) when
    the distribution has fewer than ``n`` likely architectures."""
    probs = probabilities.detach().to("cpu", torch.float64)
    if probs.shape != (macro.num_positions, len(macro.candidates)):
        raise ValueError(f"probabilities must be {macro.num_positions}×{len(macro.candidates)}, got {tuple(probs.shape)}")
    g = torch.Generator().manual_seed(seed)
    seen: dict[tuple[str, ...], None] = {}
    draws, max_draws = 0, max_draws or 50 * n
    chunk = max(n, 16)
    while len(seen) < n and draws < max_draws:
        idx = torch.multinomial(probs, chunk, replacement=True, generator=g).T  # (chunk, P)
        for row in idx.tolist():
            draws += 1
            seen.setdefault(tuple(macro.candidates[j] for j in row), None)
            if len(seen) >= n or draws >= max_draws:
                break
    return [Genotype(macro, ops) for ops in seen]


def log_probability(probabilities: torch.Tensor, genotype: Genotype) -> float:
    """log p(genotype) under the independent per-position distributions."""
    index = {c: j for j, c in enumerate(genotype.macro_arch.candidates)}
    p = probabilities.detach().to("cpu", torch.float64)
    return float(sum(math.log(max(float(p[i, index[c]]), 1e-300)) for i, c in enumerate(genotype.ops)))


# --- scoring through the supernet ----------------------------------------------------------------------------------


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches: Iterable[torch.Tensor], device: torch.device | str) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them on ``batches`` as a cumulative average
    (momentum None), in train mode without gradients; ends in eval mode.

    Statistics gathered while the supernet trained a mixture of paths do not describe one path alone, so a
    path scored with them is misjudged; a few batches through the path itself fix that.
    """
    bns = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    try:
        for x in batches:
            net(x.to(device, non_blocking=True))
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        net.eval()


class PathScorer:
    """Scores an architecture by running the validation data through its path of the supernet, after
    recalibrating BatchNorm on fixed training batches (the same batches for every path, for a fair ranking)."""

    def __init__(self, supernet: nn.Module, calib_batches: Sequence[torch.Tensor], val_loader: Any,
                 num_classes: int, device: torch.device | str, ignore_index: int = 255):
        self.net = supernet.to(device)
        self.calib = list(calib_batches)
        self.val_loader = val_loader
        self.num_classes = num_classes
        self.device = torch.device(device)
        self.ignore_index = ignore_index

    def __call__(self, genotype: Genotype) -> dict[str, float]:
        from squeezenas.engine.evaluate import evaluate

        self.net.set_path(genotype)
        try:
            recalibrate_bn(self.net, self.calib, self.device)
            m = evaluate(self.net, self.val_loader, self.num_classes, self.device, ignore_index=self.ignore_index)
        finally:
            self.net.set_path(None)
        return {"miou": float(m["miou"]), "pixel_accuracy": float(m["pixel_accuracy"])}


# --- Pareto front and selection ------------------------------------------------------------------------------------


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (cost ≤ and score ≥, one of them strictly): min cost, max score."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i]))
    on = [False] * len(costs)
    best = -math.inf
    for i in order:
        if scores[i] > best:
            on[i] = True
            best = scores[i]
    return on


def knee_index(costs: Sequence[float], scores: Sequence[float]) -> int:
    """The knee of a front: the point farthest above the straight line from its cheapest to its most accurate
    point, with both axes scaled to [0, 1] (where more cost stops buying much accuracy). Fewer than three
    points: the most accurate one."""
    idx = sorted(range(len(costs)), key=lambda i: costs[i])
    if len(idx) < 3:
        return max(idx, key=lambda i: scores[i])
    c0, c1 = costs[idx[0]], costs[idx[-1]]
    s0, s1 = scores[idx[0]], scores[idx[-1]]
    if c1 <= c0 or s1 <= s0:
        return max(idx, key=lambda i: scores[i])

    def above(i: int) -> float:
        x, y = (costs[i] - c0) / (c1 - c0), (scores[i] - s0) / (s1 - s0)
        return y - x  # distance to the diagonal, up to a factor √2

    return max(idx, key=above)


def select(samples: Sequence[dict[str, Any]], cost_key: str, budget: float | None = None,
           rule: str = "knee") -> int:
    """Index of the chosen sample: with a budget, the most accurate front point whose cost fits it (which is
    the most accurate sample that fits); without, the front's knee (``rule`` "knee") or its most accurate
    point ("best")."""
    if rule not in SELECT_RULES:
        raise ValueError(f"select rule must be one of {', '.join(SELECT_RULES)}, got {rule!r}")
    front = [i for i, s in enumerate(samples) if s["on_front"]]
    if not front:
        raise ValueError("no samples to choose from")
    if budget is not None:
        fits = [i for i in front if samples[i][cost_key] <= budget]
        if not fits:
            cheapest = min(samples[i][cost_key] for i in front)
            raise ValueError(f"no sampled architecture fits the budget {budget:g} ({cost_key}); the cheapest costs "
                             f"{cheapest:.4g}: raise the budget, sample more (--n) or search with a lower target")
        return max(fits, key=lambda i: (samples[i]["miou"], -samples[i][cost_key]))
    if rule == "best":
        return max(front, key=lambda i: (samples[i]["miou"], -samples[i][cost_key]))
    k = knee_index([samples[i][cost_key] for i in front], [samples[i]["miou"] for i in front])
    return front[k]


# --- the command ---------------------------------------------------------------------------------------------------


@dataclass
class SampleResult:
    samples: list[dict[str, Any]]  # every scored architecture with its costs, mIoU and on_front flag
    chosen: dict[str, Any]
    chosen_genotype: Genotype
    cost_key: str  # the cost axis of the front: "gmacs" or "latency_ms"
    budget: float | None
    paths: dict[str, Path] = field(default_factory=dict)  # pareto.json, pareto.png, the chosen genotype
    seconds: float = 0.0


def _settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _read_cache(path: Path, key: str) -> dict[tuple[str, ...], dict[str, float]]:
    """Scores already computed with the same settings (a rerun, or an interrupted one, skips them)."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by an interruption
            continue
        if d.get("settings") == key:
            out[tuple(d["genotype"])] = d["score"]
    return out


def calibration_batches(cfg: Any, n: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` fixed training batches (the search's crop, scale and batch size) for BatchNorm recalibration."""
    from torch.utils.data import DataLoader, Subset

    from squeezenas.engine.loaders import build_train_dataset

    ds = build_train_dataset(cfg.dataset, cfg.data_root, cfg.train_split, tuple(cfg.crop), tuple(cfg.scale),
                             **cfg.data_options)
    if cfg.limit_train is not None:
        ds = Subset(ds, range(min(cfg.limit_train, len(ds))))
    g = torch.Generator().manual_seed(seed)
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # the augmentation draws from the global generator (workers=0)
    try:
        loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, generator=g, drop_last=True, num_workers=0)
        batches = []
        for image, _ in loader:
            batches.append(image)
            if len(batches) >= n:
                break
    finally:
        torch.set_rng_state(state)
    if not batches:
        raise ValueError(f"the training data has fewer than {cfg.batch_size} samples: no calibration batch")
    return batches


def sample_and_select(search_dir: str | Path, n: int = 200, *, budget: float | None = None,
                      budget_kind: str | None = None, lut: CostTable | None = None, calib_batches: int = 8,
                      split: str = "val", val_limit: int | None = None, val_size: tuple[int, int] | None = None,
                      rule: str = "knee", seed: int = 0, device: str = "auto", workers: int = 2,
                      scorer: Callable[[Genotype], dict[str, float]] | None = None, out: str | Path | None = None,
                      progress: bool = True, plot: bool = True) -> SampleResult:
    """Sample ``n`` distinct architectures from the search in ``search_dir``, score and cost each, find the
    Pareto front and choose one; writes ``pareto.json``, ``pareto.png`` and the chosen genotype
    (``out``, default ``search_dir/chosen_genotype.json``).

    ``budget_kind`` "ms" (latency: needs ``lut`` or a latency search) or "gmacs" sets the front's cost axis;
    without it the search's own cost is used. ``scorer`` replaces the supernet path scorer.
    """
    from squeezenas.cost.tables import mac_table
    from squeezenas.search.search import calibrate, load_search, resolve_device, write_genotype

    t_start = time.perf_counter()
    search_dir = Path(search_dir)
    dev = resolve_device(device)
    net, cfg, ckpt = load_search(search_dir, dev)
    macro = net.macro
    size = tuple(ckpt["cost"]["size"])
    num_classes = int(ckpt["num_classes"])
    searched = CostTable.load(search_dir / "cost_table.json")

    # cost functions: MACs always, latency when a table is at hand (calibrated if it holds a calibration)
    macs = searched if searched.kind == "macs" else mac_table(macro, size, num_classes=num_classes)
    lat = lut if lut is not None else (searched if searched.kind == "latency" else None)
    if lat is not None:
        lat.check_compatible(macro, tuple(lat.input_size) if lut is not None else size, where="latency table")
    if budget_kind not in (None, "ms", "gmacs"):
        raise ValueError(f"budget kind must be 'ms' or 'gmacs', got {budget_kind!r}")
    if budget_kind == "ms" and lat is None:
        raise ValueError("a latency budget needs a latency table: pass --lut TABLE.json (or search with --cost latency)")
    if budget is not None and budget_kind is None:
        budget_kind = "ms" if searched.kind == "latency" else "gmacs"
    cost_key = {"ms": "latency_ms", "gmacs": "gmacs"}[budget_kind] if budget_kind else (
        "latency_ms" if searched.kind == "latency" else "gmacs")

    probs = net.probabilities().detach().cpu()
    genotypes = sample_genotypes(probs, macro, n, seed=seed)
    argmax = net.derive()
    if argmax.ops not in {g.ops for g in genotypes}:
        genotypes.append(argmax)

    settings = {"split": split, "calib_batches": calib_batches, "val_limit": val_limit,
                "val_size": list(val_size) if val_size else None, "seed": seed, "epoch": int(ckpt["epoch"])}
    key = _settings_key(settings)
    cache_path = search_dir / "sample_cache.jsonl"
    cache = _read_cache(cache_path, key) if scorer is None else {}
    if scorer is None:
        from squeezenas.data import dataset_info
        from squeezenas.engine.loaders import build_eval_dataset, build_eval_loader

        todo = [g for g in genotypes if g.ops not in cache]
        if todo:
            val = build_eval_dataset(cfg.dataset, cfg.data_root, split, val_size, val_limit, **cfg.data_options)
            loader = build_eval_loader(val, workers=workers)
            scorer = PathScorer(net, calibration_batches(cfg, calib_batches, seed), loader, num_classes, dev,
                                dataset_info(cfg.dataset, cfg.data_root).ignore_index)

    samples: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(genotypes), desc="scoring paths", unit="arch", dynamic_ncols=True)
    for g in genotypes:
        score = cache.get(g.ops)
        if score is None:
            score = scorer(g)
            if cache_path.parent.is_dir() and isinstance(scorer, PathScorer):
                with cache_path.open("a") as f:
                    f.write(json.dumps({"settings": key, "genotype": list(g.ops), "score": score}) + "\n")
        row = {"genotype": list(g.ops), **score, "gmacs": calibrate(macs, macs.predict(g)),
               "log_prob": log_probability(probs, g), "most_probable": g.ops == argmax.ops}
        if lat is not None:
            row["latency_ms"] = calibrate(lat, lat.predict(g))
        samples.append(row)
        if bar is not None:
            bar.set_postfix(miou=f"{row['miou']:.3f}")
            bar.update(1)
    if bar is not None:
        bar.close()

    flags = pareto_front([s[cost_key] for s in samples], [s["miou"] for s in samples])
    for s, f in zip(samples, flags):
        s["on_front"] = f
    chosen_i = select(samples, cost_key, budget, rule)
    chosen = samples[chosen_i]
    chosen_genotype = Genotype(macro, tuple(chosen["genotype"]))

    out_path = Path(out) if out is not None else search_dir / "chosen_genotype.json"
    unit_label = COST_LABELS[cost_key]
    meta = {"source": "sample (Pareto front of the searched distribution)", "search": str(search_dir),
            "miou_supernet_estimate": chosen["miou"], "gmacs": chosen["gmacs"],
            **({"latency_ms": chosen["latency_ms"]} if "latency_ms" in chosen else {}),
            "budget": budget, "budget_kind": budget_kind, "rule": "budget" if budget is not None else rule}
    write_genotype(out_path, chosen_genotype, meta)
    report = {"search": str(search_dir), "n_requested": n, "n_scored": len(samples), "cost_key": cost_key,
              "budget": budget, "rule": "budget" if budget is not None else rule, "settings": settings,
              "size": list(size), "latency_table": bool(lat is not None), "chosen_index": chosen_i,
              "chosen": chosen, "samples": samples}
    paths = {"pareto.json": search_dir / "pareto.json", "genotype": out_path}
    atomic_write_json(paths["pareto.json"], report)
    if plot:
        from squeezenas.plots import pareto_plot

        most = next((s for s in samples if s["most_probable"]), None)
        paths["pareto.png"] = pareto_plot(
            samples, search_dir / "pareto.png", cost_key=cost_key, cost_label=unit_label, chosen=chosen,
            budget=budget, most_likely=most,
            title=f"{len(samples)} architectures sampled from {search_dir.name} ({macro.name}, {size[0]}×{size[1]})")
    return SampleResult(samples, chosen, chosen_genotype, cost_key, budget, paths, time.perf_counter() - t_start)
