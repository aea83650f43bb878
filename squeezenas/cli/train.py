"""Train a network of the space or a zoo network on a segmentation dataset (CPU, one GPU, or torchrun for many).

Values come from the defaults, then --config run.yaml, then the options given here. --resume continues the run
in --out from last.pt (its saved config supplies every option not given again; --epochs may be raised).
Multi-GPU: torchrun --nproc_per_node N -m squeezenas.cli.main train ...
"""

from __future__ import annotations

import argparse
from squeezenas.cli.common import data_args, overrides_from
from squeezenas.engine.config import SCHEDULES, resolve_train_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.argument_default = argparse.SUPPRESS  # only options actually given override the config file / saved run
    p.add_argument("--config", default=None, help="YAML/JSON file of TrainConfig fields (unknown keys are errors)")
    p.add_argument("--model", help="zoo name, genotype .json/.yaml, or a checkpoint of ours to start from")
    data_args(p, "camvid, cityscapes, folder or synthetic (default camvid)")
    p.add_argument("--num-classes", type=int, help="must equal the dataset's (default: the dataset's)")
    p.add_argument("--out", help="run folder (config.yaml, last.pt, best.pt, log.csv, train.log, tb/)")
    p.add_argument("--epochs", type=int, help="total epochs (default 100); may be raised on --resume")
    p.add_argument("--batch-size", type=int, help="per process (default 8)")
    p.add_argument("--lr", type=float, help="base learning rate (default 0.05)")
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="default 1e-5")
    p.add_argument("--schedule", choices=SCHEDULES, help="step: ÷10 at 50%% and 75%% of the epochs (default); poly")
    p.add_argument("--poly-power", type=float, help="exponent of the poly schedule (default 0.9)")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="training crop (default 768 768)")
    p.add_argument("--scale", type=float, nargs=2, metavar=("LOW", "HIGH"), help="random rescaling (default 0.5 2.0)")
    p.add_argument("--workers", type=int, help="DataLoader workers per process (default 4)")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap the steps of an epoch (smoke runs)")
    p.add_argument("--val-split", help="split to validate on (default val)")
    p.add_argument("--val-every", type=int, help="validate every N epochs (default 1; the last epoch always)")
    p.add_argument("--val-size", type=int, nargs=2, metavar=("H", "W"),
                   help="run the network at H W during validation (scored at full resolution)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, help="mixed precision (float16 on CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="NHWC on CUDA (default on)")
    p.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, help="SyncBatchNorm under torchrun on CUDA (default on)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--init-from", metavar="CKPT",
                   help="initialise from every tensor of CKPT (ours or released) with matching name and shape")
    p.add_argument("--log-every", type=int, help="TensorBoard loss/lr every N steps (default 10)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, help="tqdm progress bars (default on)")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, help="TensorBoard logs in out/tb (default on)")


def run(args: argparse.Namespace) -> int:
    from squeezenas.engine.train import train

    cfg = resolve_train_config(overrides_from(args), args.config)
    summary = train(cfg)
    if summary["best_miou"] is not None:
        print(f"best val mIoU {100 * summary['best_miou']:.2f}% at epoch {summary['best_epoch']}; "
              f"checkpoints in {summary['out']} (best.pt, last.pt)")
    return 0
