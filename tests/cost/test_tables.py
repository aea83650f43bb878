import pytest
import torch

from squeezenas.cost.counting import count_costs
from squeezenas.cost.tables import CostTable, CostTableError, mac_table
from squeezenas.models import build_model, get_model, get_model_entry
from squeezenas.space import Genotype, get_macro, random_genotype


@pytest.mark.parametrize("macro", ["small", "large"])
def test_mac_table_predicts_counted_macs(macro):
    t = mac_table(macro, (128, 256))
    for seed in range(3):
        g = random_genotype(macro, seed)
        counted = count_costs(build_model(g, num_classes=19), (128, 256)).macs / 1e9
        assert t.predict(g) == pytest.approx(counted, rel=1e-9)


def test_mac_table_zoo_at_full_resolution():
    t = mac_table("small", (1024, 2048))
    entry = get_model_entry("squeezenas_lat_small")
    assert t.predict(entry.genotype) == pytest.approx(entry.published_gmacs, rel=0.005)


def test_round_trip_and_compatibility(tmp_path):
    t = mac_table("small", (64, 128))
    t.save(tmp_path / "t.json")
    u = CostTable.load(tmp_path / "t.json")
    assert u.table == t.table and u.fixed == t.fixed and u.macro == t.macro
    u.check_compatible(get_macro("small"), (64, 128))
    with pytest.raises(CostTableError, match="space 'small', not 'large'"):
        u.check_compatible(get_macro("large"), (64, 128))
    with pytest.raises(CostTableError, match="64×128, not 128×256"):
        u.check_compatible(get_macro("small"), (128, 256))
    with pytest.raises(CostTableError, match="for space 'small'"):
        u.predict(random_genotype("large", 0))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CostTableError, match="bad.json"):
        CostTable.load(tmp_path / "bad.json")
    # a table that would not load again is not written (the file named, an existing one left as it was)
    t.fixed["adapter_context"] = -10 * t.fixed_total - sum(map(sum, t.table))
    with pytest.raises(CostTableError, match=r"t\.json: .*cheapest network"):
        t.save(tmp_path / "t.json")
    assert CostTable.load(tmp_path / "t.json").fixed == u.fixed


def test_skip_identity_costs_nothing():
    t = mac_table("small", (64, 128))
    j = t.candidates.index("skip")
    assert t.table[1][j] == 0.0 and t.table[0][j] > 0  # position 0 has stride 2: factorized reduce
    assert t.matrix().shape == (20, 13)


def test_calibration_maps_both_ways():
    t = mac_table("small", (64, 128))
    assert t.calibrate(2.0) == t.uncalibrate(2.0) == 2.0  # no calibration: identity
    t.meta["calibration"] = {"overhead_ms": 0.5, "scale": 1.25}
    assert t.calibrate(2.0) == 3.0 and t.uncalibrate(3.0) == 2.0


def test_mean_network_and_bounds():
    """e_ref is the expected cost of uniform choices; bounds are the cheapest and dearest alive networks."""
    t = mac_table("small", (64, 128))
    rows = t.table
    assert t.e_ref == pytest.approx(t.fixed_total + sum(sum(r) / len(r) for r in rows), rel=1e-6)
    lo, hi = t.bounds()
    assert lo == pytest.approx(t.fixed_total + sum(min(r) for r in rows), rel=1e-6)
    assert hi == pytest.approx(t.fixed_total + sum(max(r) for r in rows), rel=1e-6)
    alive = torch.zeros(t.matrix().shape, dtype=torch.bool)
    alive[:, 0] = True  # one candidate left everywhere: both bounds are that network
    only = t.predict(Genotype(get_macro("small"), (t.candidates[0],) * len(rows)))
    assert t.bounds(alive) == pytest.approx((only, only), rel=1e-6)


def _paired_table(seed: int = 0) -> CostTable:
    """A latency table of a five-position space with a grouped candidate, random costs and pair terms."""
    from squeezenas.space import DecoderSpec, MacroArch, Stage

    macro = MacroArch(name="tiny", stem_channels=8, stages=(Stage(8, 2, 2), Stage(16, 2, 2), Stage(24, 1, 1)),
                      low_level_position=1, last_channels=32, decoder=DecoderSpec("lr_aspp", 16),
                      candidates=("k3_d1_e1_g2", "k3_d2_e3_g1", "k5_d1_e6_g1", "skip"))
    g = torch.Generator().manual_seed(seed)
    table = (torch.rand(5, 4, generator=g) + 0.1).tolist()
    pairs = (torch.rand(5, 4, generator=g) * 0.5).tolist()
    return CostTable(kind="latency", unit="ms", macro=macro, input_size=(32, 64), candidates=macro.candidates,
                     table=table, fixed={"stem": 0.3}, pairs={2: pairs})


def test_expected_pair_cost_is_the_exact_expectation():
    """E[pair_cost] over networks drawn position by position equals the sum over all 4^5 networks, and its
    gradient reaches the probabilities; e_ref includes it for the uniform distribution."""
    import itertools

    t = _paired_table()
    p = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(1)).double(), dim=-1)  # sums to 1
    p.requires_grad_(True)
    exact, uniform = 0.0, 0.0
    for ops in itertools.product(range(4), repeat=5):
        genotype = Genotype(t.macro, tuple(t.candidates[j] for j in ops))
        weight = float(torch.prod(torch.stack([p[i, j] for i, j in enumerate(ops)])))
        exact += weight * t.pair_cost(genotype)
        uniform += t.predict(genotype) / 4 ** 5
    expected = t.expected_pair_cost(p)
    assert float(expected) == pytest.approx(exact, rel=1e-9) and exact > 0
    # without a graph the recursion runs in Python floats; with prebuilt constants it is the same
    assert float(t.expected_pair_cost(p.detach())) == pytest.approx(exact, rel=1e-9)
    assert float(t.expected_pair_cost(p.detach(), t.pair_tensors(torch.float64))) == pytest.approx(exact, rel=1e-9)
    expected.backward()
    assert p.grad is not None and float(p.grad.abs().sum()) > 0
    assert t.e_ref == pytest.approx(uniform, rel=1e-5)  # float32, as the search's loss
    assert float(CostTable(**{**t.__dict__, "pairs": {}}).expected_pair_cost(p)) == 0.0
