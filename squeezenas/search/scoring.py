"""Scoring an architecture through its path of the trained supernet: its BatchNorm statistics re-estimated on
fixed training batches, then mIoU on the validation split; and the cache that lets a rerun skip paths already
scored with the same settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from squeezenas.search.config import SearchConfig
from squeezenas.space.genotype import Genotype


@torch.no_grad()
def reestimate_bn(net: nn.Module, batches: Iterable[torch.Tensor], device: torch.device | str) -> None:
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


def bn_batches(cfg: SearchConfig, n: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` fixed training batches of the search (its crop, scale and batch size) for re-estimating BatchNorm."""
    from torch.utils.data import Subset

    from squeezenas.engine.loaders import batches, build_shuffled_loader, build_train_dataset

    ds = build_train_dataset(cfg.dataset, cfg.data_root, cfg.train_split, tuple(cfg.crop), tuple(cfg.scale),
                             **cfg.data_options)
    if cfg.limit_train is not None:
        ds = Subset(ds, range(min(cfg.limit_train, len(ds))))
    loader = build_shuffled_loader(ds, cfg.batch_size)
    loader.generator.manual_seed(seed)
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # the augmentation draws from the global generator (workers=0)
    try:
        out = []
        for image, _ in batches(loader):
            out.append(image)
            if len(out) >= n:
                break
    finally:
        torch.set_rng_state(state)
    return out


class PathScorer:
    """Scores an architecture by running the validation data through its path of the supernet, after
    re-estimating BatchNorm on fixed training batches (the same batches for every path, for a fair ranking)."""

    def __init__(self, supernet: nn.Module, bn_batches: Sequence[torch.Tensor], val_loader: Any,
                 num_classes: int, device: torch.device | str, ignore_index: int = 255):
        self.net = supernet.to(device)
        self.bn_batches = list(bn_batches)
        self.val_loader = val_loader
        self.num_classes = num_classes
        self.device = torch.device(device)
        self.ignore_index = ignore_index

    def __call__(self, genotype: Genotype) -> dict[str, float]:
        from squeezenas.engine.evaluate import evaluate

        self.net.set_path(genotype)
        try:
            reestimate_bn(self.net, self.bn_batches, self.device)
            m = evaluate(self.net, self.val_loader, self.num_classes, self.device, ignore_index=self.ignore_index)
        finally:
            self.net.set_path(None)
        return {"miou": float(m["miou"]), "pixel_accuracy": float(m["pixel_accuracy"])}


class ScoreCache:
    """Scores already computed with the same settings, one JSON line each in ``path`` (an interrupted or
    repeated sample step skips them); a line cut short by an interruption is ignored."""

    def __init__(self, path: Path, settings: dict[str, Any]):
        self.path = path
        self.key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        self.scores: dict[tuple[str, ...], dict[str, float]] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if d.get("settings") == self.key:
                    self.scores[tuple(d["genotype"])] = d["score"]

    def get(self, genotype: Genotype) -> dict[str, float] | None:
        return self.scores.get(genotype.ops)

    def add(self, genotype: Genotype, score: dict[str, float]) -> None:
        self.scores[genotype.ops] = score
        with self.path.open("a") as f:
            f.write(json.dumps({"settings": self.key, "genotype": list(genotype.ops), "score": score}) + "\n")


def score_paths(genotypes: Sequence[Genotype], scorer: Callable[[Genotype], dict[str, float]],
                cache: ScoreCache | None = None, progress: bool = False) -> dict[tuple[str, ...], dict[str, float]]:
    """``scorer``'s score of each genotype (added to ``cache`` as soon as it is known, so an interrupted run keeps
    it), keyed by the genotype's ops. Each path is scored alone: the order, and the other paths, never matter."""
    from tqdm import tqdm

    scores: dict[tuple[str, ...], dict[str, float]] = {}
    bar = tqdm(total=len(genotypes), desc="scoring paths", unit="arch", dynamic_ncols=True, disable=not progress)
    for g in genotypes:
        scores[g.ops] = score = scorer(g)
        if cache is not None:
            cache.add(g, score)
        bar.set_postfix(miou=f"{score['miou']:.3f}")
        bar.update(1)
    bar.close()
    return scores
