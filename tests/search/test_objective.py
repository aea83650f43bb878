"""What the search optimises: the schedules, and the cost target (the KL projection holds the expected cost, in a
cost-only toy and in a tiny real search)."""

from __future__ import annotations

import json

import pytest
import torch

from squeezenas.cost.tables import CostTable
from squeezenas.search.loop import run_search
from squeezenas.search.objective import CostModel, TargetProjector, lr_at, temperature_at
from squeezenas.space.macro import get_space


def test_temperature_is_exponential_from_start_to_end():
    ts = [temperature_at(s, 11, 5.0, 1.0) for s in range(11)]
    assert ts[0] == pytest.approx(5.0) and ts[-1] == pytest.approx(1.0)
    ratios = [b / a for a, b in zip(ts, ts[1:])]
    assert all(r == pytest.approx(0.2 ** 0.1) for r in ratios)
    assert lr_at(0, 10, 0.05) == pytest.approx(0.05) and lr_at(10, 10, 0.05) == pytest.approx(0.0)


def _toy_table(seed: int = 0) -> CostTable:
    """A random cost table for the Small space: expensive blocks late, skip nearly free."""
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(20, 13, generator=g) * torch.linspace(0.2, 2.0, 20)[:, None]
    m[:, -1] = 0.01
    macro = get_space("small")
    return CostTable(kind="latency", unit="ms", macro=macro, input_size=(64, 128), candidates=macro.candidates,
                     table=m.tolist(), fixed={"stem": 0.5, "decoder": 0.5})


