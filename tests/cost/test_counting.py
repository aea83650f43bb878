import torch
from torch import nn

from squeezenas.cost.counting import count_costs, part_of
from squeezenas.models import build_model


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.b = nn.Conv2d(8, 8, 5, padding=2, groups=8)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return self.bn(self.b(self.a(x)))


def test_conv_convention_by_hand():
    r = count_costs(Two(), (10, 20))
    # a: out 8×5×10 elements · 3·3·3 ; b: out 8×5×10 · 5·5·8/8  (BN not counted)
    assert r.macs == 8 * 5 * 10 * 27 + 8 * 5 * 10 * 25
    assert r.params == 8 * 27 + 8 * 25 + 8 + 16


def test_parts_sum_to_total():
    net = build_model("small", ["k3_d2_e6_g1"] * 10 + ["skip"] * 10, 19)
    r = count_costs(net, (128, 256))
    assert sum(v["macs"] for v in r.parts.values()) == r.macs
    assert sum(v["params"] for v in r.parts.values()) == r.params
    pm = [r.parts.get(f"position.{i}", {}).get("macs", 0) for i in range(20)]
    assert len(pm) == 20 and all(m > 0 for m in pm[:10])
    # skips: identities hold no conv, but 12 (40→48) and 16 (48→96) change channels with a 1×1 conv
    assert [i for i in range(10, 20) if pm[i] > 0] == [12, 16]
    assert part_of("encoder.blocks.12.op.0") == "position.12" and part_of("decoder.gate") == "decoder"


def test_meta_counting_leaves_weights_alone():
    net = build_model("small", ["k3_d1_e1_g1"] * 20, 3)
    w = net.encoder.stem[0].weight.clone()
    count_costs(net, (64, 128))
    assert net.encoder.stem[0].weight.device.type == "cpu" and torch.equal(net.encoder.stem[0].weight, w)
