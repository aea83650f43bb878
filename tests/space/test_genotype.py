import json
import random

import pytest

from squeezenas.space import CANDIDATES, Genotype, GenotypeError, get_macro, load_genotype, random_genotype


@pytest.mark.parametrize("macro", ["small", "large", "xlarge"])
def test_json_round_trip(macro, tmp_path):
    g = random_genotype(macro, random.Random(0))
    assert Genotype.from_json(g.to_json()) == g
    g.save(tmp_path / "g.json")
    assert load_genotype(tmp_path / "g.json") == g
    assert json.loads((tmp_path / "g.json").read_text())["macro"] == macro


def test_yaml_and_inline_macro(tmp_path):
    macro = {"name": "mine", "stem_channels": 8, "stages": [{"channels": 8, "repeats": 2, "stride": 2},
             {"channels": 16, "repeats": 1, "stride": 2}], "low_level_position": 0}
    (tmp_path / "g.yaml").write_text(json.dumps({"macro": macro, "genotype": ["skip", "k3_d1_e1_g1", "k5_d1_e6_g1"]}))
    g = load_genotype(tmp_path / "g.yaml")
    assert g.macro_arch.name == "mine" and g.ops[2] == "k5_d1_e6_g1"
    assert Genotype.from_json(g.to_json()) == g


def test_builtin_macro_stored_by_name():
    g = Genotype(get_macro("small"), ("skip",) * 20)
    assert g.macro == "small"


def test_errors():
    with pytest.raises(GenotypeError, match="20 positions.*19"):
        Genotype("small", ("skip",) * 19)
    with pytest.raises(GenotypeError, match="position 3: unknown candidate 'k7_d1_e1_g1'"):
        Genotype("small", ("skip",) * 3 + ("k7_d1_e1_g1",) + ("skip",) * 16)
    with pytest.raises(GenotypeError, match="unknown macro-architecture 'smal'.*did you mean 'small'"):
        Genotype("smal", ("skip",) * 20)
    with pytest.raises(GenotypeError, match="needs both"):
        Genotype.from_dict({"genotype": []})
    with pytest.raises(GenotypeError, match="unknown key"):
        Genotype.from_dict({"macro": "small", "genotype": ["skip"] * 20, "gentoype": []})
    with pytest.raises(GenotypeError, match="not valid JSON"):
        Genotype.from_json("{")


def test_bad_file_names_the_file(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"macro": "small", "genotype": ["skip"] * 5}))
    with pytest.raises(GenotypeError, match=str(p)):
        load_genotype(p)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_genotype(tmp_path / "nope.json")


def test_random_genotype_uses_candidates():
    g = random_genotype("large", 3)
    assert len(g.ops) == 22 and set(g.ops) <= set(CANDIDATES)
    assert random_genotype("large", 3) == g
