"""SuperBlock: the fused mixture equals the candidate-by-candidate reference (values, gradients, running stats)."""

import copy
import itertools

import pytest
import torch

from squeezenas.models.blocks import InvertedResidual
from squeezenas.space import CANDIDATES
from squeezenas.space.macro import PositionSpec
from squeezenas.supernet import SuperBlock
from squeezenas.supernet import fused as fu

# the three kinds of positions: identity skip (residual), channel change, stride 2 (factorized reduce)
POSITIONS = {
    "residual": PositionSpec(1, 8, 8, 1, 0),
    "channels": PositionSpec(2, 8, 12, 1, 0),
    "stride2": PositionSpec(3, 8, 12, 2, 0),
}


@pytest.fixture
def options():
    """The fused mixture's options of the blocks a test makes (each supernet or block has its own)."""
    return fu.FusedOptions()


def _block(pos: PositionSpec, seed: int = 0, options: fu.FusedOptions | None = None) -> SuperBlock:
    torch.manual_seed(seed)
    block = SuperBlock(pos, CANDIDATES, fused=False, options=options).double()
    for m in block.modules():  # non-trivial BN parameters and running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    return block


def _run(block: SuperBlock, x: torch.Tensor, w: torch.Tensor):
    x = x.detach().clone().requires_grad_()
    w = w.detach().clone().requires_grad_()
    out = block(x, w)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    grads = {n: p.grad for n, p in block.named_parameters() if p.grad is not None}
    return out, x.grad, w.grad, grads, {n: b.clone() for n, b in block.named_buffers()}


CASES = list(itertools.product(POSITIONS, ["wide", "chain"], [True, False], [False, True]))


