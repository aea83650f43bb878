"""After the search: draw architectures from the learned distribution, score and cost each, place them on the
accuracy–cost plane, and pick one from the Pareto front at the user's budget.

``sample_and_select(SampleConfig(...))`` is the library entry point; the scorer and the latency table are
arguments (``PathScorer`` and the search's or the config's table by default), so other evaluators or devices
plug in. It draws nothing: ``pareto.json`` holds what a plot of the plane needs (``viz.search_plots`` draws it).

Under torchrun the paths are shared out: each process re-estimates and scores its share on its own (no
collective between two paths, so nothing waits), the scores are gathered once, and every process then holds
what one process would have computed; the finalists of the second look are scored on shards of the split
(the confusion matrices summed), rank 0 times them alone and writes.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from squeezenas.cost.tables import CostTable, mac_table
from squeezenas.engine.distributed import (
    DistInfo, broadcast_object, cleanup_distributed, env_dist_info, gather_objects, init_distributed, is_dist,
    resolve_device,
)
from squeezenas.search.checkpoint import load_search
from squeezenas.search.config import SampleConfig, SearchConfig
from squeezenas.search.pareto import pareto_front, select
from squeezenas.search.scoring import PathScorer, ScoreCache, bn_batches, score_paths
from squeezenas.search.verify import choose, finalists, measure_latency, rescore
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch
from squeezenas.utils.io import LOCK_FILE, RunLock, atomic_write_json, check_output

COST_KEYS = {"ms": "latency_ms", "gmacs": "gmacs"}  # budget kind → the samples' cost field
GATHER_TIMEOUT = datetime.timedelta(hours=2)  # how long a process that has scored its share waits for the others


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


@dataclass
class SampleResult:
    samples: list[dict[str, Any]]  # every scored architecture with its costs, mIoU and on_front flag
    chosen: dict[str, Any]
    chosen_genotype: Genotype
    cost_key: str  # the cost axis of the front: "gmacs" or "latency_ms"
    budget: float | None
    paths: dict[str, Path] = field(default_factory=dict)  # pareto.json, the chosen genotype
    seconds: float = 0.0


def sample_and_select(cfg: SampleConfig, *, scorer: Callable[[Genotype], dict[str, float]] | None = None,
                      lut: CostTable | None = None) -> SampleResult:
    """Sample ``cfg.n`` distinct architectures from the search in ``cfg.search``, score and cost each, find the
    Pareto front and choose one; writes ``pareto.json`` and the chosen genotype (``cfg.out``, default
    ``SEARCH/chosen_genotype.json``).

    Costs: GMACs always; latency from ``lut`` (a loaded table), else the table ``cfg.lut`` names, else the
    search's own when it searched on latency; a table must be of the search's space and deployment size.
    ``cfg.budget_kind`` "ms" (needs a latency table) or "gmacs" sets the front's cost axis; without it the
    search's own cost. ``scorer`` replaces the supernet path scorer (and its cache).
    """
    t_start = time.perf_counter()
    info = env_dist_info()
    if is_dist():
        raise RuntimeError("sample_and_select joins the torchrun process group itself, after the paths are scored "
                           "(each process scores its share alone); call it before init_process_group")
    search_dir = Path(cfg.search)
    dev = resolve_device(cfg.device, info)
    net, scfg, ckpt = load_search(search_dir, dev)
    _check_finished(search_dir, ckpt, scfg)
    out_path = check_output(cfg.out if cfg.out is not None else search_dir / "chosen_genotype.json", what="--out")
    macro = net.macro
    size = tuple(ckpt["cost"]["size"])
    num_classes = int(ckpt["num_classes"])
    searched = CostTable.load(search_dir / "cost_table.json")

    # cost functions: MACs always, latency when a table is at hand (calibrated if it holds a calibration)
    macs = searched if searched.kind == "macs" else mac_table(macro, size, num_classes=num_classes)
    lat = _latency_table(cfg, lut, searched, macro, size)
    if cfg.budget_kind == "ms" and lat is None:
        raise ValueError("a latency budget needs a latency table: pass --lut TABLE.json (or search with --cost latency)")
    budget_kind = cfg.budget_kind
    if cfg.budget is not None and budget_kind is None:
        budget_kind = "ms" if searched.kind == "latency" else "gmacs"
    cost_key = COST_KEYS[budget_kind] if budget_kind else ("latency_ms" if searched.kind == "latency" else "gmacs")

    probs = net.probabilities().detach().cpu()
    genotypes = sample_genotypes(probs, macro, cfg.n, seed=cfg.seed)
    argmax = net.derive()
    if argmax.ops not in {g.ops for g in genotypes}:
        genotypes.append(argmax)

    settings = {"split": cfg.split, "bn_batches": cfg.bn_batches, "val_limit": cfg.val_limit,
                "val_size": list(cfg.val_size) if cfg.val_size else None, "seed": cfg.seed,
                "epoch": int(ckpt["epoch"])}
    cache = ScoreCache(search_dir / "sample_cache.jsonl", settings) if scorer is None else None
    todo = [g for g in genotypes if cache is None or cache.get(g) is None]
    if scorer is None and todo:
        scorer = _path_scorer(cfg, scfg, net, num_classes, dev)

    lock = RunLock(search_dir / LOCK_FILE, "search folder") if info.is_main else contextlib.nullcontext()
    with lock:  # the cache and pareto.json are written here (by rank 0)
        # alone, each score is cached at once; under torchrun after the gather (every rank has read the cache by
        # then, so all agree on what is left to score)
        mine = score_paths(todo[info.rank::info.world_size], scorer, None if info.distributed else cache,
                           cfg.progress and info.is_main)
        owns_group = info.distributed
        init_distributed(dev, timeout=GATHER_TIMEOUT)  # after the scoring: evaluate() reduces over the group
        try:
            scores = {ops: score for part in gather_objects(mine) for ops, score in part.items()}
            if cache is not None and info.distributed and info.is_main:
                for g in todo:
                    cache.add(g, scores[g.ops])
            return _select(cfg, info, genotypes, scores, cache, probs, argmax, macs, lat, cost_key, budget_kind,
                           settings, size, scorer, scfg, net, num_classes, dev, out_path, t_start)
        finally:
            if owns_group:
                cleanup_distributed()


def _select(cfg: SampleConfig, info: DistInfo, genotypes: list[Genotype], scores: dict[tuple[str, ...], Any],
            cache: ScoreCache | None, probs: torch.Tensor, argmax: Genotype, macs: CostTable, lat: CostTable | None,
            cost_key: str, budget_kind: str | None, settings: dict[str, Any], size: tuple[int, int], scorer: Any,
            scfg: SearchConfig, net: Any, num_classes: int, dev: torch.device, out_path: Path,
            t_start: float) -> SampleResult:
    """Every sample's row, the front, the choice (and the second look); rank 0 writes the files."""
    search_dir, macro = Path(cfg.search), net.macro
    samples: list[dict[str, Any]] = []
    for g in genotypes:
        score = scores.get(g.ops) or cache.get(g)
        row = {"genotype": list(g.ops), **score, "gmacs": macs.predict(g, calibrated=True),
               "log_prob": log_probability(probs, g), "most_probable": g.ops == argmax.ops}
        if lat is not None:
            row["latency_ms"] = lat.predict(g, calibrated=True)
        samples.append(row)

    for s, f in zip(samples, pareto_front([s[cost_key] for s in samples], [s["miou"] for s in samples])):
        s["on_front"] = f
    rule = "budget" if cfg.budget is not None else cfg.select
    chosen_i = select(samples, cost_key, cfg.budget, cfg.select)
    second_look = None
    if cfg.budget is not None and cfg.finalists:
        chosen_i, second_look, samples = _second_look(cfg, info, samples, chosen_i, cost_key, scorer, scfg, net,
                                                      num_classes, dev, lat)
    chosen = samples[chosen_i]
    chosen_genotype = Genotype(macro, tuple(chosen["genotype"]))
    paths = {"pareto.json": search_dir / "pareto.json", "genotype": out_path}
    if info.is_main:
        chosen_genotype.save(out_path, meta={
            "source": "sample (Pareto front of the searched distribution)", "search": str(search_dir),
            "miou_supernet_estimate": chosen["miou"], "gmacs": chosen["gmacs"],
            **({"latency_ms": chosen["latency_ms"]} if "latency_ms" in chosen else {}),
            "budget": cfg.budget, "budget_kind": budget_kind, "rule": rule})
        report = {"search": str(search_dir), "n_requested": cfg.n, "n_scored": len(samples), "cost_key": cost_key,
                  "budget": cfg.budget, "rule": rule, "settings": settings, "size": list(size),
                  "latency_table": bool(lat is not None), "chosen_index": chosen_i, "chosen": chosen,
                  "second_look": second_look, "world_size": info.world_size, "samples": samples}
        atomic_write_json(paths["pareto.json"], report)
    return SampleResult(samples, chosen, chosen_genotype, cost_key, cfg.budget, paths, time.perf_counter() - t_start)


