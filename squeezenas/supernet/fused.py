"""The mixture of a superblock computed fast, with the semantics (values, gradients, running statistics) of
``SuperBlock.forward_reference``, from the candidates' own parameters.

Two layouts of the inverted-residual candidates (the skip forms run as their modules):

``wide`` (default on CUDA, and on CPU with several threads): candidates share their input, and BN, ReLU and
depthwise convs act per channel, so all hidden channels are laid side by side and processed by a few wide
kernels::

    x ─ one 1×1 conv C_in → ΣH_j (g=2 weights as block-diagonal slices), its BN folded in (below) ─ ReLU
      ─ one depthwise conv over ΣH_j channels (3×3 d=1/d=2 and 5×5 kernels embedded in one 5×5 kernel)
      ─ one BN + ReLU over ΣH_j channels
      ─ one GEMM per candidate on its slice of the hidden channels → J·C_out channels side by side
      ─ one BN over J·C_out channels (each candidate's own batch statistics, as its own BN would)
      ─ per-sample weighted sum over the J candidates

``chain`` (default on one CPU thread): candidate after candidate, so that each candidate's intermediate tensors
stay in cache between the ops that produce and consume them; dilated depthwise kernels run on subsampled or
polyphase inputs as plain k×k kernels (see ``_chain_blocks``).

Both: the BN after each expansion conv is folded into the conv: in training mode the batch statistics of
W·x are exact functions of x's own (mean W·μ_x, variance w_cᵀ Σ_x w_c, Σ_x the C_in×C_in covariance
computed once per superblock), so the biggest tensor of the block (the expanded one, at the input resolution
where the stride is 2) is never read for statistics, never normalised in a separate pass, and not kept for a
BN backward. On CPU the depthwise weight gradient comes from a compiled kernel (``cpu_kernels.py``), and
dilated depthwise kernels never run as such (their weight gradient is slow on CPU).

The weighting cannot move before the last BN: in training mode that BN normalises with the batch statistics of
each candidate's unweighted output. Nothing here owns parameters: every forward reads (and concatenates) the
candidates' own weights, autograd routes gradients back to them, and running statistics are written back into
each candidate's BN buffers, so ``state_dict``, paths, ``subnet_state_dict`` and pruning see ordinary
per-candidate modules. Pruning rebuilds the plan without the removed candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from squeezenas.models.blocks import Identity, InvertedResidual
import squeezenas.supernet.cpu_kernels as cpu_kernels
from squeezenas.supernet.cpu_kernels import depthwise_conv2d


@dataclass
class FusedOptions:
    """Implementation choices (same results); the defaults are the fastest measured (docs/SUPERNET.md). One
    instance per supernet (``SuperNet.fused_options``), shared by its superblocks."""

    layout: str = "auto"  # "wide" | "chain" | "auto": wide on CUDA and on multi-threaded CPU with the compiled
    #                       depthwise kernel, chain otherwise
    merge_depthwise: bool = True  # wide: one depthwise conv for all (kernel, dilation) groups, in 5×5 kernels
    split_dilated: bool = True  # chain: dilated depthwise on x[::d, ::d] (stride d) or polyphase parts (stride 1)
    embed_dilated: bool = True  # chain, otherwise: dilated depthwise kernels as the equivalent dense kernel
    fold_expansion_bn: bool = True  # expansion BN folded into its conv, statistics from x's covariance
    projection: str = "auto"  # wide, channels-last: "gemm" (one GEMM per slice of the hidden matrix, no copies),
    #                           "conv" (split + conv + cat: plain ops for torch.compile), "auto" (conv if compiling)



@dataclass(frozen=True)
class _Candidate:
    code: str
    column: int  # index in θ / in the mixture weights
    hidden: int
    groups: int
    kernel: int
    dilation: int


@dataclass
class FusedPlan:
    """Layout of the fused hidden channels of one superblock; rebuilt when its candidates change."""

    blocks: list[_Candidate]  # inverted-residual candidates, grouped by (kernel, dilation)
    dw_groups: list[tuple[int, int, int, int, int]]  # (kernel, dilation, channels, first, end candidate)
    others: list[tuple[str, int]]  # (code, column) of skip forms with weights (ChannelSkip, FactorizedReduce)
    momentum: float
    eps: float
    _index: dict  # device → LongTensor of block columns

    @property
    def hidden_sizes(self) -> list[int]:
        return [c.hidden for c in self.blocks]

    def columns(self, device: torch.device) -> torch.Tensor:
        idx = self._index.get(device)
        if idx is None:
            idx = self._index[device] = torch.tensor([c.column for c in self.blocks], device=device)
        return idx


def build_plan(block) -> FusedPlan | None:
    """The fused layout of ``block``'s alive candidates, or None when they cannot be fused (BN settings)."""
    blocks, others = [], []
    for j, code in enumerate(block.codes):
        m = block.candidates[code] if code in block.candidates else None
        if m is None or isinstance(m, Identity):
            continue
        if isinstance(m, InvertedResidual):
            conv1, dw = m.op[0], m.op[3]
            blocks.append(_Candidate(code, j, conv1.out_channels, conv1.groups, dw.kernel_size[0], dw.dilation[0]))
        else:
            others.append((code, j))
    order = {}
    for c in blocks:
        order.setdefault((c.kernel, c.dilation), len(order))
    blocks.sort(key=lambda c: order[(c.kernel, c.dilation)])  # stable: θ order inside a group
    dw_groups: list[tuple[int, int, int, int, int]] = []
    for i, c in enumerate(blocks):
        if dw_groups and dw_groups[-1][:2] == (c.kernel, c.dilation):
            k, d, n, a, _ = dw_groups[-1]
            dw_groups[-1] = (k, d, n + c.hidden, a, i + 1)
        else:
            dw_groups.append((c.kernel, c.dilation, c.hidden, i, i + 1))
    bns = [bn for c in blocks for bn in _bns(block, c.code)]
    settings = {(bn.momentum, bn.eps, bn.track_running_stats, bn.affine) for bn in bns}
    if len(settings) > 1 or any(m is None or not t or not a for m, _, t, a in settings):
        return None
    momentum, eps = (settings.pop()[:2]) if settings else (0.1, 1e-5)
    return FusedPlan(blocks, dw_groups, others, momentum, eps, {})


