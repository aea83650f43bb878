"""The proxyless search loop: weights and θ of the supernet trained together on the target task, with the
resource loss α · Σ p·C from a cost table (MACs or measured latency), temperature annealing, early pruning of
improbable candidates, an optional cost target, and exact resumption; on one process or under torchrun
(``search.parallel``: DDP weights, θ identical on every rank, rank 0 writes).

``run_search(cfg, cost_table)`` is the library entry point; ``squeezenas search`` is a thin layer over it. It
draws nothing: ``theta.json`` holds the distribution over the epochs (``viz.search_plots`` draws it).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from squeezenas.cost.tables import CostTable
from squeezenas.engine.amp import autocast
from squeezenas.engine.distributed import (
    DistInfo, barrier, cleanup_distributed, env_dist_info, init_distributed, on_main_process, peak_memory_gib,
    resolve_device,
)
from squeezenas.engine.loaders import batches, epoch_seed
from squeezenas.engine.runlog import RunLog, open_tensorboard, silent
from squeezenas.search.checkpoint import CHECKPOINT, SearchState, check_resume_config, load_search_checkpoint
from squeezenas.search.config import SearchConfig
from squeezenas.search.data import SearchData, build_data, check_world, cycle
from squeezenas.search.objective import (
    CostModel, check_cost_table, cost_weight, entropy, loss_terms, lr_at, make_projector, ramp_steps, resolve_size,
    temperature_at,
)
from squeezenas.search.outputs import SearchResult, finish, theta_entry, write_epoch
from squeezenas.search.parallel import Replicas
from squeezenas.space.macro import MacroArch, get_space
from squeezenas.supernet import SuperNet
from squeezenas.utils.config import to_dict
from squeezenas.utils.io import LOCK_FILE, RunLock, atomic_write_json, check_output

PER_UNIT = {"gmacs": "GMAC", "ms": "ms"}


# --- one step, one epoch --------------------------------------------------------------------------------------


def _joint_step(st: SearchState, cfg: SearchConfig, cost: CostModel, rep: Replicas,
                batch: tuple[torch.Tensor, torch.Tensor], temperature: float, warm: bool,
                alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's update: one batch, one loss, the weights (SGD) and θ (Adam) stepped together."""
    with autocast(batch[0].device, cfg.amp):
        ce, cost_term = loss_terms(st.net, cost, alpha, *batch, temperature, with_cost=not warm,
                                   supernet=cfg.supernet, through=cfg.cost_through, model=rep.model,
                                   path_noise=rep.path_noise)
    loss = ce + cost_term
    st.opt_w.zero_grad(set_to_none=True)
    st.opt_t.zero_grad(set_to_none=True)
    st.scaler.scale(loss).backward()  # DDP averages the weights' gradients over the ranks
    st.scaler.step(st.opt_w)
    if not warm:
        rep.average_theta_grads(st.net)
        st.scaler.step(st.opt_t)
    st.scaler.update()
    return loss, ce, cost_term