def _second_look(cfg: SampleConfig, info: DistInfo, samples: list[dict[str, Any]], first: int, cost_key: str,
                 scorer: Any, searched: SearchConfig, net: Any, num_classes: int, device: torch.device,
                 lat: CostTable | None) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """The finalists (the most accurate front samples within the budget) re-scored on more data and, with a
    latency table of this device, timed end to end; the choice made again on those figures. Under torchrun
    every process scores a shard of the split for each finalist, then rank 0 alone times them and chooses."""
    top = finalists(samples, cost_key, cfg.budget, cfg.finalists)
    if isinstance(scorer, PathScorer) or scorer is None:
        scorer = _path_scorer(cfg, searched, net, num_classes, device, limit=cfg.rescore_limit, dist=info)
    rescore(samples, top, scorer, net.macro)
    result = None
    if info.is_main:  # timed while the other processes wait, so that they do not disturb the measurement
        timing = {"measured": False, "reason": "no latency table" if lat is None else "measure is off"}
        if lat is not None and cfg.measure:
            timing = measure_latency(samples, top, lat, net.macro, num_classes, fresh=cfg.measure_fresh)
        pick = choose(samples, top, cost_key, cfg.budget)
        report = {"finalists": top, "first_choice": first, "rescore_limit": cfg.rescore_limit, **timing}
        if pick is None:  # every finalist measured above the budget: the fastest of them, flagged
            pick = min(top, key=lambda i: samples[i].get("measured_ms", samples[i][cost_key]))
            report["over_budget"] = True
            import warnings

            warnings.warn(f"every finalist measured above the budget {cfg.budget:g} ms; chose the fastest "
                          f"({samples[pick]['measured_ms']:.4g} ms): raise the budget, or search with a lower "
                          "target", stacklevel=2)
        result = (pick, report, samples)
    return broadcast_object(result)


