"""Supervised segmentation training: the paper's SGD recipe, one process or many (torchrun), resumable runs."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from squeezenas.data import DatasetInfo, dataset_info
from squeezenas.engine.checkpoint import (
    InitReport, check_num_classes, cpu_state_dict, init_from_checkpoint, load_checkpoint, save_checkpoint,
)
from squeezenas.engine.config import TrainConfig, config_to_yaml
from squeezenas.engine.distributed import (
    DistInfo, all_reduce_sum, broadcast_buffers, cleanup_distributed, env_dist_info, init_distributed,
    resolve_device, unwrap, wrap_ddp,
)
from squeezenas.engine.amp import forward_batch
from squeezenas.engine.evaluate import evaluate
from squeezenas.engine.runlog import RunLog, open_tensorboard, silent, write_csv
from squeezenas.engine.schedule import (
    build_optimizer, build_scheduler, class_weights, restore_schedule, segmentation_loss,
)
from squeezenas.engine.loaders import (
    batches, build_eval_dataset, build_eval_loader, build_train_dataset, build_train_loader, set_epoch,
)
from squeezenas.models.weights import CheckpointError, load_state_dict_strict
from squeezenas.utils.config import ConfigError, to_dict
from squeezenas.utils.io import LOCK_FILE, RunLock, atomic_write_json, atomic_write_text, check_output

Log = Callable[[str], None]
EpochCallback = Callable[[int, nn.Module, dict[str, Any]], None]
RESUME_FIXED = ("model", "dataset")  # a resumed run cannot change what it trains


class RunExistsError(ValueError):
    """The run folder already holds a run and neither --resume nor another --out was given."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""


# ----------------------------------------------------------------------------------------------- the loop


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                    loader: DataLoader, device: torch.device, epoch: int, *, scaler: torch.amp.GradScaler | None = None,
                    amp: bool = False, channels_last: bool = False, max_steps: int | None = None,
                    ignore_index: int = 255, progress: bool = False, writer: Any = None, log_every: int = 10,
                    start_step: int = 0, weight: torch.Tensor | None = None) -> dict[str, float]:
    """One pass over ``loader`` (at most ``max_steps`` batches): forward, loss, backward, SGD step, and a
    scheduler step per batch. Returns the mean loss over all processes, steps, images, seconds, images/s and
    the lr at the epoch's start."""
    model.train()
    steps = min(len(loader), max_steps or len(loader))
    it = batches(loader)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=steps, desc=f"epoch {epoch + 1}", unit="batch", leave=False, dynamic_ncols=True)
    loss_sum = torch.zeros((), device=device)
    lr = optimizer.param_groups[0]["lr"]  # the epoch's lr (poly: its first step's)
    images, start, done = 0, time.perf_counter(), 0
    for image, mask in it:
        logits, mask = forward_batch(model, image, mask, device, amp=amp, channels_last=channels_last)
        loss = segmentation_loss(logits, mask, ignore_index, weight)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        loss_sum += loss.detach()
        images += image.shape[0]
        done += 1
        if done % log_every == 0 or done == steps:
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"the loss is {value} at epoch {epoch + 1}, step {done}; "
                                         "lower --lr (or leave out --amp)")
            if progress:
                it.set_postfix(loss=f"{value:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if writer is not None:
                writer.add_scalar("train/loss", value, start_step + done)
                writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], start_step + done)
        if done == steps:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    mean_loss = all_reduce_sum(float(loss_sum), device) / max(1, all_reduce_sum(done, device))
    total_images = all_reduce_sum(images, device)
    return {"loss": mean_loss, "steps": done, "images": int(total_images), "seconds": seconds,
            "images_per_s": total_images / max(seconds, 1e-9), "lr": lr}


# ------------------------------------------------------------------------------------------- the network