def _alternate_step(st: SearchState, cfg: SearchConfig, cost: CostModel, rep: Replicas,
                    batch: tuple[torch.Tensor, torch.Tensor], held_out: Iterator[Any], temperature: float, warm: bool,
                    alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FBNet's update: the weights on a training batch (θ fixed), then θ on a held-out batch (weights fixed)."""
    device = batch[0].device
    with autocast(device, cfg.amp):
        ce, _ = loss_terms(st.net, cost, alpha, *batch, temperature, with_cost=False, supernet=cfg.supernet,
                           model=rep.model, path_noise=rep.path_noise)
    st.opt_w.zero_grad(set_to_none=True)
    st.scaler.scale(ce).backward()
    for p in st.net.arch_parameters():
        p.grad = None
    st.scaler.step(st.opt_w)
    st.scaler.update()
    cost_term = torch.zeros((), device=device)
    if not warm:
        image, mask = next(held_out)
        image, mask = image.to(device, non_blocking=True, memory_format=st.memory_format), mask.to(device)
        weights = st.net.weight_parameters()
        for p in weights:  # no weight gradients: cheaper, and the weights must not move
            p.requires_grad_(False)
        try:  # the plain supernet (no weight gradients for DDP to reduce); θ's are averaged below
            with autocast(device, cfg.amp):
                h_ce, cost_term = loss_terms(st.net, cost, alpha, image, mask, temperature, with_cost=True,
                                             supernet=cfg.supernet, through=cfg.cost_through,
                                             path_noise=rep.path_noise)
            st.opt_t.zero_grad(set_to_none=True)
            st.scaler.scale(h_ce + cost_term).backward()
            rep.average_theta_grads(st.net)
            st.scaler.step(st.opt_t)
            st.scaler.update()
        finally:
            for p in weights:
                p.requires_grad_(True)
    return ce + cost_term, ce, cost_term


def _prune(st: SearchState, rep: Replicas, cost: CostModel, threshold: float) -> list[tuple[int, str]]:
    """Pruning, the same on every rank (θ is); DDP is rebuilt over the surviving weights, as the SGD is. With a
    target, the survivors are projected onto it again: the removed mass would otherwise move the expected cost
    off the target, and after the last θ-step nothing would bring it back."""
    removed = st.prune(threshold)
    if removed:
        rep.wrap(st.net)
        if st.projector is not None:
            st.project(cost)
    return removed


def _run_epoch(st: SearchState, cfg: SearchConfig, data: SearchData, cost: CostModel, rep: Replicas,
               total_steps: int, total_theta_steps: int, writer: Any) -> dict[str, Any]:
    """One epoch of the search; returns its log row (without the end-of-epoch pruning; this rank's losses)."""
    epoch, device = st.epoch, rep.device
    warm = epoch < cfg.warmup
    ramp = ramp_steps(cfg, total_theta_steps)
    rep.seed_epoch(data.loader, epoch, cfg.seed)  # batches, augmentation (workers=0) and the Gumbel noise
    held_out = (cycle(data.theta_loader, epoch_seed(cfg.seed, epoch, 1))  # stream 1: the θ batches
                if data.theta_loader is not None else None)
    st.net.train()
    sums = {"loss": 0.0, "ce": 0.0, "cost_term": 0.0}
    pruned: list[tuple[int, str]] = []
    n = 0
    temp = cfg.temperature_start
    bar = tqdm(total=data.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}" + (" (warm-up)" if warm else ""),
               unit="step", leave=False, dynamic_ncols=True, disable=not (cfg.progress and rep.info.is_main))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for image, mask in batches(data.loader):
        if n >= data.steps_per_epoch:
            break
        temp = cfg.temperature_start if warm else temperature_at(st.theta_step, total_theta_steps,
                                                                  cfg.temperature_start, cfg.temperature_end)
        for g in st.opt_w.param_groups:
            g["lr"] = lr_at(st.step, total_steps, cfg.base_lr)
        batch = (image.to(device, non_blocking=True, memory_format=st.memory_format),
                 mask.to(device, non_blocking=True))
        alpha = cost_weight(st.alpha, st.theta_step, ramp)
        if held_out is None:
            loss, ce, cost_term = _joint_step(st, cfg, cost, rep, batch, temp, warm, alpha)
        else:
            loss, ce, cost_term = _alternate_step(st, cfg, cost, rep, batch, held_out, temp, warm, alpha)
        if not warm:
            if st.projector is not None:
                st.project(cost)
            st.theta_step += 1
            if (cfg.prune_every and cfg.prune_threshold > 0 and st.theta_step % cfg.prune_every == 0
                    and st.theta_step >= ramp):
                pruned += _prune(st, rep, cost, cfg.prune_threshold)
        st.step += 1
        n += 1
        for k, v in (("loss", loss), ("ce", ce), ("cost_term", cost_term)):
            sums[k] += float(v.detach())
        if writer is not None and st.step % cfg.log_every == 0:
            _log_step(writer, st, cost, loss, ce, cost_term, temp)
        if not bar.disable:
            e = cost.table.calibrate(cost.expected(st.net.probabilities().detach()))
            bar.set_postfix(ce=f"{float(ce.detach()):.3f}", t=f"{temp:.2f}", cost=f"{e:.4g}")
        bar.update(1)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "phase": "warmup" if warm else "search", "steps": n, "seconds": seconds,
            "seconds_per_step": seconds / max(n, 1), "temperature": temp,
            **{k: v / max(n, 1) for k, v in sums.items()}, "_pruned": pruned}


def _log_step(writer: Any, st: SearchState, cost: CostModel, loss: torch.Tensor, ce: torch.Tensor,
              cost_term: torch.Tensor, temperature: float) -> None:
    p = st.net.probabilities().detach()
    writer.add_scalar("loss/total", float(loss.detach()), st.step)
    writer.add_scalar("loss/ce", float(ce.detach()), st.step)
    writer.add_scalar("loss/cost_term", float(cost_term.detach()), st.step)
    writer.add_scalar("search/expected_cost", cost.table.calibrate(cost.expected(p)), st.step)
    writer.add_scalar("search/temperature", temperature, st.step)
    writer.add_scalar("search/entropy", entropy(p), st.step)
    writer.add_scalar("search/lr", st.opt_w.param_groups[0]["lr"], st.step)
    if st.projector is not None:
        writer.add_scalar("search/lambda", st.projector.last_lam, st.step)


