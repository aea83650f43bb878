import pytest
import torch

from squeezenas.models.blocks import ChannelSkip, FactorizedReduce, Identity, InvertedResidual, build_op
from squeezenas.space.ops import CANDIDATES, SKIP, parse_op


def test_thirteen_candidates_round_trip():
    assert len(CANDIDATES) == 13 and len(set(CANDIDATES)) == 13 and CANDIDATES[-1] == SKIP
    for code in CANDIDATES:
        assert parse_op(code).code == code


def test_parse_fields():
    s = parse_op("k5_d1_e6_g1")
    assert (s.kernel, s.dilation, s.expansion, s.groups, s.is_skip) == (5, 1, 6, 1, False)
    assert s.hidden(16) == 96
    assert parse_op("skip").is_skip


@pytest.mark.parametrize("bad", ["k4_d1_e1_g1", "k3_d0_e1_g1", "conv3x3", "k3_d1_e1", "", "k3_d1_e1_g0"])
def test_bad_codes_are_rejected(bad):
    with pytest.raises(ValueError, match="candidate code"):
        parse_op(bad)


@pytest.mark.parametrize("code", CANDIDATES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in,c_out", [(16, 16), (16, 24)])
def test_every_op_builds_and_trains(code, stride, c_in, c_out):
    op = build_op(code, c_in, c_out, stride)
    x = torch.randn(2, c_in, 9, 12, requires_grad=True)  # odd height: the stride-2 forms must still fit
    y = op(x)
    assert y.shape == (2, c_out, -(-9 // stride), 12 // stride)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if any(True for _ in op.parameters()):
        assert all(p.grad is not None for p in op.parameters())


def test_skip_forms_and_residual():
    assert isinstance(build_op("skip", 16, 16, 1), Identity)
    assert isinstance(build_op("skip", 16, 24, 1), ChannelSkip)
    assert isinstance(build_op("skip", 16, 24, 2), FactorizedReduce)
    assert isinstance(build_op("skip", 16, 16, 2), FactorizedReduce)
    assert build_op("k3_d1_e1_g1", 16, 16, 1).residual
    assert not build_op("k3_d1_e1_g1", 16, 16, 2).residual
    assert not build_op("k3_d1_e1_g1", 16, 24, 1).residual


def test_inverted_residual_structure():
    op = build_op("k5_d2_e3_g2", 16, 24, 1)
    assert isinstance(op, InvertedResidual)
    conv1, dw, conv2 = op.op[0], op.op[3], op.op[6]
    assert (conv1.in_channels, conv1.out_channels, conv1.groups, conv1.bias) == (16, 48, 2, None)
    assert (dw.kernel_size, dw.dilation, dw.padding, dw.groups) == ((5, 5), (2, 2), (4, 4), 48)
    assert (conv2.out_channels, conv2.groups) == (24, 2)


def test_identity_skip_passes_input_through():
    x = torch.randn(1, 8, 5, 5)
    assert torch.equal(build_op("skip", 8, 8, 1)(x), x)
