import json

import pytest

from squeezenas.space import MACROS, get_macro, load_macro
from squeezenas.space.macro import MacroArch
from squeezenas.utils.config import ConfigError


@pytest.mark.parametrize("name,n,low_ch,high_ch,low_stride", [
    ("small", 20, 24, 256, 8), ("large", 22, 32, 160, 8), ("xlarge", 22, 32, 320, 4)])
def test_builtin_spaces(name, n, low_ch, high_ch, low_stride):
    m = get_macro(name)
    assert m.num_positions == n and len(m.positions()) == n
    assert m.output_stride == 16
    assert m.low_channels == low_ch and m.high_channels == high_ch
    sizes = m.input_sizes(1024, 2048)
    low_out = sizes[m.low_level_position + 1] if m.low_level_position + 1 < n else None
    assert low_out == (1024 // low_stride, 2048 // low_stride)


def test_small_positions():
    p = get_macro("small").positions()
    assert [q.stride for q in p[:5]] == [2, 1, 1, 1, 2]
    assert (p[0].c_in, p[0].c_out, p[4].c_in, p[4].c_out) == (16, 16, 16, 24)
    assert p[1].is_identity_skip and not p[0].is_identity_skip
    assert get_macro("small").decoder.name == "lr_aspp" and get_macro("xlarge").decoder.name == "aspp"


def test_user_defined_macro_round_trips(tmp_path):
    d = {"name": "tiny", "stem_channels": 8,
         "stages": [{"channels": 8, "repeats": 2, "stride": 2}, {"channels": 16, "repeats": 2, "stride": 2},
                    {"channels": 24, "repeats": 2, "stride": 2}],
         "low_level_position": 3, "decoder": {"name": "lr_aspp", "channels": 32}}
    (tmp_path / "tiny.yaml").write_text(json.dumps(d))  # JSON is valid YAML
    (tmp_path / "tiny.json").write_text(json.dumps(d))
    for f in ("tiny.yaml", "tiny.json"):
        m = load_macro(tmp_path / f)
        assert m.num_positions == 6 and m.low_channels == 16
        assert MacroArch.from_dict(m.to_dict()) == m
    assert load_macro("small") is MACROS.get("small")


def test_macro_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstem_channels: 8\nstages: [{channels: 8, repeats: 1, stride: 2}]\nlow_level_position: 0\nstem_chanels: 3\n")
    with pytest.raises(ConfigError, match="stem_chanels.*did you mean 'stem_channels'"):
        load_macro(bad)
    bad.write_text("name: x\nstem_channels: 8\nstages: [{channels: 8, repeats: 1, stride: 3}]\nlow_level_position: 0\n")
    with pytest.raises(ConfigError, match="stride 1 or 2"):
        load_macro(bad)
    bad.write_text("name: x\nstem_channels: 8\nstages: [{channels: 8, repeats: 1, stride: 2}]\nlow_level_position: 5\n")
    with pytest.raises(ConfigError, match="low_level_position"):
        load_macro(bad)
    with pytest.raises(ConfigError, match="neither a known macro"):
        load_macro("medium")