def _check_finished(search_dir: Path, ckpt: dict[str, Any], scfg: SearchConfig) -> None:
    if int(ckpt["epoch"]) < scfg.epochs:
        raise ValueError(f"the search in {search_dir} has finished {ckpt['epoch']} of its {scfg.epochs} epochs; "
                         f"continue it first: squeezenas search --out {search_dir} --resume")


def path_scorer(cfg: SampleConfig, limit: int | None | str = "config") -> PathScorer:
    """The path scorer of the finished search in ``cfg.search`` (its supernet, BatchNorm batches and validation
    split, as ``sample_and_select`` scores), to score given genotypes again, e.g. on the whole split
    (``limit=None``)."""
    dev = resolve_device(cfg.device, env_dist_info())
    net, scfg, ckpt = load_search(Path(cfg.search), dev)
    _check_finished(Path(cfg.search), ckpt, scfg)
    return _path_scorer(cfg, scfg, net, int(ckpt["num_classes"]), dev, limit=limit)


def _path_scorer(cfg: SampleConfig, searched: SearchConfig, net: Any, num_classes: int, device: torch.device,
                 limit: int | None | str = "config", dist: DistInfo = DistInfo()) -> PathScorer:
    """The supernet path scorer on the search's data: BatchNorm batches from its training split (its crop and
    batch size), mIoU on ``cfg.split`` (``cfg.val_limit`` images, or ``limit``: None for the whole split); with
    ``dist`` each process scores its shard of the split and ``evaluate`` sums the confusion matrices."""
    from squeezenas.data import dataset_info
    from squeezenas.engine.loaders import build_eval_dataset, build_eval_loader

    limit = cfg.val_limit if limit == "config" else limit
    val = build_eval_dataset(searched.dataset, searched.data_root, cfg.split, cfg.val_size, limit,
                             **searched.data_options)
    return PathScorer(net, bn_batches(searched, cfg.bn_batches, cfg.seed), build_eval_loader(val, cfg.workers, dist),
                      num_classes, device, dataset_info(searched.dataset, searched.data_root).ignore_index)


def _latency_table(cfg: SampleConfig, lut: CostTable | None, searched: CostTable, macro: MacroArch,
                   size: tuple[int, int]) -> CostTable | None:
    """The latency table to cost the samples with (None: none at hand), checked against the search's space
    and deployment size: a table built at another resolution would cost other networks."""
    if lut is not None:
        lut.check_compatible(macro, size, where="latency table")
        return lut
    if cfg.lut is not None:
        from squeezenas.cost.lut import load_lut

        return load_lut(cfg.lut, macro, size, warn_device=True)
    return searched if searched.kind == "latency" else None
