"""Loading a latency table: another space or resolution is an error, another device a warning."""

from __future__ import annotations

import warnings

import pytest

from lut_fakes import QUICK, FakeTimer, tiny_macro
from squeezenas.cost.lut import LutError, build_lut, check_device, load_lut
from squeezenas.cost.tables import CostTableError
from squeezenas.space import get_macro


def test_other_space_or_resolution_is_an_error_other_device_a_warning(tmp_path):
    macro = tiny_macro()
    build_lut(macro, (32, 64), QUICK, out=tmp_path / "t.json", progress=False, measure_fn=FakeTimer())
    with pytest.raises(CostTableError, match="not 'small'"):
        load_lut(tmp_path / "t.json", get_macro("small"), (32, 64))
    with pytest.raises(CostTableError, match="32×64, not 64×64"):
        load_lut(tmp_path / "t.json", macro, (64, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load_lut(tmp_path / "t.json", macro, (32, 64), warn_device=True)  # same machine: no warning
    table.meta["fingerprint"] = {**table.meta["fingerprint"], "cpu_model": "Some Phone SoC", "torch": "1.0"}
    with pytest.warns(UserWarning, match=r"another device: cpu_model: 'Some Phone SoC' != .*; torch: '1.0' != "):
        diff = check_device(table)
    assert len(diff) == 2
    # a MAC table is not a latency table
    from squeezenas.cost.tables import mac_table

    mac_table(macro, (32, 64)).save(tmp_path / "m.json")
    with pytest.raises(LutError, match="not a latency table"):
        load_lut(tmp_path / "m.json")
