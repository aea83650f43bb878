"""SuperNet: every space trains, θ and its distribution, Gumbel weights, cost, pruning, paths, extraction, resume."""

import copy
import io
import time

import pytest
import torch
import torch.nn.functional as F

from squeezenas.models import build_model
from squeezenas.space import CANDIDATES, Genotype, get_macro, random_genotype
from squeezenas.supernet import SuperNet


@pytest.fixture(scope="module")
def small() -> SuperNet:
    torch.manual_seed(0)
    return SuperNet(get_macro("small"), num_classes=4)


def _fresh(small: SuperNet) -> SuperNet:
    return copy.deepcopy(small)


@pytest.mark.parametrize("space", ["small", "large", "xlarge"])
@pytest.mark.parametrize("fused", [True, False])
def test_every_space_trains(space, fused):
    torch.manual_seed(0)
    net = SuperNet(space, num_classes=3, fused=fused)
    x = torch.randn(2, 3, 64, 128)
    t0 = time.perf_counter()
    out = net(x, temperature=5.0)
    assert out.shape == (2, 3, 64, 128) and torch.isfinite(out).all()
    loss = F.cross_entropy(out, torch.randint(0, 3, (2, 64, 128))) + 0.1 * net.expected_cost(torch.rand(net.theta.shape))
    loss.backward()
    assert net.theta.grad is not None and net.theta.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.weight_parameters())
    assert time.perf_counter() - t0 < 60


def test_parameter_partition(small):
    arch, weights = small.arch_parameters(), small.weight_parameters()
    assert len(arch) == 1 and arch[0] is small.theta
    assert small.theta.shape == (20, len(CANDIDATES)) and (small.theta == 0).all()
    ids = {id(p) for p in weights}
    assert id(small.theta) not in ids and len(ids) == len(list(small.parameters())) - 1


def test_probabilities_sum_to_one(small):
    net = _fresh(small)
    with torch.no_grad():
        net.theta.normal_()
    net.prune_to(5)
    p = net.probabilities()
    torch.testing.assert_close(p.sum(1), torch.ones(20))
    assert (p[~net.alive] == 0).all() and (p[net.alive] > 0).all()


def test_gumbel_weights(small):
    net = _fresh(small)
    net._remove(0, 3)
    w = net.sample_weights(6, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert w.shape == (6, 20, len(CANDIDATES))
    torch.testing.assert_close(w.sum(-1), torch.ones(6, 20))
    assert (w[:, 0, 3] == 0).all()  # pruned: weight 0
    assert not torch.allclose(w[0], w[1])  # per sample
    again = net.sample_weights(6, temperature=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(w, again)  # seeded
    hot = net.sample_weights(500, 5.0, torch.Generator().manual_seed(1))
    cold = net.sample_weights(500, 0.2, torch.Generator().manual_seed(1))
    assert cold.max(-1).values.mean() > hot.max(-1).values.mean()  # lower temperature: nearer one-hot
    net.sample_weights(2, 1.0)[..., 0].sum().backward()
    assert net.theta.grad is not None  # differentiable w.r.t. θ
    with pytest.raises(ValueError):
        net.sample_weights(2, 0.0)


def test_expected_cost_gradient_into_theta_only(small):
    net = _fresh(small)
    cost = torch.rand(20, len(CANDIDATES))
    cost[0, 0] = float("inf")
    net._remove(0, 0)  # a pruned candidate's cost (even inf) never counts
    value = net.expected_cost(cost)
    expect = (net.probabilities() * cost.masked_fill(~net.alive, 0)).sum()
    torch.testing.assert_close(value, expect)
    value.backward()
    assert net.theta.grad is not None and torch.isfinite(net.theta.grad).all() and net.theta.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.weight_parameters())
    with pytest.raises(ValueError, match="positions × candidates"):
        net.expected_cost(torch.rand(3, 3))


def test_prune(small):
    net = _fresh(small)
    with torch.no_grad():
        net.theta.fill_(-10.0)
        net.theta[:, 2] = 5.0  # k3_d1_e3_g1 dominates everywhere
        net.theta[4, 5] = 5.0  # two dominant candidates at position 4
    n_params = sum(p.numel() for p in net.parameters())
    removed = net.prune(0.005)
    assert len(removed) == 20 * 12 - 1
    assert (4, "k5_d1_e1_g1") not in removed and (0, "k3_d1_e1_g2") in removed
    assert net.num_alive() == [1] * 4 + [2] + [1] * 15
    assert "k3_d1_e1_g2" not in net.encoder.blocks[0].candidates  # module deleted, weights freed
    assert sum(p.numel() for p in net.parameters()) < n_params / 5
    assert net.prune(0.005) == []
    x = torch.randn(2, 3, 64, 64)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.weight_parameters())
    # the last alive candidate stays even below the threshold
    with torch.no_grad():
        net.theta.fill_(0.0)
    assert net.prune(0.9) == [(4, "k5_d1_e1_g1")]  # p = 0.5 each: one goes, the other is the last
    assert net.num_alive() == [1] * 20


