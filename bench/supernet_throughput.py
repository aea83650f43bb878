"""Throughput (images/s) and peak memory of one full search step of the supernet.

One step = forward with per-sample Gumbel weights (``--supernet mixture``) or one sampled candidate per position
(``--supernet path``), pixel CE + α·expected cost, backward, SGD (momentum) step on the weights and Adam step on
θ — what the search loop runs. Same flags on CPU and CUDA, e.g.

    python bench/supernet_throughput.py --device cpu --batch-size 8 --crop 128 256 --impl fused
    python bench/supernet_throughput.py --device cuda --batch-size 16 --crop 384 480 --impl fused --amp \\
        --channels-last --json out.json

Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the process's maximum resident set
(``getrusage``), which includes the interpreter and libraries (baseline printed alongside).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squeezenas.space import get_macro  # noqa: E402
from squeezenas.supernet import SuperNet  # noqa: E402
from squeezenas.supernet.fused import FusedOptions  # noqa: E402
from squeezenas.utils.runtime import tune_cpu_allocator  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--space", default="small")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop", type=int, nargs=2, default=[128, 256], metavar=("H", "W"))
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--impl", default="fused", choices=["naive", "fused"])
    ap.add_argument("--supernet", default="mixture", choices=["mixture", "path"],
                    help="mixture: every candidate per sample; path: one sampled candidate per position and batch")
    ap.add_argument("--layout", default="auto", choices=["auto", "wide", "chain"], help="fused layout")
    ap.add_argument("--no-fold", action="store_true", help="fused: keep the expansion BN as a separate op")
    ap.add_argument("--no-tune-malloc", action="store_true",
                    help="CPU: leave glibc returning large blocks to the kernel (see utils/runtime.py)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the supernet forward")
    ap.add_argument("--amp", action="store_true", help="autocast: float16 on CUDA, bfloat16 on CPU")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--prune-to", type=int, default=0, help="keep this many candidates per position (0: all)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--saved-activations", action="store_true",
                    help="also report the bytes autograd keeps for backward in one forward (unique storages): "
                         "the activation memory of a step, measurable on CPU for a CUDA configuration")
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args(argv)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def saved_activation_bytes(fwd, x: torch.Tensor, dev: torch.device, amp_dtype: torch.dtype, amp: bool) -> int:
    """Bytes of the distinct storages autograd saves for backward during one forward."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp):
            fwd(x, temperature=5.0)
    return sum(storages.values())


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = args.device == "cpu" and not args.no_tune_malloc and tune_cpu_allocator()
    fused_options = FusedOptions(layout=args.layout, fold_expansion_bn=not args.no_fold)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    baseline_rss = max_rss_mib()
    macro = get_macro(args.space)
    net = SuperNet(macro, args.classes, fused=args.impl == "fused", fused_options=fused_options).to(dev)
    if args.prune_to:  # keep a random subset: θ drawn from N(0, 1), then the top ``prune_to`` per position
        with torch.no_grad():
            net.theta.normal_(generator=torch.Generator().manual_seed(args.seed))
        net.prune_to(args.prune_to)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    cost = torch.rand(net.theta.shape, generator=torch.Generator().manual_seed(1)).to(dev)
    opt_w = torch.optim.SGD(net.weight_parameters(), lr=0.01, momentum=0.9, weight_decay=1e-5, foreach=True)
    opt_a = torch.optim.Adam(net.arch_parameters(), lr=1e-3)
    fwd = torch.compile(net) if args.compile else net
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(dev.type, enabled=args.amp and amp_dtype == torch.float16)
    H, W = args.crop
    x = torch.randn(args.batch_size, 3, H, W, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, args.classes, (args.batch_size, H, W), device=dev)

    def step() -> None:
        opt_w.zero_grad(set_to_none=True)
        opt_a.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=args.amp):
            if args.supernet == "path":  # as the search's loss_terms: one Gumbel draw for the batch
                logits = fwd(x, path=net.sample_path(net.gumbel_noise(1)[0], 5.0))
            else:
                logits = fwd(x, temperature=5.0)
            loss = F.cross_entropy(logits.float(), y, ignore_index=255)
        loss = loss + args.alpha * net.expected_cost(cost)
        scaler.scale(loss).backward()
        scaler.step(opt_w)
        scaler.step(opt_a)
        scaler.update()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    med = statistics.median(times) if times else float("nan")  # --steps 0: only --saved-activations
    result = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "space": args.space, "batch_size": args.batch_size, "crop": [H, W], "impl": args.impl,
        "supernet": args.supernet,
        "layout": args.layout, "fold": not args.no_fold, "malloc_tuned": bool(tuned),
        "compile": args.compile, "amp": args.amp, "channels_last": args.channels_last,
        "alive_per_position": "-".join(map(str, net.num_alive())),
        "steps": args.steps, "warmup": args.warmup,
        "step_s_median": med, "step_s_min": min(times, default=med), "step_s_max": max(times, default=med),
        "images_per_s": args.batch_size / med,
        # CPU seconds this process used per step (all threads): stable when other processes share the cores
        "cpu_s_per_step_median": statistics.median(cpu_times) if cpu_times else float("nan"),
        "load_average": list(os.getloadavg()),
    }
    if args.saved_activations:
        result["saved_activations_gib"] = saved_activation_bytes(fwd, x, dev, amp_dtype, args.amp) / 2**30
    if dev.type == "cuda":
        result["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["max_rss_mib"] = max_rss_mib()
        result["baseline_rss_mib"] = baseline_rss
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
