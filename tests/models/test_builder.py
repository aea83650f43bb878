import random

import pytest
import torch
import torch.nn.functional as F

from squeezenas.models import build_model
from squeezenas.models.heads import LRASPP
from squeezenas.space import Genotype, get_macro, random_genotype


@pytest.mark.parametrize("macro", ["small", "large", "xlarge"])
@pytest.mark.parametrize("size", [(64, 128), (360, 480)])
def test_random_genotypes_build_and_run(macro, size):
    rng = random.Random(hash((macro, size)) % 1000)
    for _ in range(2):
        g = random_genotype(macro, rng)
        net = build_model(g, num_classes=5).eval()
        with torch.no_grad():
            out = net(torch.randn(1, 3, *size))
        assert out.shape == (1, 5, *size)
        assert torch.isfinite(out).all()


def test_train_step_backward():
    net = build_model(random_genotype("small", 1), num_classes=3)
    x = torch.randn(2, 3, 64, 96)
    loss = F.cross_entropy(net(x), torch.randint(0, 3, (2, 64, 96)))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_per_position_features():
    macro = get_macro("small")
    net = build_model("small", ["k3_d1_e3_g1"] * 20, 4)
    feats = net.encoder.features(torch.randn(1, 3, 64, 128))
    assert len(feats) == 20
    sizes = macro.input_sizes(64, 128)[1:] + [(4, 8)]
    for f, p, hw in zip(feats, macro.positions(), sizes):
        assert f.shape == (1, p.c_out, *hw)
    high, low = net.encoder(torch.randn(1, 3, 64, 128))
    assert high.shape == (1, 256, 4, 8) and low.shape == (1, 24, 8, 16)


def test_build_model_forms_agree():
    codes = random_genotype("small", 7).ops
    a = build_model("small", codes, 3)
    b = build_model(Genotype("small", codes), num_classes=3)
    c = build_model(get_macro("small"), Genotype("small", codes), 3)
    assert [k for k in a.state_dict()] == [k for k in b.state_dict()] == [k for k in c.state_dict()]
    with pytest.raises(TypeError):
        build_model("small")
    with pytest.raises(ValueError, match="not 'large'"):
        build_model("large", Genotype("small", codes))


def test_init_matches_spec():
    net = build_model(random_genotype("small", 2), num_classes=3)
    bn = net.encoder.stem[1]
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
    w = net.encoder.stem[0].weight  # kaiming normal, fan_out = 16·3·3
    assert abs(w.std().item() - (2 / (16 * 9)) ** 0.5) < 0.05


def _pooled_shape(h, w):
    head = LRASPP(8, 4, 3)
    seen = {}
    head.gate.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(i[0].shape[-2:])))
    head(torch.randn(1, 8, h, w), torch.randn(1, 4, 2 * h, 2 * w), (16 * h, 16 * w))
    return seen["shape"]


def test_lraspp_pooling_matches_release_and_any_size():
    assert _pooled_shape(64, 128) == (1, 4)  # 1024×2048 input: the released 49×49 / (16, 20) pooling
    # smaller maps: the window is clamped to the map, i.e. global pooling
    assert _pooled_shape(23, 30) == (1, 1)  # 360×480
    assert _pooled_shape(48, 48) == (1, 1)  # 768×768
    assert _pooled_shape(4, 8) == (1, 1)  # 64×128
    # the released pooling averages 49×49 windows: check the values at 1024×2048
    head = LRASPP(2, 2, 2)
    x = torch.randn(1, 2, 64, 128)
    seen = {}
    head.gate.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    head(x, torch.randn(1, 2, 128, 256), (1024, 2048))
    assert torch.allclose(seen["x"][0, :, 0, 3], x[0, :, 0:49, 60:109].mean((1, 2)), atol=1e-6)
