"""Training throughput (images/s) of one step — forward, loss, backward, SGD — per model; writes JSON.

    python bench/train_throughput.py --model squeezenas_lat_small mobilenetv3_large_lraspp \\
        --batch 8 --crop 176 240 --device cpu --out bench/results/train_throughput_cpu.json
    python bench/train_throughput.py ... --device cuda --amp          # same flags on a GPU

The step is the engine's (``squeezenas.engine.train``): same loss, autocast and channels-last policy (NHWC on
CUDA unless --no-channels-last). Random images and labels of the given crop; ``--warmup`` untimed steps
(allocator, oneDNN/cuDNN kernel selection), then steps timed one by one (device synchronised before each
clock read) until both ``--min-time`` seconds and ``--min-steps`` steps are reached. Reports the median step
time and its spread; images/s = batch / median. Timings on a shared machine vary with the other load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from squeezenas.cost.timing import device_fingerprint
from squeezenas.engine.amp import autocast
from squeezenas.engine.schedule import segmentation_loss
from squeezenas.models.resolve import resolve_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_step(model_spec: str, batch: int, crop: tuple[int, int], device: torch.device, *, amp: bool,
                       channels_last: bool, num_classes: int, warmup: int, min_time: float, min_steps: int,
                       max_steps: int) -> dict[str, Any]:
    """Median seconds of one training step of ``model_spec`` and what was measured."""
    torch.manual_seed(0)
    model = resolve_model(model_spec, num_classes=num_classes).model.to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
    image = torch.randn(batch, 3, *crop, device=device)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, num_classes, (batch, *crop), device=device)

    def step() -> None:
        with autocast(device, amp):
            logits = model(image)
        loss = segmentation_loss(logits, target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_steps and (len(times) < min_steps or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    median = statistics.median(times)
    return {"model": model_spec, "params": sum(p.numel() for p in model.parameters()), "steps": len(times),
            "median_s": median, "p10_s": q[0], "p90_s": q[-1], "images_per_s": batch / median}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["squeezenas_lat_small", "mobilenetv3_large_lraspp"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, nargs=2, default=(176, 240), metavar=("H", "W"))
    ap.add_argument("--num-classes", type=int, default=11)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--amp", action="store_true", help="float16 autocast + grad scaling on CUDA, bfloat16 on CPU")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="NHWC (default: on CUDA only, as in training)")
    ap.add_argument("--threads", type=int, default=None, help="CPU intra-op threads (default: torch's)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=10.0)
    ap.add_argument("--min-steps", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write (default: print only)")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    channels_last = args.channels_last if args.channels_last is not None else device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    results = []
    for spec in args.model:
        r = time_training_step(spec, args.batch, tuple(args.crop), device, amp=args.amp, channels_last=channels_last,
                               num_classes=args.num_classes, warmup=args.warmup, min_time=args.min_time,
                               min_steps=args.min_steps, max_steps=args.max_steps)
        print(f"{spec}: {r['images_per_s']:.2f} img/s (median step {1e3 * r['median_s']:.1f} ms, "
              f"p10-p90 {1e3 * r['p10_s']:.1f}-{1e3 * r['p90_s']:.1f} ms, {r['steps']} steps)")
        results.append(r)
    record = {"what": "training step (forward + loss + backward + SGD), images/s = batch / median step time",
              "batch": args.batch, "crop": list(args.crop), "num_classes": args.num_classes, "amp": args.amp,
              "channels_last": channels_last, "warmup": args.warmup, "fingerprint": device_fingerprint(args.device),
              "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print("wrote", args.out)


if __name__ == "__main__":
    main()
