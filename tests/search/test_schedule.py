"""The search's defaults that let accuracy speak: warm-up, the cost ramp, pruning on what accuracy prefers, the
cost through the sampled weights, and the discrete-path supernet."""

from __future__ import annotations

import pytest
import torch

from squeezenas.cost.tables import CostTable
from squeezenas.search import run_search
from squeezenas.search.checkpoint import load_search
from squeezenas.search.objective import CostModel, cost_weight, loss_terms
from squeezenas.supernet import SuperNet
from squeezenas.utils.io import safe_torch_load


@pytest.fixture
def small():
    from squeezenas.space.macro import get_space

    return get_space("small")


def test_the_defaults(tiny_config, tmp_path):
    from squeezenas.search.config import SearchConfig

    cfg = SearchConfig(epochs=8)
    assert (cfg.warmup, cfg.cost_ramp, cfg.theta, cfg.cost_through) == (2, 0.3, "split", "gumbel")
    assert SearchConfig(epochs=8, warmup_epochs=0).warmup == 0 and SearchConfig(epochs=1).warmup == 0


def test_warmup_makes_no_theta_update_and_no_pruning(tiny_config, tmp_path, mac_small):
    cfg = tiny_config(tmp_path / "s", epochs=4, warmup_epochs=None, cost_ramp=0.5, prune_threshold=0.5, alpha=5.0)
    assert cfg.warmup == 1
    r = run_search(cfg, mac_small, stop_after=1)
    ckpt = safe_torch_load(tmp_path / "s" / "checkpoint.pt")
    assert r.history[0]["phase"] == "warmup" and r.pruned == []
    assert torch.count_nonzero(ckpt["supernet"]["theta"]) == 0 and torch.count_nonzero(ckpt["supernet"]["theta_cost"]) == 0
    assert bool(ckpt["supernet"]["alive"].all())
    r = run_search(cfg, mac_small, resume=True, stop_after=1)  # the first search epoch: all of it is ramp
    assert r.history[1]["phase"] == "search" and r.pruned == []  # a threshold of 0.5 would prune, but not yet
    r = run_search(cfg, mac_small, resume=True)
    assert r.pruned and all(epoch > 2 for epoch, _, _ in r.pruned)


def test_the_cost_comes_in_over_the_ramp():
    assert [cost_weight(2.0, s, 4) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert cost_weight(2.0, 0, 0) == 2.0


def test_pruning_looks_at_what_accuracy_prefers(small):
    net = SuperNet(small, 4, split_theta=True)
    with torch.no_grad():
        net.theta_cost[:, 3] = -20.0  # the cost alone wants candidate 3 gone everywhere
    assert float(net.probabilities()[0, 3].detach()) < 1e-6
    assert net.prune(0.005, view="preference") == []  # accuracy never said so
    assert len(net.prune(0.005, view="total")) == 20


def test_split_theta_routes_each_gradient_to_its_part(small, mac_small):
    net = SuperNet(small, 4, split_theta=True).train()
    cost = CostModel.from_table(mac_small)
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 64, 128), torch.randint(0, 4, (2, 64, 128))
    ce, cost_term = loss_terms(net, cost, 1.0, x, y, 2.0, with_cost=True, through="gumbel")
    ce.backward(retain_graph=True)
    assert net.theta.grad.abs().sum() > 0 and net.theta_cost.grad is None
    net.theta.grad = None
    cost_term.backward()
    assert net.theta.grad is None and net.theta_cost.grad.abs().sum() > 0


def test_the_cost_through_gumbel_weights_pulls_like_the_cross_entropy(small, mac_small):
    """Through the relaxed samples, the cost's gradient on θ shrinks with the temperature (∝ 1/t), as the
    cross-entropy's does; through p(θ) it does not depend on t."""
    net = SuperNet(small, 4)
    c = CostModel.from_table(mac_small).matrix
    noise = net.gumbel_noise(64, torch.Generator().manual_seed(0))

    def grad_norm(t, through):
        net.theta.grad = None
        w = net.gumbel_weights(noise, t, view="cost") if through == "gumbel" else None
        net.expected_cost(c, w).backward()
        return float(net.theta.grad.norm())

    assert grad_norm(5.0, "gumbel") < 0.5 * grad_norm(1.0, "gumbel")
    assert abs(grad_norm(5.0, "softmax") - grad_norm(1.0, "softmax")) < 1e-6


def test_path_mode_computes_only_the_sampled_candidates_and_trains_theta(small):
    net = SuperNet(small, 4).train()
    calls = []
    for i, block in enumerate(net.superblocks):
        for code, module in block.candidates.items():
            module.register_forward_hook(lambda m, a, o, i=i, code=code: calls.append((i, code)))
    path = net.sample_path(net.gumbel_noise(1, torch.Generator().manual_seed(1))[0], 2.0)
    out = net(torch.randn(2, 3, 64, 128), path=path)
    assert sorted(calls) == sorted((i, p.code) for i, p in enumerate(path))  # one candidate per position
    assert all(float(p.gate.detach()) == 1.0 for p in path)
    out.square().mean().backward()
    grad = net.theta.grad
    assert grad is not None and grad.abs().sum() > 0
    sampled = torch.zeros_like(grad, dtype=torch.bool)
    for i, p in enumerate(path):
        sampled[i, net.codes.index(p.code)] = True
    assert (grad[sampled] != 0).any()


def test_a_path_search_resumes_exactly(tiny_config, tmp_path, mac_small):
    kw = dict(crop=(32, 64), epochs=3, steps_per_epoch=2, prune_threshold=0.07, alpha=2.0, supernet="path",
              warmup_epochs=1)
    full = run_search(tiny_config(tmp_path / "full", **kw), mac_small)
    run_search(tiny_config(tmp_path / "cut", **kw), mac_small, stop_after=2)
    resumed = run_search(tiny_config(tmp_path / "cut", **kw), mac_small, resume=True)
    a, b = (safe_torch_load(tmp_path / d / "checkpoint.pt")["supernet"] for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    measured = ("second", "memory")  # wall time and peak memory differ between runs
    untimed = [[{k: v for k, v in row.items() if not any(m in k for m in measured)} for row in r.history]
               for r in (resumed, full)]
    assert resumed.genotype == full.genotype and untimed[0] == untimed[1]
    net, cfg, _ = load_search(tmp_path / "full")
    assert cfg.supernet == "path" and net.theta_cost is not None


def test_the_cost_term_counts_a_tables_pair_terms(small, mac_small):
    """A runtime whose ops' costs depend on the block before them (``CostTable.pairs``): the loss's cost term is
    the expected cost with the pair terms over e_ref, and ``CostModel.expected`` says the same."""
    g = torch.Generator().manual_seed(0)
    table = CostTable(**{**mac_small.__dict__, "pairs": {2: (torch.rand(20, 13, generator=g) * 0.01).tolist()}})
    net = SuperNet(small, 4).train()
    with torch.no_grad():
        net.theta.normal_(generator=g)
    cost = CostModel.from_table(table)
    x, y = torch.randn(2, 3, 64, 128), torch.randint(0, 4, (2, 64, 128))
    _, term = loss_terms(net, cost, 1.0, x, y, 2.0, with_cost=True)
    p = net.probabilities("cost").detach()
    assert float(term) == pytest.approx(cost.expected(p) / cost.e_ref, rel=1e-5)
    plain = CostModel.from_table(mac_small).expected(p)
    assert cost.expected(p) == pytest.approx(plain + float(table.expected_pair_cost(p.double())), rel=1e-5)
    assert cost.expected(p) > plain
