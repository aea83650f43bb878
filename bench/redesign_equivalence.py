"""Fingerprints of a seeded search and a seeded latency-table build, to show a refactoring changed no result.

Writes one JSON file: the genotype, θ and final distribution of a 2-epoch synthetic search (Small space, CPU, one
thread, seed 0), and a whole latency table of the Small space at 64×128 built with a deterministic stand-in for
the timer (a part's "time" is a function of its parameter count and input shape, so the table depends only on
what the build plans and assembles, never on this machine's speed). Run it before and after a change and
compare the two files (``--compare A.json B.json``): every number must be equal.

    python bench/redesign_equivalence.py --out bench/results/redesign/before.json
    python bench/redesign_equivalence.py --out bench/results/redesign/after.json
    python bench/redesign_equivalence.py --compare bench/results/redesign/before.json bench/results/redesign/after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch


def _fake_timing(module, shape, config):
    from squeezenas.cost.timing import Timing

    params = sum(p.numel() for p in module.parameters()) if hasattr(module, "parameters") else 0
    elems = 1
    for s in shape:
        elems *= int(s)
    ms = 1e-3 * (1 + params / 1000 + elems / 10_000)
    return Timing(median_ms=ms, iqr_ms=ms / 10, p10_ms=ms * 0.95, p90_ms=ms * 1.1, mean_ms=ms, min_ms=ms * 0.9,
                  repeats=10, calls_per_repeat=1, backend=config.backend, device=config.device, dtype=config.dtype,
                  threads=config.threads or 1, batch=config.batch, channels_last=config.channels_last,
                  input_shape=tuple(shape))


def lut_fingerprint() -> dict:
    from squeezenas.cost.lut import build_lut
    from squeezenas.cost.timing import TimingConfig

    config = TimingConfig(threads=1, statistic="min")
    table = build_lut("small", (64, 128), config, num_classes=8, progress=False, measure_fn=_fake_timing,
                      max_other_cpu=None, rounds=2, canary=False)
    return {"table": table.table, "fixed": table.fixed, "cells": table.meta["cells"],
            "fixed_keys": table.meta["fixed_keys"]}


# The search's formulation before the redesign (its defaults then); later defaults differ (docs/SEARCH.md).
PAPER_FORMULATION = {"warmup_epochs": 0, "cost_ramp": 0.0, "theta": "joint", "cost_through": "softmax",
                     "supernet": "mixture"}


def search_fingerprint() -> dict:
    from squeezenas.cost.tables import mac_table
    from squeezenas.search.config import SearchConfig
    try:  # the redesign's name; the old one (squeezenas.search.search.search) gave before.json
        from squeezenas.search import run_search as run
    except ImportError:
        from squeezenas.search.search import search as run  # the module before the redesign
    known = {f.name for f in __import__("dataclasses").fields(SearchConfig)}
    formulation = {k: v for k, v in PAPER_FORMULATION.items() if k in known}  # fields the version has

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SearchConfig(space="small", dataset="synthetic", data_options={"num_samples": 8, "size": [64, 128]},
                           crop=(64, 128), scale=(1.0, 1.0), size=(64, 128), batch_size=2, epochs=2,
                           steps_per_epoch=3, workers=0, theta_lr=0.1, alpha=2.0, prune_threshold=0.07,
                           progress=False, tensorboard=False, out=str(Path(tmp) / "run"),
                           **formulation)
        r = run(cfg, mac_table("small", (64, 128), num_classes=8))
        ckpt = torch.load(Path(tmp) / "run" / "checkpoint.pt", weights_only=True)
        weights = hashlib.sha256()
        for k in sorted(ckpt["supernet"]):
            weights.update(k.encode())
            weights.update(ckpt["supernet"][k].float().numpy().tobytes())
        return {"genotype": list(r.genotype.ops), "theta": ckpt["supernet"]["theta"].tolist(),
                "probabilities": r.probabilities, "pruned": [list(p) for p in r.pruned],
                "expected_cost": r.expected_cost, "losses": [[row["loss"], row["ce"]] for row in r.history],
                "weights_sha256": weights.hexdigest()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = p.parse_args()
    if args.compare:
        a, b = (json.loads(f.read_text()) for f in args.compare)
        diff = [k for k in ("search", "lut") if a[k] != b[k]]
        print("identical" if not diff else f"DIFFERENT: {', '.join(diff)}")
        return 1 if diff else 0
    torch.set_num_threads(1)
    result = {"search": search_fingerprint(), "lut": lut_fingerprint(), "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}: genotype {' '.join(result['search']['genotype'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