def _bns(block, code: str) -> tuple[nn.BatchNorm2d, nn.BatchNorm2d, nn.BatchNorm2d]:
    op = block.candidates[code].op
    return op[1], op[4], op[7]


def _dense_1x1(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped 1×1 conv weight (out, in/g, 1, 1) as the equivalent dense (out, in, 1, 1) block-diagonal one."""
    if groups == 1:
        return weight
    w = weight.flatten(1)
    return torch.block_diag(*w.chunk(groups, dim=0)).unflatten(1, (-1, 1, 1))


def _embed(weight: torch.Tensor, kernel: int, dilation: int, size: int) -> torch.Tensor:
    """A (C, 1, k, k) depthwise kernel with dilation d as the equivalent (C, 1, size, size) dense kernel."""
    extent = dilation * (kernel - 1) + 1
    if extent == size and dilation == 1:
        return weight
    out = weight.new_zeros(weight.shape[0], 1, size, size)
    s = (size - extent) // 2
    out[:, :, s:s + extent:dilation, s:s + extent:dilation] = weight
    return out


def _batch_norm(x: torch.Tensor, bns: list[nn.BatchNorm2d], plan: FusedPlan, training: bool) -> torch.Tensor:
    """One BN over the channels of several BN modules laid side by side, with their own statistics."""
    rm = torch.cat([bn.running_mean for bn in bns])
    rv = torch.cat([bn.running_var for bn in bns])
    weight = torch.cat([bn.weight for bn in bns])
    bias = torch.cat([bn.bias for bn in bns])
    out = F.batch_norm(x, rm, rv, weight, bias, training, plan.momentum, plan.eps)
    if training:
        with torch.no_grad():
            sizes = [bn.num_features for bn in bns]
            torch._foreach_copy_([bn.running_mean for bn in bns], list(rm.split(sizes)))
            torch._foreach_copy_([bn.running_var for bn in bns], list(rv.split(sizes)))
            torch._foreach_add_([bn.num_batches_tracked for bn in bns], 1)
    return out


def _input_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean (C,) and biased covariance (C, C) of x over (N, H, W) (at least float32), and the count."""
    c = x.shape[1]
    m = x.numel() // c
    if m < 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
    with torch.autocast(x.device.type, enabled=False):  # statistics in float32 even under mixed precision
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view for channels-last input
        rows = rows.to(torch.promote_types(x.dtype, torch.float32))
        mean = rows.mean(0)
        centred = rows - mean
        return mean, centred.t().mm(centred) / m, m


def _folded_expansion(x: torch.Tensor, weight: torch.Tensor, bns: list[nn.BatchNorm2d], plan: FusedPlan,
                      stats: tuple[torch.Tensor, torch.Tensor, int] | None) -> torch.Tensor:
    """BN(conv1×1(x)) as one conv with bias. ``weight`` (H, C_in) dense. In training mode (``stats`` given) the
    batch statistics of conv(x) are exact functions of x's: mean = W·μ_x, var_c = w_cᵀ Σ_x w_c, so the wide
    hidden tensor is never read for them, and autograd differentiates through them as BN would."""
    with torch.autocast(x.device.type, enabled=False):
        weight, bias = _fold(weight, bns, plan, stats)
    return F.conv2d(x, weight.to(x.dtype)[:, :, None, None], bias.to(x.dtype))


def _fold(weight: torch.Tensor, bns: list[nn.BatchNorm2d], plan: FusedPlan,
          stats: tuple[torch.Tensor, torch.Tensor, int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    gamma = torch.cat([bn.weight for bn in bns]) if len(bns) > 1 else bns[0].weight
    beta = torch.cat([bn.bias for bn in bns]) if len(bns) > 1 else bns[0].bias
    if stats is not None:
        mu, cov, m = stats
        w = weight.to(mu.dtype)
        mean = w.mv(mu)
        var = (w.mm(cov) * w).sum(1).clamp_min(0)
        with torch.no_grad():
            unbiased = var * (m / (m - 1))
            sizes = [bn.num_features for bn in bns]
            mom = plan.momentum
            dt = bns[0].running_mean.dtype
            torch._foreach_lerp_([bn.running_mean for bn in bns], list(mean.to(dt).split(sizes)), mom)
            torch._foreach_lerp_([bn.running_var for bn in bns], list(unbiased.to(dt).split(sizes)), mom)
            torch._foreach_add_([bn.num_batches_tracked for bn in bns], 1)
    else:
        mean = torch.cat([bn.running_mean for bn in bns])
        var = torch.cat([bn.running_var for bn in bns])
        w = weight.to(mean.dtype)
    scale = gamma * torch.rsqrt(var + plan.eps)
    return w * scale[:, None], beta - scale * mean


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def fused_mixture(block, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``block.forward_reference(x, weights)``, computed with wide operations (same values and gradients)."""
    if block._plan is None:
        block._plan = build_plan(block) or False
    plan: FusedPlan | bool = block._plan
    if plan is False:
        return block.forward_reference(x, weights)
    training = block.training
    layout = block.options.layout
    if layout == "auto":  # measured in docs/SUPERNET.md
        wide = x.is_cuda or (torch.get_num_threads() > 1 and cpu_kernels.ENABLED and cpu_kernels.available())
        layout = "wide" if wide else "chain"
    out = None
    if plan.blocks:
        stats = _input_stats(x) if training and block.options.fold_expansion_bn else None
        if layout == "wide":
            out = _fused_blocks(block, plan, x, weights, training, stats)
        else:
            out = _chain_blocks(block, plan, x, weights, training, stats)
    for code, j in plan.others:
        out = _accumulate(out, block.branch(code, x), weights[:, j])
    if block.residual:
        if out is None:
            return x
        return out.add_(x) if out.dtype == x.dtype else x + out
    return out if out.dtype == x.dtype else out.to(torch.promote_types(out.dtype, x.dtype))


def _accumulate(out: torch.Tensor | None, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """out + w·z with per-sample w, in place (the running sum is never saved for backward)."""
    w = w.to(z.dtype).view(-1, 1, 1, 1)
    return z * w if out is None else out.addcmul_(z, w)


def _chain_blocks(block, plan: FusedPlan, x: torch.Tensor, weights: torch.Tensor, training: bool,
                  stats) -> torch.Tensor:
    """Candidate after candidate, each chain short enough to stay in cache.

    Dilated depthwise kernels (k×k, dilation d) become plain k×k ones (with the expansion BN folded, whose
    statistics come from all of x): with stride d the dilated kernel only reads the pixels (i·d, j·d), so the
    expansion and the depthwise conv run on x[::d, ::d] alone; with stride 1 (sizes divisible by d) the
    image splits into its d² polyphase components, each convolved independently (batched), then interleaved
    back. Otherwise the dilated kernel runs as the equivalent dense kernel (the dilated depthwise weight
    gradient is slow on CPU)."""
    out = None
    stride = block.position.stride
    ops = [block.candidates[c.code].op for c in plan.blocks]
    fold = block.options.fold_expansion_bn
    if fold:  # fold every candidate's expansion BN at once (a few ops instead of ~15 each)
        dense = torch.cat([_dense_1x1(op[0].weight, c.groups).flatten(1) for op, c in zip(ops, plan.blocks)])
        with torch.autocast(x.device.type, enabled=False):
            w1, b1 = _fold(dense, [op[1] for op in ops], plan, stats)
        w1 = w1.to(x.dtype)[:, :, None, None].split(plan.hidden_sizes)
        b1 = b1.to(x.dtype).split(plan.hidden_sizes)
    fmt = torch.channels_last if _channels_last(x) else torch.contiguous_format
    phased: dict[int, torch.Tensor] = {}
    for i, (c, op) in enumerate(zip(plan.blocks, ops)):
        d, mode, src = c.dilation, "plain", x
        if d > 1 and fold and block.options.split_dilated:
            if stride == d:
                mode, src = "subsample", x[:, :, ::d, ::d]
            elif stride == 1 and x.shape[2] % d == 0 and x.shape[3] % d == 0:
                if d not in phased:
                    phased[d] = _to_phases(x, d, fmt)
                mode, src = "phases", phased[d]
        h = F.relu_(F.conv2d(src, w1[i], b1[i]) if fold else op[1](op[0](x)))
        if mode != "plain":
            h = depthwise_conv2d(h, op[3].weight, 1, (c.kernel - 1) // 2, 1)
        elif d > 1 and block.options.embed_dilated:
            size = d * (c.kernel - 1) + 1
            h = depthwise_conv2d(h, _embed(op[3].weight, c.kernel, d, size), stride, (size - 1) // 2, 1)
        else:
            h = depthwise_conv2d(h, op[3].weight, stride, d * (c.kernel - 1) // 2, d)
        z = op[7](op[6](F.relu_(op[4](h))))
        if mode == "phases":
            z = _from_phases(z, d, fmt)
        out = _accumulate(out, z, weights[:, c.column])
    return out


def _to_phases(x: torch.Tensor, d: int, fmt: torch.memory_format) -> torch.Tensor:
    """(N, C, H, W) → (d²·N, C, H/d, W/d): the polyphase components x[p::d, q::d], batched (p, q, n)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // d, d, w // d, d).permute(3, 5, 0, 1, 2, 4)
    return x.reshape(d * d * n, c, h // d, w // d).contiguous(memory_format=fmt)


def _from_phases(z: torch.Tensor, d: int, fmt: torch.memory_format) -> torch.Tensor:
    """Inverse of ``_to_phases``: interleave the d² components back into one image."""
    dn, c, h, w = z.shape
    z = z.reshape(d, d, dn // (d * d), c, h, w).permute(2, 3, 4, 0, 5, 1)
    return z.reshape(dn // (d * d), c, h * d, w * d).contiguous(memory_format=fmt)


def _fused_blocks(block, plan: FusedPlan, x: torch.Tensor, weights: torch.Tensor, training: bool,
                  stats) -> torch.Tensor:
    cands = plan.blocks
    mods = [block.candidates[c.code].op for c in cands]
    stride = block.position.stride
    nhwc = _channels_last(x)
    fmt = torch.channels_last if nhwc else torch.contiguous_format

    # expansion: one 1×1 conv producing every candidate's hidden channels
    w1 = torch.cat([_dense_1x1(m[0].weight, c.groups) for m, c in zip(mods, cands)])
    if block.options.fold_expansion_bn:
        h = F.relu_(_folded_expansion(x, w1.flatten(1), [m[1] for m in mods], plan, stats))
    else:
        h = F.relu_(_batch_norm(F.conv2d(x, w1), [m[1] for m in mods], plan, training))

    # depthwise: one conv per (kernel, dilation) group, or one for all with kernels embedded in the largest
    groups = plan.dw_groups
    if len(groups) == 1:
        k, d, n, _, _ = groups[0]
        h = depthwise_conv2d(h, torch.cat([m[3].weight for m in mods]), stride, d * (k - 1) // 2, d)
    elif block.options.merge_depthwise:
        size = max(d * (k - 1) + 1 for k, d, *_ in groups)
        w2 = torch.cat([_embed(m[3].weight, c.kernel, c.dilation, size) for m, c in zip(mods, cands)])
        h = depthwise_conv2d(h, w2, stride, (size - 1) // 2, 1)
    else:
        parts = []
        for (k, d, n, a, b), chunk in zip(groups, h.split([g[2] for g in groups], dim=1)):
            w2 = torch.cat([m[3].weight for m in mods[a:b]])
            parts.append(F.conv2d(chunk.contiguous(memory_format=fmt), w2, None, stride, d * (k - 1) // 2, d, n))
        h = torch.cat(parts, dim=1)
    h = F.relu_(_batch_norm(h, [m[4] for m in mods], plan, training))

    # projection: each candidate's own 1×1 conv, outputs side by side, one BN with per-candidate statistics
    n, _, hh, ww = h.shape
    J, c_out = len(cands), block.position.c_out
    projection = block.options.projection
    if projection == "auto":
        projection = "conv" if torch.compiler.is_compiling() else "gemm"
    if nhwc and projection == "gemm":  # (N·H·W, ΣH_j) matrix; a GEMM per column slice, no copies
        w3 = [_dense_1x1(m[6].weight, c.groups).flatten(1).to(h.dtype) for m, c in zip(mods, cands)]
        with torch.autocast(h.device.type, enabled=False):  # already in h's dtype; out= GEMMs are not autocast
            y = _Projection.apply(h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]), plan.hidden_sizes, *w3)
        y = y.view(n, hh, ww, J * c_out).permute(0, 3, 1, 2)
    else:
        chunks = h.split(plan.hidden_sizes, dim=1)
        y = torch.cat([F.conv2d(chunk.contiguous(memory_format=fmt), m[6].weight, None, 1, 0, 1, c.groups)
                       for chunk, m, c in zip(chunks, mods, cands)], dim=1)
    y = _batch_norm(y, [m[7] for m in mods], plan, training)

    # per-sample weighted sum over candidates
    w = weights.index_select(1, plan.columns(weights.device)).to(y.dtype)  # (N, J)
    if nhwc:  # (N, H·W, J, C) view of the channels-last tensor; the result stays channels-last
        out = (y.permute(0, 2, 3, 1).reshape(n, hh * ww, J, c_out) * w.view(n, 1, J, 1)).sum(2)
        return out.view(n, hh, ww, c_out).permute(0, 3, 1, 2)
    return (y.view(n, J, c_out, hh, ww) * w.view(n, J, 1, 1, 1)).sum(1)


class _Projection(torch.autograd.Function):
    """Candidate j's 1×1 conv on columns [a_j, a_j + H_j) of the hidden matrix (rows = pixels), outputs side by
    side: one GEMM per candidate reading and writing slices in place (no split copies, no concatenation)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, sizes: list[int], *weights: torch.Tensor) -> torch.Tensor:
        c = weights[0].shape[0]
        y = h.new_empty(h.shape[0], c * len(weights))
        a = 0
        for j, (size, w) in enumerate(zip(sizes, weights)):
            torch.mm(h[:, a:a + size], w.t(), out=y[:, j * c:(j + 1) * c])
            a += size
        ctx.save_for_backward(h, *weights)
        ctx.sizes = sizes
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        h, *weights = ctx.saved_tensors
        c = weights[0].shape[0]
        dh = torch.empty_like(h) if ctx.needs_input_grad[0] else None
        dws: list[torch.Tensor | None] = []
        a = 0
        for j, (size, w) in enumerate(zip(ctx.sizes, weights)):
            g = dy[:, j * c:(j + 1) * c]
            if dh is not None:
                torch.mm(g, w, out=dh[:, a:a + size])
            dws.append(g.t().mm(h[:, a:a + size]) if ctx.needs_input_grad[2 + j] else None)
            a += size
        return (dh, None, *dws)