def test_pruned_candidates_get_no_gradient_and_leave_the_optimizer(small):
    net = _fresh(small)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
    doomed = list(net.encoder.blocks[3].candidates["k5_d1_e6_g1"].parameters())
    net(torch.randn(2, 3, 32, 64)).mean().backward()
    opt.step()
    with torch.no_grad():
        net.theta[3, 7] = -100.0
    assert (3, "k5_d1_e6_g1") in net.prune()
    opt.zero_grad()
    net(torch.randn(2, 3, 32, 64)).mean().backward()
    assert all(p.grad is None for p in doomed)
    assert not {id(p) for p in doomed} & {id(p) for p in net.weight_parameters()}


def test_derive(small):
    net = _fresh(small)
    with torch.no_grad():
        net.theta.normal_()
        net.theta[:, 12] = 100.0  # skip would win everywhere, but is pruned at position 0
    net._remove(0, 12)
    g = net.derive()
    assert isinstance(g, Genotype) and g.macro_name == "small"
    assert g.ops[0] == CANDIDATES[int(net.theta[0, :12].argmax())]
    assert all(code == "skip" for code in g.ops[1:])
    Genotype.from_json(g.to_json())  # valid


@pytest.mark.parametrize("fused", [True, False])
def test_set_path_matches_the_standalone_network(small, fused):
    net = _fresh(small)
    for block in net.superblocks:
        block.fused = fused
    net.train()
    net(torch.randn(4, 3, 64, 64))  # move running statistics away from their initial values
    net.eval()
    genotype = random_genotype("small", 3)
    standalone = build_model(genotype, num_classes=4).eval()
    missing = standalone.load_state_dict(_path_state_dict(net, genotype), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    net.set_path(genotype)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(net(x), standalone(x))
        features = net.encoder.features(x)
        for a, b in zip(features, standalone.encoder.features(x)):
            torch.testing.assert_close(a, b)
    net.set_path(None)
    assert not net.is_path_set
    with torch.no_grad():
        assert net(x).shape == (2, 4, 64, 96)  # mixture again


def test_set_path_rejects_pruned_and_foreign(small):
    net = _fresh(small)
    net._remove(0, CANDIDATES.index("skip"))
    assert net.pruned_in(Genotype("small", ("skip",) * 20)) == [(0, "skip")]
    assert net.pruned_in(Genotype("small", ("k3_d1_e1_g1",) * 20)) == []
    with pytest.raises(ValueError, match="pruned"):
        net.set_path(Genotype("small", ("skip",) + ("k3_d1_e1_g1",) * 19))
    with pytest.raises(ValueError, match="macro"):
        net.set_path(random_genotype("large", 0))


def test_state_dict_round_trip_with_pruning(small):
    net = _fresh(small)
    with torch.no_grad():
        net.theta.normal_()
    net.prune_to(3)
    net.train()(torch.randn(2, 3, 32, 32))  # running statistics
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["alive"].dtype == torch.bool and state["alive"].sum() == 60

    resumed = SuperNet("small", 4)  # unpruned: loading prunes it to match
    resumed.load_state_dict(state, strict=True)
    assert torch.equal(resumed.alive, net.alive) and torch.equal(resumed.theta, net.theta)
    assert resumed.encoder.blocks[5].alive_codes == net.encoder.blocks[5].alive_codes
    x = torch.randn(2, 3, 64, 64)
    w = net.sample_weights(2, 1.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(resumed.eval()(x, weights=w), net.eval()(x, weights=w))

    # and back: an unpruned checkpoint re-creates the candidates a pruned supernet had removed
    full = SuperNet("small", 4)
    net.load_state_dict(full.state_dict(), strict=True)
    assert net.alive.all() and all(len(b.candidates) == len(CANDIDATES) for b in net.encoder.blocks)


def _path_state_dict(net: SuperNet, genotype: Genotype) -> dict:
    """The path's weights under the standalone network's names: drop ``candidates.{code}.`` of the chosen
    candidate at every position, leave out the others, θ and the alive mask."""
    out = {}
    for key, value in net.state_dict().items():
        if key in ("theta", "alive"):
            continue
        parts = key.split(".")
        if key.startswith("encoder.blocks.") and parts[3] == "candidates":
            if parts[4] != genotype.ops[int(parts[2])]:
                continue
            key = ".".join(parts[:3] + parts[5:])
        out[key] = value
    return out
