"""Latency-table plans: keys, deduplication, identity cells, shapes, the packed decoder."""

from __future__ import annotations

import pytest
import torch

from lut_fakes import QUICK, tiny_macro
from squeezenas.cost.lut import IDENTITY_KEY, output_sizes, plan_lut
from squeezenas.cost.timing import TimingConfig
from squeezenas.models import build_model
from squeezenas.space import DecoderSpec, get_macro


def test_plan_keys_dedup_identity_and_shapes():
    macro = get_macro("small")
    plan = plan_lut(macro, (128, 256), QUICK)
    j = macro.candidates.index("skip")
    # positions 1-3 share shapes: one key per candidate for all three; identity skip there, not at stride 2
    assert plan.cells[1] == plan.cells[2] == plan.cells[3] and plan.cells[1][j] == IDENTITY_KEY
    assert plan.cells[0][j] != IDENTITY_KEY and plan.cells[0] != plan.cells[1]
    assert plan.cells[12][j] != IDENTITY_KEY  # 40 → 48 channels, stride 1: 1×1 skip
    assert plan.cells[0][3] == "op=k3_d1_e6_g1|cin=16|cout=16|s=2|in=1x16x64x128|float32|nchw|eager"
    assert set(plan.fixed) == {"stem", "last_conv", "decoder"}
    assert plan.fixed["decoder"].startswith("decoder=lr_aspp|ch=128|high=256x8x16|low=24x16x32|out=128x256|classes=19")
    keys = {k for row in plan.cells for k in row} - {IDENTITY_KEY}
    assert keys | set(plan.fixed.values()) == set(plan.parts)
    # another backend, dtype or layout is another key
    other = plan_lut(macro, (128, 256), TimingConfig(backend="onnxruntime"))
    assert other.cells[0][3].endswith("|float32|nchw|onnxruntime")
    assert plan_lut(macro, (128, 256), TimingConfig(dtype="bfloat16", channels_last=True)).cells[0][3].endswith(
        "|bfloat16|nhwc|eager")


@pytest.mark.parametrize("space", ["small", "large", "xlarge"])
def test_output_sizes_match_the_network(space):
    macro = get_macro(space)
    net = build_model(macro, [macro.candidates[0]] * macro.num_positions).eval()
    with torch.no_grad():
        feats = net.encoder.features(torch.zeros(1, 3, 72, 100))
    assert [tuple(f.shape[-2:]) for f in feats] == output_sizes(macro, 72, 100)


@pytest.mark.parametrize("decoder", [DecoderSpec("lr_aspp", 16), DecoderSpec("aspp", 16)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_packed_decoder_equals_the_network_decoder(decoder, channels_last):
    macro = tiny_macro(decoder=decoder)
    plan = plan_lut(macro, (40, 72), TimingConfig(channels_last=channels_last), num_classes=5)
    part = plan.parts[plan.fixed["decoder"]]
    net = build_model(macro, ["k3_d1_e1_g2"] * macro.num_positions, num_classes=5).eval()
    x = torch.rand(1, 3, 40, 72)
    packed_dec = part.build(channels_last)
    packed_dec.decoder.load_state_dict(net.decoder.state_dict())
    with torch.no_grad():
        high, low = net.encoder(x)
        packed = torch.zeros(part.input_shape)
        perm = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)
        offset = packed_dec.offset
        packed.view(-1)[:low.numel()] = low.permute(*perm).reshape(-1)
        packed.view(-1)[offset:offset + high.numel()] = high.permute(*perm).reshape(-1)
        torch.testing.assert_close(packed_dec(packed), net(x))