def build_network(cfg: TrainConfig, info: DatasetInfo, ckpt: dict[str, Any] | None) -> tuple[nn.Module, dict[str, Any]]:
    """The network to train and what identifies it in checkpoints (``model_name`` and/or ``genotype``).

    On resume it is rebuilt from the checkpoint and its weights loaded strictly; otherwise ``cfg.model`` is
    resolved (zoo name, genotype file, or a checkpoint whose weights become the start).
    """
    from squeezenas.models.builder import build_model
    from squeezenas.models.resolve import resolve_model
    from squeezenas.models.zoo import ZOO, get_model
    from squeezenas.space.genotype import Genotype

    if ckpt is not None:
        n, source = ckpt["num_classes"], f"{cfg.out}/last.pt"
        if ckpt.get("genotype"):
            model = build_model(Genotype.from_dict(ckpt["genotype"], where=f"{source}: genotype"), num_classes=n)
        elif ckpt.get("model_name") in ZOO:
            model = get_model(ckpt["model_name"], num_classes=n)
        else:
            raise CheckpointError(f"{source} names neither a genotype nor a zoo model")
        check_num_classes(model, n, info.num_classes, source)
        load_state_dict_strict(model, ckpt["model"], source=source)
        return model, {"model_name": ckpt.get("model_name"), "genotype": ckpt.get("genotype")}
    resolved = resolve_model(cfg.model, num_classes=info.num_classes)
    check_num_classes(resolved.model, resolved.num_classes, info.num_classes, cfg.model,
                      hint=f" ({cfg.dataset}); to fine-tune it on them, pass its architecture as --model and "
                           "the checkpoint as --init-from (the classifier is re-initialised)")
    model_name = cfg.model if cfg.model in ZOO else resolved.meta.get("model_name")
    genotype = resolved.genotype.to_dict() if resolved.genotype is not None else None
    return resolved.model, {"model_name": model_name, "genotype": genotype}


# --------------------------------------------------------------------------------------------- run files


def check_run_folder(cfg: TrainConfig) -> dict[str, Any] | None:
    """Refuse to overwrite a run; on resume return its last checkpoint (checked against ``cfg``)."""
    last = Path(cfg.out) / "last.pt"
    if not cfg.resume:
        if last.exists():
            raise RunExistsError(f"{cfg.out} already holds a run ({last}); pass --resume to continue it "
                                 "(optionally with a larger --epochs) or choose another --out")
        return None
    if not last.is_file():
        raise FileNotFoundError(f"nothing to resume: {last} not found")
    ckpt = load_checkpoint(last)
    saved = ckpt["config"]
    for key in RESUME_FIXED:
        if saved.get(key) != getattr(cfg, key):
            raise ConfigError(f"--resume: the run in {cfg.out} trains {key} {saved.get(key)!r}, not "
                              f"{getattr(cfg, key)!r}; choose another --out for a new run")
    return ckpt


