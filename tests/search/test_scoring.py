"""Scoring through the supernet: BatchNorm re-estimation, the fixed BN batches, the score cache."""

from __future__ import annotations

import torch
from torch import nn

from squeezenas.search.checkpoint import load_search
from squeezenas.search.scoring import ScoreCache, bn_batches, reestimate_bn
from squeezenas.space.genotype import Genotype


def test_bn_reestimation_is_a_cumulative_average():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.1))
    net[1].running_mean.fill_(100.0)
    batches = [torch.randn(2, 3, 4, 4) + k for k in range(3)]
    reestimate_bn(net, batches, "cpu")
    with torch.no_grad():
        means = torch.stack([net[0](b).mean(dim=(0, 2, 3)) for b in batches])
    assert torch.allclose(net[1].running_mean, means.mean(0), atol=1e-5)
    assert net[1].momentum == 0.1 and not net.training


def test_bn_batches_are_fixed_by_the_seed_and_leave_the_global_generator_alone(tiny_search):
    _, cfg, _ = load_search(tiny_search)
    state = torch.get_rng_state()
    a = bn_batches(cfg, 2, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    b = bn_batches(cfg, 2, seed=5)
    assert len(a) == 2 and a[0].shape == (2, 3, 64, 128)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_the_score_cache_is_keyed_by_the_settings(tmp_path):
    g = Genotype("small", ("skip",) * 20)
    path = tmp_path / "cache.jsonl"
    ScoreCache(path, {"seed": 0}).add(g, {"miou": 0.5})
    with path.open("a") as f:
        f.write('{"settings": "cut sho')  # an interrupted write
    assert ScoreCache(path, {"seed": 0}).get(g) == {"miou": 0.5}
    assert ScoreCache(path, {"seed": 1}).get(g) is None