# --- the search ---------------------------------------------------------------------------------------------------


def run_search(cfg: SearchConfig, cost_table: CostTable, *, train_set: Dataset | None = None,
               num_classes: int | None = None, resume: bool = False, stop_after: int | None = None,
               on_epoch: Callable[[dict[str, Any], SuperNet], None] | None = None) -> SearchResult:
    """Run (or continue) a search; everything goes to ``cfg.out``.

    ``cost_table`` is the cost model (a MAC table, or a latency table from cost/lut: any CostTable for the
    space at the deployment size). ``train_set`` replaces the dataset the config names (it must yield
    (image, mask) pairs at the crop size; pass ``num_classes`` with it). ``resume`` continues from
    ``out/checkpoint.pt`` (the config must match, see ``RESUME_FREE``). ``stop_after`` ends this call after
    that many epochs (a later ``resume=True`` call continues exactly). ``on_epoch(row, supernet)`` runs after
    every epoch once its files are written (on every process under torchrun).

    Launched by torchrun, every process calls this with the same arguments: ``cfg.batch_size`` is the global
    batch, the processes share it out (``search.parallel``), rank 0 writes, every rank returns the same result.
    """
    t_call = time.perf_counter()
    info = env_dist_info()
    cfg = dataclasses.replace(cfg, world_size=info.world_size)  # recorded in config.json and the checkpoint
    out = check_output(cfg.out, kind="folder", what="--out")
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a search ({ckpt_path}); pass --resume to continue it or "
                              "choose another --out")
    if resume and not ckpt_path.is_file():
        raise FileNotFoundError(f"nothing to resume in {out}: {ckpt_path} not found")
    check_world(cfg, info)  # everything is checked, on every rank, before the run folder is touched
    macro = get_space(cfg.space)
    size = resolve_size(cfg, cost_table)
    device = resolve_device(cfg.device, info)
    data = build_data(cfg, train_set, num_classes)
    check_cost_table(cfg, cost_table, macro, size, data.num_classes)
    if device.type == "cpu":
        from squeezenas.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()  # keep large activations in the heap between steps (docs/SUPERNET.md)
    owns_group = info.distributed and not torch.distributed.is_initialized()
    init_distributed(device)
    try:
        run = _Run(cfg, cost_table, CostModel.from_table(cost_table, device), macro, size, data,
                   Replicas(info, device, cfg.supernet, cfg.sync_bn))
        return _start(run, resume, stop_after, on_epoch, t_call)
    finally:
        if owns_group:
            cleanup_distributed()


@dataclass
class _Run:
    """What every part of one search call reads."""

    cfg: SearchConfig
    cost_table: CostTable
    cost: CostModel
    macro: MacroArch
    size: tuple[int, int]
    data: SearchData
    rep: Replicas

    @property
    def info(self) -> DistInfo:
        return self.rep.info

    @property
    def total_steps(self) -> int:
        return self.cfg.epochs * self.data.steps_per_epoch

    @property
    def total_theta_steps(self) -> int:
        return (self.cfg.epochs - self.cfg.warmup) * self.data.steps_per_epoch


def _start(run: _Run, resume: bool, stop_after: int | None, on_epoch: Callable[..., None] | None,
           t_call: float) -> SearchResult:
    """This rank's loaders, the supernet (identical on every rank) and its optimisers; then the locked search."""
    cfg, rep, data = run.cfg, run.rep, run.data
    data.loader = rep.shard(data.loader, cfg.batch_size)
    if data.theta_loader is not None:
        data.theta_loader = rep.shard(data.theta_loader, cfg.batch_size)
    torch.manual_seed(cfg.seed)
    net = SuperNet(run.macro, data.num_classes, fused=cfg.fused, split_theta=cfg.theta == "split").to(
        rep.device, memory_format=cfg.memory_format)
    net = rep.prepare(net)
    st = SearchState.start(net, cfg, cfg.loss_alpha(run.cost.e_ref),
                           make_projector(cfg, run.cost, net, run.size, run.total_theta_steps))
    with on_main_process(lambda: RunLock(Path(cfg.out) / LOCK_FILE, "--out"), run.info):
        return _search(run, st, resume, stop_after, on_epoch, t_call)