@pytest.mark.parametrize("where,layout,fold,channels_last", CASES)
@pytest.mark.parametrize("train", [True, False])
def test_fused_equals_reference(options, where, layout, fold, channels_last, train):
    options.layout, options.fold_expansion_bn = layout, fold
    ref = _block(POSITIONS[where], options=options).train(train)
    fused = copy.deepcopy(ref)
    fused.fused = True
    x = torch.randn(3, 8, 9, 11, dtype=torch.double)  # odd sizes: stride-2 padding paths
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        ref, fused = ref.to(memory_format=torch.channels_last), fused.to(memory_format=torch.channels_last)
    w = torch.softmax(torch.randn(3, len(CANDIDATES), dtype=torch.double), -1)
    r, f = _run(ref, x, w), _run(fused, x, w)
    torch.testing.assert_close(f[0], r[0], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(f[1], r[1], rtol=1e-9, atol=1e-10)  # d/dx
    torch.testing.assert_close(f[2], r[2], rtol=1e-9, atol=1e-10)  # d/dw (mixture weights)
    assert f[3].keys() == r[3].keys()
    for name in r[3]:
        torch.testing.assert_close(f[3][name], r[3][name], rtol=1e-8, atol=1e-10, msg=name)
    for name in r[4]:  # running statistics and batch counters, written back into every candidate's BN
        torch.testing.assert_close(f[4][name], r[4][name], rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("layout", ["wide", "chain"])
def test_fused_float32_close_to_reference(options, layout):
    options.layout = layout
    ref = _block(POSITIONS["stride2"], options=options).float()
    fused = copy.deepcopy(ref)
    fused.fused = True
    x = torch.randn(4, 8, 16, 16)
    w = torch.softmax(torch.randn(4, len(CANDIDATES)), -1)
    torch.testing.assert_close(fused(x, w), ref(x, w), rtol=1e-4, atol=1e-4)


def test_pruned_candidates_are_not_computed(options):
    block = _block(POSITIONS["residual"], options=options)
    block.fused = True
    for code in CANDIDATES[:9]:
        block.remove(code)
    assert block.alive_codes == list(CANDIDATES[9:])
    calls = []
    for code in block.alive_codes:
        if isinstance(block.candidates[code], InvertedResidual):
            block.candidates[code].op[0].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 8, 8, 8, dtype=torch.double)
    w = torch.zeros(2, len(CANDIDATES), dtype=torch.double)
    w[:, 9:] = 1 / 4
    for layout in ("wide", "chain"):
        options.layout = layout
        out = block(x, w)
        block.fused = False
        torch.testing.assert_close(out, block(x, w))
        block.fused = True
    # the fused path reads weights directly (no module calls); the plan only lists alive candidates
    assert [c.code for c in block._plan.blocks] == [c for c in block.alive_codes if c != "skip"]


def test_skip_only_residual_position_is_identity():
    block = _block(POSITIONS["residual"])
    for code in CANDIDATES[:-1]:
        block.remove(code)
    x = torch.randn(2, 8, 5, 5, dtype=torch.double)
    w = torch.zeros(2, len(CANDIDATES), dtype=torch.double)
    w[:, -1] = 1
    for fused in (True, False):
        block.fused = fused
        torch.testing.assert_close(block(x, w), x)


def test_cannot_remove_last_candidate():
    block = SuperBlock(POSITIONS["channels"], ("k3_d1_e1_g1", "skip"))
    block.remove("skip")
    with pytest.raises(ValueError, match="last candidate"):
        block.remove("k3_d1_e1_g1")


def test_path_mode_and_errors():
    block = _block(POSITIONS["residual"]).eval()
    x = torch.randn(1, 8, 6, 6, dtype=torch.double)
    with pytest.raises(RuntimeError, match="set_path"):
        block(x)
    block.set_path("k5_d1_e3_g1")
    torch.testing.assert_close(block(x), block.candidates["k5_d1_e3_g1"](x))
    with pytest.raises(ValueError, match=r"weights must be \(N, 13\)"):
        block(x, torch.ones(1, 12))
    block.remove("k3_d1_e1_g2")
    with pytest.raises(ValueError, match="pruned"):
        block.set_path("k3_d1_e1_g2")


@pytest.mark.parametrize("layout", ["wide", "chain"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_autocast_bfloat16_cpu(options, layout, channels_last):
    options.layout = layout
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ref = _block(POSITIONS["stride2"], options=options).float().to(memory_format=fmt)
    fused = copy.deepcopy(ref)
    fused.fused = True
    x = torch.randn(2, 8, 12, 12).contiguous(memory_format=fmt)
    w = torch.softmax(torch.randn(2, len(CANDIDATES)), -1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = fused(x, w), ref(x, w)
    assert a.dtype == b.dtype
    torch.testing.assert_close(a.float(), b.float(), rtol=0.1, atol=0.1)
    a.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fused.parameters())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("layout", ["wide", "chain"])
def test_fused_equals_reference_cuda(options, layout):
    options.layout = layout
    ref = _block(POSITIONS["stride2"], options=options).cuda().to(memory_format=torch.channels_last)
    fused = copy.deepcopy(ref)
    fused.fused = True
    x = torch.randn(3, 8, 9, 11, dtype=torch.double, device="cuda").contiguous(memory_format=torch.channels_last)
    w = torch.softmax(torch.randn(3, len(CANDIDATES), dtype=torch.double, device="cuda"), -1)
    r, f = _run(ref, x, w), _run(fused, x, w)
    torch.testing.assert_close(f[0], r[0], rtol=1e-9, atol=1e-10)
    for name in r[3]:
        torch.testing.assert_close(f[3][name], r[3][name], rtol=1e-8, atol=1e-10, msg=name)
    with torch.autocast("cuda", dtype=torch.float16):
        a, b = fused.float()(x.float(), w.float()), ref.float()(x.float(), w.float())
    torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("split,embed", [(True, True), (False, True), (False, False)])
@pytest.mark.parametrize("size", [(8, 12), (9, 11)])  # even: polyphase path at stride 1; odd: dense kernel
def test_chain_dilated_paths(options, split, embed, size):
    options.layout, options.split_dilated, options.embed_dilated = "chain", split, embed
    for where in ("residual", "stride2"):
        ref = _block(POSITIONS[where], options=options).train()
        fused = copy.deepcopy(ref)
        fused.fused = True
        x = torch.randn(2, 8, *size, dtype=torch.double).contiguous(memory_format=torch.channels_last)
        w = torch.softmax(torch.randn(2, len(CANDIDATES), dtype=torch.double), -1)
        r, f = _run(ref, x, w), _run(fused, x, w)
        for a, b in zip(f[:3], r[:3]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
        for name in r[3]:
            torch.testing.assert_close(f[3][name], r[3][name], rtol=1e-8, atol=1e-10, msg=name)
        for name in r[4]:
            torch.testing.assert_close(f[4][name], r[4][name], rtol=1e-9, atol=1e-12, msg=name)