@pytest.mark.parametrize("pull", [+1.0, -1.0, 0.0])  # the "accuracy" term prefers expensive, cheap, or nothing
@pytest.mark.parametrize("frac", [0.15, 0.5, 0.85])
def test_projection_lands_on_the_target_in_a_cost_only_toy(pull, frac):
    table = _toy_table()
    cost = CostModel.from_table(table)
    lo, hi = table.bounds(torch.ones(20, 13, dtype=torch.bool))
    target = lo + frac * (hi - lo)
    theta = torch.zeros(20, 13, requires_grad=True)
    alive = torch.ones(20, 13, dtype=torch.bool)
    opt = torch.optim.Adam([theta], lr=0.05)
    proj = TargetProjector(target, cost.expected(theta.softmax(-1)), ramp_steps=50)
    g = torch.Generator().manual_seed(1)
    benefit = pull * torch.log(cost.matrix + 0.05)
    for step in range(200):  # the loss has no cost term: only the projection holds the cost
        p = theta.softmax(-1)
        loss = -(p * benefit).sum() + (theta * 0.05 * torch.randn(20, 13, generator=g)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        proj.project(theta.data, alive, cost, step)
    final = cost.expected(theta.softmax(-1))
    assert final == pytest.approx(target, rel=0.05)
    assert final == pytest.approx(target, rel=1e-4)  # in fact exact, up to the bisection
    assert proj.lam_total * pull >= 0  # the price has the sign of the pull it resists


def test_projection_counts_the_pair_terms():
    """With a table's pair terms (``CostTable.pairs``) the projection holds the expected cost with them."""
    table = _toy_table()
    g = torch.Generator().manual_seed(2)
    table.pairs = {2: (torch.rand(20, 13, generator=g) * 0.2).tolist()}
    cost = CostModel.from_table(table)
    alive = torch.ones(20, 13, dtype=torch.bool)
    theta = torch.randn(20, 13, generator=g)
    e0 = cost.expected(theta.softmax(-1))
    assert e0 > CostModel.from_table(_toy_table()).expected(theta.softmax(-1))
    proj = TargetProjector(0.7 * e0, e0, ramp_steps=0)
    assert proj.project(theta, alive, cost, 0) > 0
    assert cost.expected(theta.softmax(-1)) == pytest.approx(0.7 * e0, rel=1e-5)


def test_max_mode_only_caps_the_cost():
    table = _toy_table()
    cost = CostModel.from_table(table)
    alive = torch.ones(20, 13, dtype=torch.bool)
    theta = torch.zeros(20, 13)
    e0 = cost.expected(theta.softmax(-1))
    above = TargetProjector(1.2 * e0, e0, ramp_steps=0, mode="max")
    assert above.project(theta, alive, cost, 0) == 0.0 and torch.equal(theta, torch.zeros(20, 13))
    below = TargetProjector(0.8 * e0, e0, ramp_steps=0, mode="max")
    assert below.project(theta, alive, cost, 0) > 0
    assert cost.expected(theta.softmax(-1)) == pytest.approx(0.8 * e0, rel=1e-5)


def test_latency_target_in_a_tiny_search(tmp_path, tiny_config):
    """A calibrated latency table: the target is in calibrated ms and the final expectation lands on it."""
    table = _toy_table()
    table.meta["calibration"] = {"overhead_ms": 2.0, "scale": 1.5}
    cost = CostModel.from_table(table)
    target = table.calibrate(0.8 * cost.e_ref)
    cfg = tiny_config(tmp_path / "t", crop=(32, 64), epochs=2, steps_per_epoch=3, cost="latency", target=target,
                      cost_ramp=0.5)
    r = run_search(cfg, table)
    assert r.alpha == 0.0 and r.target == target and r.unit == "ms"
    assert r.expected_cost == pytest.approx(target, rel=1e-4)  # projected again after every pruning
    assert r.history[-1]["expected_cost"] == pytest.approx(target, rel=1e-4)
    assert r.predicted_cost == pytest.approx(table.predict(r.genotype, calibrated=True))
    with pytest.raises(ValueError, match="cost table is a 'latency' table"):
        run_search(tiny_config(tmp_path / "m"), table)


def test_unreachable_target_is_an_error(tmp_path, mac_small, tiny_config):
    with pytest.raises(ValueError, match="outside what the space can reach"):
        run_search(tiny_config(tmp_path / "t", target=1e-6), mac_small)


@pytest.mark.parametrize("overrides", [{"theta": "joint", "prune_every": 1}, {"theta": "split"}],
                         ids=["joint-every-step", "split-every-epoch"])
def test_the_target_holds_after_pruning(tmp_path, mac_small, tiny_config, overrides):
    """Pruning removes probability mass and with it moves the expected cost; the survivors are projected onto the
    target again, so the result meets it also when a pruning came after the last θ-step."""
    target = 0.8 * CostModel.from_table(mac_small).e_ref
    r = run_search(tiny_config(tmp_path / "t", target=target, prune_threshold=0.07, theta_lr=0.3, **overrides),
                   mac_small)
    assert r.pruned and r.pruned[-1][0] == 3  # pruned, the last time after the last epoch's θ-steps
    assert r.expected_cost == pytest.approx(target, rel=1e-4) and r.target_unreachable is False


def test_a_pruning_that_puts_the_target_out_of_reach_is_reported(tmp_path, mac_small, tiny_config, monkeypatch):
    """If the survivors of a pruning cannot reach the target, the projection pushes the distribution to the nearest
    end: the log warns once and result.json says so."""
    from squeezenas.search import checkpoint

    cost = CostModel.from_table(mac_small)
    lo, hi = mac_small.bounds(torch.ones(cost.matrix.shape, dtype=torch.bool))
    target = lo + 0.05 * (hi - lo)  # near the cheapest network

    def keep_the_dearest(self, threshold):  # a pruning that leaves only the most expensive candidate everywhere
        removed = []
        for i in range(cost.matrix.shape[0]):
            for j in self.net.alive[i].nonzero().flatten().tolist():
                if j != int(cost.matrix[i].argmax()):
                    self.net._remove(i, j)
                    removed.append((i, self.net.codes[j]))
        self.opt_w = checkpoint._rebuild_sgd(self.opt_w, self.net.weight_parameters())
        return removed

    monkeypatch.setattr(checkpoint.SearchState, "prune", keep_the_dearest)
    out = tmp_path / "t"
    r = run_search(tiny_config(out, target=target, prune_threshold=0.07), mac_small)
    assert r.target_unreachable is True and json.loads((out / "result.json").read_text())["target_unreachable"]
    assert (out / "search.log").read_text().count("lies outside what the alive candidates can reach") == 1
    assert r.expected_cost > target
