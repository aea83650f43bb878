"""Search step throughput on N processes (torchrun) against one, at the same global batch.

Each setting runs a short synthetic search (``squeezenas.search.run_search``, the real loop: DDP weights, θ
all-reduced, rank 0 writing) under ``torch.distributed.run --nproc_per_node N``, with the machine's cores shared
out (``--threads-total`` over the N processes), and reads the seconds per step of every epoch after the first
(the first pays for allocations and, on CPU, the compiled depthwise kernel's load) from the search's log.csv.
images/s = global batch / (median s/step); speed-up against the first setting of ``--procs``.

    python bench/search_scaling.py --procs 1 2 --json bench/results/search_scaling/cpu.json          # defaults
    python bench/search_scaling.py --procs 1 2 --threads-per-proc 1 --crop 64 128 --epochs 2 --steps 3  # small

On GPUs (one process per GPU; --threads-total is then only the CPU threads of each process's data loading):
    python bench/search_scaling.py --device cuda --procs 1 2 4 8 --crop 512 1024 --batch-size 64 --amp
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="process counts to compare (first: baseline)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--supernet", default="mixture", choices=["mixture", "path"])
    ap.add_argument("--space", default="small")
    ap.add_argument("--batch-size", type=int, default=8, help="the global batch, shared out over the processes")
    ap.add_argument("--crop", type=int, nargs=2, default=[128, 256], metavar=("H", "W"))
    ap.add_argument("--epochs", type=int, default=3, help="the first is not timed")
    ap.add_argument("--steps", type=int, default=4, help="steps per epoch")
    ap.add_argument("--threads-total", type=int, default=os.cpu_count() or 1,
                    help="CPU threads of all processes together (each gets threads-total / N, at least 1)")
    ap.add_argument("--threads-per-proc", type=int,
                    help="instead: this many threads in every process (1 on a CPU other jobs share: two threads then "
                         "wait on each other, docs/SEARCH.md)")
    ap.add_argument("--amp", action="store_true", help="mixed precision (float16 on CUDA, bfloat16 on CPU)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: run one search, write its history
    return ap.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """One process of a setting: the search, then rank 0 writes the per-epoch rows."""
    import torch

    from squeezenas.cost.tables import mac_table
    from squeezenas.search import SearchConfig, run_search

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    h, w = args.crop
    cfg = SearchConfig(space=args.space, dataset="synthetic",
                       data_options={"num_samples": args.batch_size * args.steps, "size": [h, w]},
                       crop=(h, w), scale=(1.0, 1.0), batch_size=args.batch_size, epochs=args.epochs,
                       steps_per_epoch=args.steps, warmup_epochs=0, cost_ramp=0.0, prune_threshold=0.0,
                       supernet=args.supernet, workers=0, device=args.device, amp=args.amp, progress=False,
                       tensorboard=False, out=str(args.worker / "search"))
    r = run_search(cfg, mac_table(args.space, (h, w), num_classes=8))
    if int(os.environ.get("RANK", "0")) == 0:
        (args.worker / "history.json").write_text(json.dumps(r.history))


def run_setting(args: argparse.Namespace, procs: int, tmp: Path) -> dict:
    threads = args.threads_per_proc or max(1, args.threads_total // procs)
    folder = tmp / f"procs{procs}"
    folder.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
           __file__, "--worker", str(folder), "--device", args.device, "--supernet", args.supernet, "--space",
           args.space, "--batch-size", str(args.batch_size), "--crop", *map(str, args.crop), "--epochs",
           str(args.epochs), "--steps", str(args.steps)] + (["--amp"] if args.amp else [])
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{procs} process(es) failed:\n{proc.stderr[-3000:]}")
    rows = json.loads((folder / "history.json").read_text())[1:]  # the first epoch is not timed
    per_step = statistics.median(r["seconds_per_step"] for r in rows)
    return {"procs": procs, "threads_per_proc": threads, "per_proc_batch": args.batch_size // procs,
            "s_per_step_median": per_step, "s_per_step": [r["seconds_per_step"] for r in rows],
            "images_per_s": args.batch_size / per_step, "peak_memory_gib_rank0": rows[-1]["peak_memory_gib"],
            "wall_s": time.perf_counter() - t0, "load_before": load_before, "load_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        results = [run_setting(args, n, Path(tmp)) for n in args.procs]
    base = results[0]["images_per_s"]
    for r in results:
        r["speedup"] = r["images_per_s"] / base
        print(f"{r['procs']} process(es) × {r['threads_per_proc']} thread(s), batch {r['per_proc_batch']} each: "
              f"{r['s_per_step_median']:.3f} s/step, {r['images_per_s']:.2f} img/s, ×{r['speedup']:.2f}, "
              f"peak {r['peak_memory_gib_rank0']:.2f} GiB (rank 0), load {r['load_before']:.1f}→{r['load_after']:.1f}")
    if args.json is not None:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "worker"}
        report = {"settings": settings, "results": results, "torch": torch.__version__,
                  "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
