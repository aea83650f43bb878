"""A CPU kernel the supernet step spends most time waiting for: the depthwise convolution's weight gradient.

oneDNN computes it 5–7× slower than the depthwise forward (27 ms against 4 ms for a 5×5 kernel on
8×96×32×64, one thread), and depthwise backward was the largest single cost of a CPU search step. For
channels-last float32 tensors the gradient is one pass over (input, output gradient) with every tap's
accumulator in L1: ∂W[c, i, j] = Σ_{n, y, x} ∂y[n, y, x, c] · x[n, y·s − p + i·d, x·s − p + j·d, c], the
innermost loop over contiguous channels (vectorised by the compiler).

It is compiled on first use with ``torch.utils.cpp_extension.load_inline`` (a C++ compiler and ninja; the build
is cached); if that fails, or for other dtypes, layouts or devices, ``depthwise_conv2d`` is plain
``F.conv2d`` with PyTorch's own backward. Set ``SQUEEZENAS_NO_CPU_KERNELS=1`` to never build it.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <vector>

// x: (N, C, H, W) and gy: (N, C, Ho, Wo), both channels-last contiguous float32. Returns (C, 1, k, k).
torch::Tensor dw_weight_grad(torch::Tensor x, torch::Tensor gy, int64_t k, int64_t stride, int64_t pad,
                             int64_t dil) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = gy.size(2), Wo = gy.size(3), KK = k * k;
  const float* xp = x.data_ptr<float>();
  const float* gp = gy.data_ptr<float>();
  const int64_t T = at::get_num_threads();
  std::vector<float> acc(static_cast<size_t>(T * KK * C), 0.f);
  at::parallel_for(0, N * Ho, 1, [&](int64_t begin, int64_t end) {
    float* a0 = acc.data() + at::get_thread_num() * KK * C;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / Ho, yo = r % Ho;
      for (int64_t xo = 0; xo < Wo; ++xo) {
        const float* g = gp + ((n * Ho + yo) * Wo + xo) * C;
        for (int64_t i = 0; i < k; ++i) {
          const int64_t yi = yo * stride - pad + i * dil;
          if (yi < 0 || yi >= H) continue;
          for (int64_t j = 0; j < k; ++j) {
            const int64_t xi = xo * stride - pad + j * dil;
            if (xi < 0 || xi >= W) continue;
            const float* __restrict__ v = xp + ((n * H + yi) * W + xi) * C;
            float* __restrict__ a = a0 + (i * k + j) * C;
            for (int64_t c = 0; c < C; ++c) a[c] += g[c] * v[c];
          }
        }
      }
    }
  });
  auto out = torch::zeros({KK, C}, x.options());
  float* o = out.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t q = 0; q < KK * C; ++q) o[q] += acc[t * KK * C + q];
  return out.t().contiguous().view({C, 1, k, k});
}
"""

ENABLED = os.environ.get("SQUEEZENAS_NO_CPU_KERNELS", "") in ("", "0")  # switch for tests and comparisons
_module = None
_failed = False


def _kernels():
    """The compiled extension, or None (build failed or disabled)."""
    global _module, _failed
    if _module is None and not _failed:
        try:
            from torch.utils.cpp_extension import load_inline

            # vector width from what this CPU runs (the build cache is keyed by name: one build per ISA)
            isa = torch.backends.cpu.get_cpu_capability()
            flags = {"AVX2": ["-mavx2", "-mfma"], "AVX512": ["-mavx512f", "-mavx2", "-mfma"]}.get(isa, [])
            _module = load_inline(
                name=f"squeezenas_cpu_kernels_{isa.lower()}", cpp_sources=_SOURCE, functions=["dw_weight_grad"],
                extra_cflags=["-O3", "-fopenmp", *flags], extra_ldflags=["-fopenmp"], verbose=False,
            )
        except Exception as e:  # no compiler, no ninja, ...: PyTorch's own backward then
            _failed = True
            warnings.warn(f"squeezenas: CPU depthwise kernel not built ({type(e).__name__}: {e}); "
                          "using PyTorch's depthwise backward", stacklevel=2)
    return _module


def available() -> bool:
    return _kernels() is not None


class _DepthwiseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, stride: int, pad: int, dil: int):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, pad, dil)
        return F.conv2d(x, weight, None, stride, pad, dil, x.shape[1])

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, pad, dil = ctx.conf
        gx = gw = None
        gy = gy.contiguous(memory_format=torch.channels_last)
        if ctx.needs_input_grad[0]:
            gx = torch.ops.aten.convolution_backward(
                gy, x, weight, None, [stride] * 2, [pad] * 2, [dil] * 2, False, [0, 0], x.shape[1],
                [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            gw = _kernels().dw_weight_grad(x, gy, weight.shape[-1], stride, pad, dil)
        return gx, gw, None, None, None


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, stride: int, pad: int, dil: int) -> torch.Tensor:
    """``F.conv2d(x, weight, None, stride, pad, dil, groups=C)``, with the fast weight gradient where it applies
    (CPU, float32, channels-last, not under autocast, kernels of 5×5 and more: PyTorch's own is as fast for
    3×3)."""
    if (ENABLED and weight.shape[-1] >= 5 and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and torch.is_grad_enabled() and weight.requires_grad
            and not torch.is_autocast_enabled("cpu") and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
            and weight.shape[-1] == weight.shape[-2] and _kernels() is not None):
        return _DepthwiseConv.apply(x, weight, stride, pad, dil)
    return F.conv2d(x, weight, None, stride, pad, dil, x.shape[1])
