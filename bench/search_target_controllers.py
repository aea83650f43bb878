"""Why the cost target is a projection and not a controller on log α: a toy of the θ optimisation.

θ (20 positions × 13 candidates, Adam as in the search) is pulled by an "accuracy" term that prefers expensive
candidates (or nothing), plus Gumbel-like gradient noise, and held at a target expected cost by either
  pi:      loss += α·E/E_ref with log α driven by a PI controller on (E − T)/T (α > 0), or
  project: the KL projection of squeezenas.search.TargetProjector after every step (no cost term in the loss).
Reports the relative error of the final expected cost for several search lengths, targets and pulls.

    .venv/bin/python bench/search_target_controllers.py
"""

from __future__ import annotations

import json
import math

import torch

from squeezenas.cost.tables import CostTable
from squeezenas.search import CostModel, TargetProjector
from squeezenas.space.macro import get_macro


def toy_cost(seed: int = 0) -> CostModel:
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(20, 13, generator=g) * torch.linspace(0.2, 2.0, 20)[:, None]
    m[:, -1] = 0.01  # skip: nearly free
    macro = get_macro("small")
    return CostModel.from_table(CostTable("latency", "ms", macro, (64, 128), macro.candidates, m.tolist(),
                                          {"stem": 0.5, "decoder": 0.5}))


def run(method: str, cost: CostModel, frac: float, steps: int, lr: float, noise: float, pull: float,
        ki: float = 0.2, kp: float = 1.0, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    alive = torch.ones(20, 13, dtype=torch.bool)
    lo, hi = cost.table.bounds(alive)
    target = lo + frac * (hi - lo)
    benefit = pull * torch.log(cost.matrix + 0.05)
    theta = torch.zeros(20, 13, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    proj = TargetProjector(target, cost.expected(theta.softmax(-1)), ramp_steps=int(0.3 * steps))
    u = math.log(0.1)
    for s in range(steps):
        p = theta.softmax(-1)
        loss = -(p * benefit).sum() + (theta * noise * torch.randn(20, 13, generator=g)).sum()
        if method == "pi":
            e = max(-1.0, min(1.0, (cost.expected(p) - target) / target))
            loss = loss + math.exp(u + kp * e) * (cost.fixed + (p * cost.matrix).sum()) / cost.e_ref
            u = min(max(u + ki * e, math.log(1e-4)), math.log(1e4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if method == "project":
            proj.project(theta.data, alive, cost, s)
    return (cost.expected(theta.softmax(-1)) - target) / target


def main() -> None:
    torch.set_num_threads(1)
    cost = toy_cost()
    rows = []
    for steps, lr in ((60, 0.1), (300, 0.03), (2000, 0.01)):
        for frac in (0.1, 0.4):
            for noise, pull in ((0.01, 0.0), (0.01, 0.02), (0.05, 0.02), (0.0, 0.02)):
                for method in ("pi", "project"):
                    err = run(method, cost, frac, steps, lr, noise, pull)
                    rows.append({"method": method, "steps": steps, "lr": lr, "target_frac": frac, "noise": noise,
                                 "pull": pull, "error": err})
                    print(f"{method:<8} steps {steps:>5} lr {lr:<5} target {frac:<4} noise {noise:<5} pull {pull:<5}"
                          f" error {100 * err:+7.2f}%", flush=True)
    for method in ("pi", "project"):
        errs = [abs(r["error"]) for r in rows if r["method"] == method]
        print(f"{method}: within ±5% in {sum(e <= 0.05 for e in errs)}/{len(errs)} runs, worst {100 * max(errs):.1f}%")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