def _search(run: _Run, st: SearchState, resume: bool, stop_after: int | None,
            on_epoch: Callable[..., None] | None, t_call: float) -> SearchResult:
    """The search in its locked run folder: restore or start, then the epochs (rank 0 writes)."""
    cfg, cost, cost_table, macro, rep = run.cfg, run.cost, run.cost_table, run.macro, run.rep
    main = run.info.is_main
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    net = st.net
    log = RunLog(out / "search.log", cfg.progress) if main else silent
    if resume:
        ckpt = load_search_checkpoint(ckpt_path)
        check_resume_config(ckpt["config"], cfg, str(ckpt_path))
        st.restore(ckpt, cfg)
        log(f"resumed {out} after epoch {st.epoch} (step {st.step}) on {cfg.world_size} process(es)")
    else:
        if main:
            atomic_write_json(out / "config.json", to_dict(cfg))
            cost_table.save(out / "cost_table.json")
        st.theta_history.append(theta_entry(net, 0, 0, cfg.temperature_start))
        log(f"search {macro.name} on {cfg.dataset}: {cfg.epochs} epochs × {run.data.steps_per_epoch} steps, batch "
            f"{cfg.batch_size}, crop {cfg.crop[0]}×{cfg.crop[1]}, cost {cost_table.kind} ({cost.unit} at "
            f"{run.size[0]}×{run.size[1]}), α {st.alpha:g} per mean network (E_ref "
            f"{cost_table.calibrate(cost.e_ref):.4g} {cost.unit}; α_raw {st.alpha / cost.e_ref:.4g} per "
            f"{PER_UNIT.get(cost.unit, cost.unit)})"
            + (f", target {cfg.target:g} {cost.unit} ({cfg.target_mode})" if cfg.target is not None else "")
            + f", device {rep.device}" + (f" × {cfg.world_size} processes" if rep.distributed else ""))
    rep.wrap(net)

    writer = open_tensorboard(out / "tb", st.step) if cfg.tensorboard and main else None
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, st.epoch + stop_after)
    while st.epoch < end_epoch:
        unreachable = st.projector is not None and st.projector.unreachable
        row = _run_epoch(st, cfg, run.data, cost, rep, run.total_steps, run.total_theta_steps, writer)
        pruned = row.pop("_pruned")
        if (row["phase"] == "search" and cfg.prune_threshold > 0 and not cfg.prune_every
                and st.theta_step >= ramp_steps(cfg, run.total_theta_steps)):
            pruned += _prune(st, rep, cost, cfg.prune_threshold)
        row.update(rep.end_epoch(net, {k: row[k] for k in ("loss", "ce", "cost_term")}))  # means over the ranks
        st.epoch += 1
        st.pruned += [(st.epoch, i, c) for i, c in pruned]
        if pruned:
            log(f"epoch {st.epoch}: pruned {len(pruned)} candidate(s) below p={cfg.prune_threshold:g}: "
                + ", ".join(f"{i}:{c}" for i, c in pruned))
        if st.projector is not None and st.projector.unreachable and not unreachable:
            log(f"epoch {st.epoch}: warning: the target {cfg.target:g} {cost.unit} lies outside what the alive "
                "candidates can reach (after pruning); the distribution was pushed to the nearest end")
        p = net.probabilities().detach()
        alive = int(net.alive.sum())
        row.update({
            "expected_cost": cost_table.calibrate(cost.expected(p)),
            "derived_cost": cost_table.calibrate(cost_table.predict(net.derive())),
            "target": cfg.target if cfg.target is not None else "", "alpha": st.alpha,
            "lam": st.projector.lam_total if st.projector is not None else "",
            "lr": st.opt_w.param_groups[0]["lr"], "entropy": entropy(p), "alive": alive,
            "alive_fraction": alive / net.alive.numel(), "pruned": len(pruned),
            "peak_memory_gib": peak_memory_gib(rep.device)})
        st.history.append(row)
        st.theta_history.append(theta_entry(net, st.epoch, st.theta_step, row["temperature"]))
        log(f"epoch {st.epoch}/{cfg.epochs}: {row['steps']} steps in {row['seconds']:.1f} s "
            f"({row['seconds_per_step']:.3f} s/step), ce {row['ce']:.4f}, E[cost] {row['expected_cost']:.4g} "
            f"{cost.unit}, argmax {row['derived_cost']:.4g} {cost.unit}, entropy {row['entropy']:.3f}, "
            f"alive {alive}/{net.alive.numel()}, peak memory {row['peak_memory_gib']:.2f} GiB")
        if main:
            write_epoch(st, cfg, macro, run.data.num_classes, cost, run.size, writer, row)
        barrier()  # the epoch is on disk before any rank goes on (or is stopped)
        if on_epoch is not None:
            on_epoch(row, net)
    if writer is not None:
        writer.close()
    return finish(st, cfg, cost, out, log, time.perf_counter() - t_call, main)
