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