def config_changes(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """Human-readable ``field: old → new`` for fields a resumed run changed."""
    now = to_dict(cfg)
    return [f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in now if k != "resume" and saved.get(k) != now[k]]


# ------------------------------------------------------------------------------------------------ train()


def train(cfg: TrainConfig, on_epoch_end: EpochCallback | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.dataset``; writes config.yaml, last.pt, best.pt, log.csv, train.log and tb/
    into ``cfg.out`` (rank 0 only). Everything is checked (data, network, run folder) before anything is written.

    ``on_epoch_end(epochs_done, network, row)`` runs on every process after each epoch (``row`` holds the
    epoch's numbers and, after validation, ``metrics``). Returns a summary: best mIoU and epoch, last metrics,
    history, steps, seconds.
    """
    if not cfg.model and not cfg.resume:
        raise ConfigError("which network? pass --model NAME|GENOTYPE.json|CKPT")
    if not cfg.out:
        raise ConfigError("where to write the run? pass --out DIR")
    owns_group = env_dist_info().distributed and not torch.distributed.is_initialized()
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        from squeezenas.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()  # keep large activations in the heap between steps (docs/SUPERNET.md)
    dist = init_distributed(device)
    try:
        return _train(cfg, device, dist, on_epoch_end)
    finally:
        if owns_group:
            cleanup_distributed()


def _train(cfg: TrainConfig, device: torch.device, dist: DistInfo, on_epoch_end: EpochCallback | None) -> dict[str, Any]:
    check_output(cfg.out, kind="folder", what="--out")
    ckpt = check_run_folder(cfg)
    info = dataset_info(cfg.dataset, cfg.data_root)
    if cfg.num_classes is not None and cfg.num_classes != info.num_classes:
        raise ConfigError(f"num_classes is {cfg.num_classes} but dataset {cfg.dataset} has {info.num_classes} classes")
    train_set = build_train_dataset(cfg.dataset, cfg.data_root, "train", cfg.crop, cfg.scale, cfg.color_jitter,
                                    **cfg.data_options)
    val_set = build_eval_dataset(cfg.dataset, cfg.data_root, cfg.val_split, cfg.val_size, **cfg.data_options)
    weight, weight_record = class_weights(cfg, train_set, info.num_classes, (ckpt or {}).get("class_weights"))
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    model, identity = build_network(cfg, info, ckpt)
    init_report = init_from_checkpoint(model, cfg.init_from) if cfg.init_from and ckpt is None else None

    cuda = device.type == "cuda"
    channels_last = cfg.channels_last and cuda
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    train_loader = build_train_loader(train_set, cfg.batch_size, cfg.workers, cfg.seed, dist, pin_memory=cuda)
    val_loader = build_eval_loader(val_set, cfg.workers, dist, pin_memory=cuda)
    steps_per_epoch = min(len(train_loader), cfg.max_steps_per_epoch or len(train_loader))
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and cuda)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        restore_schedule(optimizer, scheduler, ckpt["scheduler"], ckpt["epoch"] * steps_per_epoch)
        if ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
    ddp_model = wrap_ddp(model, device, cfg.sync_bn)

    out = Path(cfg.out)
    log = RunLog(out / "train.log") if dist.is_main else silent
    writer = None
    lock = RunLock(out / LOCK_FILE, "--out") if dist.is_main else contextlib.nullcontext()
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        lock.__enter__()  # another run writing into the same folder is refused here, before anything is written
        atomic_write_text(out / "config.yaml", config_to_yaml(cfg))
        if weight_record is not None:
            atomic_write_json(out / "class_weights.json", {"classes": list(info.classes), **weight_record})
        if cfg.tensorboard:
            writer = open_tensorboard(out / "tb")
    try:
        state = _start_state(ckpt) | {"class_weights": weight_record, "weight": weight}
        _announce(log, cfg, info, identity, model, device, dist, steps_per_epoch, ckpt, init_report, optimizer)
        return _epochs(cfg, ddp_model, optimizer, scheduler, scaler, train_loader, val_loader, device, dist,
                       info, identity, state, steps_per_epoch, channels_last, log, writer, on_epoch_end)
    except KeyboardInterrupt:
        log(f"interrupted; {out / 'last.pt'} holds the last finished epoch: continue with --resume --out {out}")
        raise
    finally:
        if writer is not None:
            writer.close()
        lock.__exit__(None, None, None)


def _start_state(ckpt: dict[str, Any] | None) -> dict[str, Any]:
    """Counters a run carries from epoch to epoch (and through checkpoints)."""
    if ckpt is None:
        return {"epoch": 0, "step": 0, "best_miou": None, "best_epoch": None, "metrics": None, "history": []}
    return {k: ckpt.get(k) for k in ("epoch", "step", "best_miou", "best_epoch", "metrics")} | {
        "history": list(ckpt.get("history") or [])}


def _announce(log: Log, cfg: TrainConfig, info: DatasetInfo, identity: dict[str, Any], model: nn.Module,
              device: torch.device, dist: DistInfo, steps_per_epoch: int, ckpt: dict[str, Any] | None,
              init_report: InitReport | None, optimizer: torch.optim.Optimizer) -> None:
    """Say what is about to happen (and, on resume, what changed)."""
    params = sum(p.numel() for p in model.parameters())
    name = identity["model_name"] or cfg.model
    log(f"train {name} ({params / 1e6:.2f}M parameters) on {cfg.dataset} ({info.num_classes} classes), "
        f"{cfg.epochs} epochs × {steps_per_epoch} steps of batch {cfg.batch_size} × {dist.world_size} process(es) "
        f"on {device}{' with AMP' if cfg.amp else ''}; writing to {cfg.out}")
    if init_report is not None:
        log(init_report.summary())
    if ckpt is not None:
        log(f"resuming after epoch {ckpt['epoch']} (step {ckpt['step']}), lr now "
            f"{optimizer.param_groups[0]['lr']:.3g}")
        for change in config_changes(ckpt["config"], cfg):
            log(f"  changed on resume: {change}")


def _epochs(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
            train_loader: DataLoader, val_loader: DataLoader, device: torch.device, dist: DistInfo,
            info: DatasetInfo, identity: dict[str, Any], state: dict[str, Any], steps_per_epoch: int,
            channels_last: bool, log: Log, writer: Any, on_epoch_end: EpochCallback | None) -> dict[str, Any]:
    """The epoch loop: train, validate every ``val_every`` epochs and at the end, checkpoint, log."""
    out = Path(cfg.out)
    start = time.perf_counter()
    if state["epoch"] >= cfg.epochs:
        log(f"the run already finished {state['epoch']} epochs; raise --epochs to train longer")
    for epoch in range(state["epoch"], cfg.epochs):
        set_epoch(train_loader, epoch, cfg.seed, dist.rank)
        weight = state["weight"].to(device) if state["weight"] is not None else None
        stats = train_one_epoch(model, optimizer, scheduler, train_loader, device, epoch, scaler=scaler, amp=cfg.amp,
                                channels_last=channels_last, max_steps=steps_per_epoch, ignore_index=info.ignore_index,
                                progress=cfg.progress and dist.is_main, writer=writer, log_every=cfg.log_every,
                                start_step=state["step"], weight=weight)
        state["step"] += stats["steps"]
        state["epoch"] = epoch + 1
        row: dict[str, Any] = {"epoch": epoch + 1, "step": state["step"], "lr": stats["lr"], "train_loss": stats["loss"],
                               "images_per_s": stats["images_per_s"], "train_seconds": stats["seconds"]}
        metrics = None
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            broadcast_buffers(model)  # CPU DDP without SyncBN: score and save rank 0's BN statistics everywhere
            metrics = evaluate(unwrap(model), val_loader, info.num_classes, device, amp=cfg.amp,
                               channels_last=channels_last, ignore_index=info.ignore_index,
                               progress=cfg.progress and dist.is_main, desc=f"val {epoch + 1}")
            state["metrics"] = {k: metrics[k] for k in ("miou", "pixel_accuracy", "mean_accuracy", "num_images")}
            row.update(val_miou=metrics["miou"], val_pixel_accuracy=metrics["pixel_accuracy"])
        improved = metrics is not None and not math.isnan(metrics["miou"]) and (
            state["best_miou"] is None or metrics["miou"] > state["best_miou"])
        if improved:
            state["best_miou"], state["best_epoch"] = metrics["miou"], epoch + 1
        state["history"].append(row)
        if dist.is_main:
            _save_epoch(out, cfg, model, optimizer, scheduler, scaler, info, identity, state, improved, writer, row)
        log(_epoch_line(row, state))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, unwrap(model), {**row, "metrics": metrics})
    return {"out": str(out), "epochs": state["epoch"], "steps": state["step"], "best_miou": state["best_miou"],
            "best_epoch": state["best_epoch"], "last_metrics": state["metrics"], "history": state["history"],
            "seconds": time.perf_counter() - start}


def _save_epoch(out: Path, cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                scaler: Any, info: DatasetInfo, identity: dict[str, Any], state: dict[str, Any], improved: bool,
                writer: Any, row: dict[str, Any]) -> None:
    """last.pt (and best.pt when validation improved), the CSV log, TensorBoard epoch scalars."""
    ckpt = {
        "model": cpu_state_dict(unwrap(model)), **identity, "num_classes": info.num_classes,
        "classes": list(info.classes), "palette": [list(c) for c in info.palette], "dataset": cfg.dataset,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        **{k: state[k] for k in ("epoch", "step", "best_miou", "best_epoch", "metrics", "history", "class_weights")},
        "config": to_dict(cfg),
    }
    save_checkpoint(out / "last.pt", ckpt)
    if improved:
        save_checkpoint(out / "best.pt", ckpt)
    write_csv(out / "log.csv", state["history"])
    if writer is not None:
        for key in ("train_loss", "val_miou", "val_pixel_accuracy", "images_per_s"):
            if key in row:
                writer.add_scalar(f"epoch/{key}", row[key], row["epoch"])
        writer.flush()


def _epoch_line(row: dict[str, Any], state: dict[str, Any]) -> str:
    line = f"epoch {row['epoch']}: loss {row['train_loss']:.4f}, lr {row['lr']:.3g}, {row['images_per_s']:.1f} img/s"
    if "val_miou" in row:
        line += f", val mIoU {100 * row['val_miou']:.2f}%"
    if state["best_miou"] is not None:
        line += f" (best {100 * state['best_miou']:.2f}% at epoch {state['best_epoch']})"
    return line
