"""The proxyless search loop: weights and θ of the supernet trained together on the target task, with the
resource loss α · Σ p·C from a cost table (MACs or measured latency), temperature annealing, early pruning of
improbable candidates, an optional cost target, and exact resumption.

``run_search(cfg, cost_table)`` is the library entry point; ``squeezenas search`` is a thin layer over it. It
draws nothing: ``theta.json`` holds the distribution over the epochs (``viz.search_plots`` draws it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from squeezenas.cost.tables import CostTable
from squeezenas.engine.distributed import resolve_device
from squeezenas.engine.loaders import batches, build_shuffled_loader, epoch_seed, set_epoch
from squeezenas.engine.runlog import RunLog, open_tensorboard, write_csv
from squeezenas.search.checkpoint import (
    CHECKPOINT, SearchState, check_resume_config, load_search_checkpoint, save_checkpoint,
)
from squeezenas.search.config import SearchConfig
from squeezenas.search.objective import (
    CostModel, check_cost_table, cost_weight, entropy, loss_terms, lr_at, make_projector, ramp_steps, resolve_size,
    temperature_at,
)
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import get_space
from squeezenas.supernet import SuperNet
from squeezenas.utils.config import to_dict
from squeezenas.utils.io import LOCK_FILE, RunLock, atomic_write_json, check_output

CSV_FIELDS = ("epoch", "phase", "steps", "seconds", "seconds_per_step", "loss", "ce", "cost_term", "expected_cost",
              "derived_cost", "target", "alpha", "lam", "temperature", "lr", "entropy", "alive", "alive_fraction",
              "pruned")
UNIT_KEYS = {"gmacs": "gmacs", "ms": "latency_ms"}  # a table's unit → the key of its costs in genotype meta
PER_UNIT = {"gmacs": "GMAC", "ms": "ms"}


@dataclass
class SearchResult:
    """What a search produced (also written to ``out``: genotype.json, theta.json, log.csv, result.json)."""

    genotype: Genotype  # the most probable architecture (argmax of θ over alive candidates)
    probabilities: list[list[float]]  # the final distribution (P × C, 0 for pruned candidates)
    expected_cost: float  # of the final distribution, in ``unit`` (calibrated for latency tables)
    predicted_cost: float  # of ``genotype``, in ``unit``
    unit: str
    alpha: float  # the loss's normalised α (0 with a target unless given)
    epochs: int  # epochs completed so far
    finished: bool  # all configured epochs done
    history: list[dict[str, Any]]  # one row per epoch (log.csv)
    pruned: list[tuple[int, int, str]]  # (epoch, position, code) of every removed candidate
    out: Path
    seconds: float  # wall time of this call
    target: float | None = None  # in ``unit``
    lam_total: float | None = None  # the target projection's accumulated price (nats per mean-network cost)

    def to_dict(self) -> dict[str, Any]:
        return {"genotype": self.genotype.to_dict(), "expected_cost": self.expected_cost,
                "predicted_cost": self.predicted_cost, "unit": self.unit, "alpha": self.alpha, "target": self.target,
                "lam_total": self.lam_total, "epochs": self.epochs, "finished": self.finished,
                "pruned": [list(p) for p in self.pruned], "probabilities": self.probabilities}


# --- data ---------------------------------------------------------------------------------------------------------


@dataclass
class _Data:
    """The search's batches: the weights' loader and, with ``alternate``, the held-out loader for θ."""

    loader: DataLoader
    theta_loader: DataLoader | None
    num_classes: int
    steps_per_epoch: int


def _build_data(cfg: SearchConfig, train_set: Dataset | None, num_classes: int | None) -> _Data:
    if train_set is None:
        from squeezenas.data import dataset_info
        from squeezenas.engine.loaders import build_train_dataset

        train_set = build_train_dataset(cfg.dataset, cfg.data_root, cfg.train_split, tuple(cfg.crop),
                                        tuple(cfg.scale), **cfg.data_options)
        num_classes = num_classes or dataset_info(cfg.dataset, cfg.data_root).num_classes
    num_classes = num_classes or getattr(train_set, "num_classes", None)
    if num_classes is None:
        raise ValueError("pass num_classes with a custom train_set")
    if cfg.limit_train is not None:
        train_set = Subset(train_set, range(min(cfg.limit_train, len(train_set))))
    pin = torch.cuda.is_available()
    theta_loader = None
    if cfg.alternate:  # a fixed random split: θ never sees the images the weights are trained on
        perm = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_hold = max(cfg.batch_size, int(round(cfg.holdout * len(train_set))))
        theta_loader = build_shuffled_loader(Subset(train_set, perm[:n_hold]), cfg.batch_size, cfg.workers, pin)
        train_set = Subset(train_set, perm[n_hold:])
    loader = build_shuffled_loader(train_set, cfg.batch_size, cfg.workers, pin)
    return _Data(loader, theta_loader, int(num_classes), min(len(loader), cfg.steps_per_epoch or len(loader)))


def _cycle(loader: DataLoader, seed: int) -> Iterator[Any]:
    """Endless batches from ``loader``, reseeded deterministically at every pass."""
    k = 0
    while True:
        loader.generator.manual_seed(seed + k)
        yield from batches(loader)
        k += 1


# --- one step, one epoch --------------------------------------------------------------------------------------


def _joint_step(st: SearchState, cfg: SearchConfig, cost: CostModel, batch: tuple[torch.Tensor, torch.Tensor],
                temperature: float, warm: bool, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's update: one batch, one loss, the weights (SGD) and θ (Adam) stepped together."""
    ce, cost_term = loss_terms(st.net, cost, alpha, *batch, temperature, with_cost=not warm,
                               supernet=cfg.supernet, through=cfg.cost_through)
    loss = ce + cost_term
    st.opt_w.zero_grad(set_to_none=True)
    st.opt_t.zero_grad(set_to_none=True)
    loss.backward()
    st.opt_w.step()
    if not warm:
        st.opt_t.step()
    return loss, ce, cost_term


def _alternate_step(st: SearchState, cfg: SearchConfig, cost: CostModel, batch: tuple[torch.Tensor, torch.Tensor],
                    held_out: Iterator[Any], temperature: float, warm: bool, alpha: float,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FBNet's update: the weights on a training batch (θ fixed), then θ on a held-out batch (weights fixed)."""
    ce, _ = loss_terms(st.net, cost, alpha, *batch, temperature, with_cost=False, supernet=cfg.supernet)
    st.opt_w.zero_grad(set_to_none=True)
    ce.backward()
    for p in st.net.arch_parameters():
        p.grad = None
    st.opt_w.step()
    cost_term = torch.zeros((), device=device)
    if not warm:
        image, mask = next(held_out)
        image, mask = image.to(device, non_blocking=True, memory_format=st.memory_format), mask.to(device)
        weights = st.net.weight_parameters()
        for p in weights:  # no weight gradients: cheaper, and the weights must not move
            p.requires_grad_(False)
        try:
            h_ce, cost_term = loss_terms(st.net, cost, alpha, image, mask, temperature, with_cost=True,
                                         supernet=cfg.supernet, through=cfg.cost_through)
            st.opt_t.zero_grad(set_to_none=True)
            (h_ce + cost_term).backward()
            st.opt_t.step()
        finally:
            for p in weights:
                p.requires_grad_(True)
    return ce + cost_term, ce, cost_term


def _run_epoch(st: SearchState, cfg: SearchConfig, data: _Data, cost: CostModel, device: torch.device,
               total_steps: int, total_theta_steps: int, writer: Any) -> dict[str, Any]:
    """One epoch of the search; returns its log row (without the end-of-epoch pruning)."""
    epoch = st.epoch
    warm = epoch < cfg.warmup
    ramp = ramp_steps(cfg, total_theta_steps)
    set_epoch(data.loader, epoch, cfg.seed)  # batches, augmentation (workers=0) and the Gumbel noise
    held_out = (_cycle(data.theta_loader, epoch_seed(cfg.seed, epoch, 1))  # stream 1: the θ batches
                if data.theta_loader is not None else None)
    st.net.train()
    sums = {"loss": 0.0, "ce": 0.0, "cost_term": 0.0}
    pruned: list[tuple[int, str]] = []
    n = 0
    temp = cfg.temperature_start
    bar = tqdm(total=data.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}" + (" (warm-up)" if warm else ""),
               unit="step", leave=False, dynamic_ncols=True, disable=not cfg.progress)
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
            loss, ce, cost_term = _joint_step(st, cfg, cost, batch, temp, warm, alpha)
        else:
            loss, ce, cost_term = _alternate_step(st, cfg, cost, batch, held_out, temp, warm, alpha, device)
        if not warm:
            if st.projector is not None:
                st.project(cost)
            st.theta_step += 1
            if (cfg.prune_every and cfg.prune_threshold > 0 and st.theta_step % cfg.prune_every == 0
                    and st.theta_step >= ramp):
                pruned += st.prune(cfg.prune_threshold)
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
               on_epoch: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
    """Run (or continue) a search; everything goes to ``cfg.out``.

    ``cost_table`` is the cost model (a MAC table, or a latency table from cost/lut: any CostTable for the
    space at the deployment size). ``train_set`` replaces the dataset the config names (it must yield
    (image, mask) pairs at the crop size; pass ``num_classes`` with it). ``resume`` continues from
    ``out/checkpoint.pt`` (the config must match, see ``RESUME_FREE``). ``stop_after`` ends this call after
    that many epochs (a later ``resume=True`` call continues exactly). ``on_epoch`` receives every epoch's row.
    """
    t_call = time.perf_counter()
    out = check_output(cfg.out, kind="folder", what="--out")
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a search ({ckpt_path}); pass --resume to continue it or "
                              "choose another --out")
    if resume and not ckpt_path.is_file():
        raise FileNotFoundError(f"nothing to resume in {out}: {ckpt_path} not found")
    macro = get_space(cfg.space)  # everything is checked before the run folder is touched
    size = resolve_size(cfg, cost_table)
    device = resolve_device(cfg.device)
    data = _build_data(cfg, train_set, num_classes)
    check_cost_table(cfg, cost_table, macro, size, data.num_classes)
    if device.type == "cpu":
        from squeezenas.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()  # keep large activations in the heap between steps (docs/SUPERNET.md)
    total_steps = cfg.epochs * data.steps_per_epoch
    total_theta_steps = (cfg.epochs - cfg.warmup) * data.steps_per_epoch

    torch.manual_seed(cfg.seed)
    net = SuperNet(macro, data.num_classes, fused=cfg.fused, split_theta=cfg.theta == "split").to(
        device, memory_format=cfg.memory_format)
    cost = CostModel.from_table(cost_table, device)
    st = SearchState.start(net, cfg, cfg.loss_alpha(cost.e_ref),
                           make_projector(cfg, cost, net, size, total_theta_steps))
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out / LOCK_FILE, "--out"):
        return _search(st, cfg, cost, cost_table, macro, size, data, device, resume, stop_after, on_epoch,
                       total_steps, total_theta_steps, t_call)


def _search(st: SearchState, cfg: SearchConfig, cost: CostModel, cost_table: CostTable, macro: Any,
            size: tuple[int, int], data: Any, device: torch.device, resume: bool, stop_after: int | None,
            on_epoch: Callable[[dict[str, Any]], None] | None, total_steps: int, total_theta_steps: int,
            t_call: float) -> SearchResult:
    """The search in its locked run folder: restore or start, then the epochs."""
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    net = st.net
    log = RunLog(out / "search.log", cfg.progress)
    if resume:
        ckpt = load_search_checkpoint(ckpt_path)
        check_resume_config(ckpt["config"], cfg, str(ckpt_path))
        st.restore(ckpt, cfg)
        log(f"resumed {out} after epoch {st.epoch} (step {st.step})")
    else:
        atomic_write_json(out / "config.json", to_dict(cfg))
        cost_table.save(out / "cost_table.json")
        st.theta_history.append(_theta_entry(net, 0, 0, cfg.temperature_start))
        log(f"search {macro.name} on {cfg.dataset}: {cfg.epochs} epochs × {data.steps_per_epoch} steps, batch "
            f"{cfg.batch_size}, crop {cfg.crop[0]}×{cfg.crop[1]}, cost {cost_table.kind} ({cost.unit} at "
            f"{size[0]}×{size[1]}), α {st.alpha:g} per mean network (E_ref {cost_table.calibrate(cost.e_ref):.4g} "
            f"{cost.unit}; α_raw {st.alpha / cost.e_ref:.4g} per {PER_UNIT.get(cost.unit, cost.unit)})"
            + (f", target {cfg.target:g} {cost.unit} ({cfg.target_mode})" if cfg.target is not None else "")
            + f", device {device}")

    writer = open_tensorboard(out / "tb", st.step) if cfg.tensorboard else None
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, st.epoch + stop_after)
    while st.epoch < end_epoch:
        row = _run_epoch(st, cfg, data, cost, device, total_steps, total_theta_steps, writer)
        pruned = row.pop("_pruned")
        if (row["phase"] == "search" and cfg.prune_threshold > 0 and not cfg.prune_every
                and st.theta_step >= ramp_steps(cfg, total_theta_steps)):
            pruned += st.prune(cfg.prune_threshold)
        st.epoch += 1
        st.pruned += [(st.epoch, i, c) for i, c in pruned]
        if pruned:
            log(f"epoch {st.epoch}: pruned {len(pruned)} candidate(s) below p={cfg.prune_threshold:g}: "
                + ", ".join(f"{i}:{c}" for i, c in pruned))
        p = net.probabilities().detach()
        alive = int(net.alive.sum())
        row.update({
            "expected_cost": cost_table.calibrate(cost.expected(p)),
            "derived_cost": cost_table.calibrate(cost_table.predict(net.derive())),
            "target": cfg.target if cfg.target is not None else "", "alpha": st.alpha,
            "lam": st.projector.lam_total if st.projector is not None else "",
            "lr": st.opt_w.param_groups[0]["lr"], "entropy": entropy(p), "alive": alive,
            "alive_fraction": alive / net.alive.numel(), "pruned": len(pruned)})
        st.history.append(row)
        st.theta_history.append(_theta_entry(net, st.epoch, st.theta_step, row["temperature"]))
        log(f"epoch {st.epoch}/{cfg.epochs}: {row['steps']} steps in {row['seconds']:.1f} s "
            f"({row['seconds_per_step']:.3f} s/step), ce {row['ce']:.4f}, E[cost] {row['expected_cost']:.4g} "
            f"{cost.unit}, argmax {row['derived_cost']:.4g} {cost.unit}, entropy {row['entropy']:.3f}, "
            f"alive {alive}/{net.alive.numel()}")
        if writer is not None:
            for k in ("seconds", "alive", "expected_cost", "derived_cost", "entropy"):
                writer.add_scalar(f"epoch/{k}", row[k], st.epoch)
            writer.flush()
        save_checkpoint(ckpt_path, st, cfg, macro, data.num_classes, cost, size)
        write_csv(out / "log.csv", st.history, columns=CSV_FIELDS, float_format=".6g")
        atomic_write_json(out / "theta.json", {"space": macro.name, "candidates": list(macro.candidates),
                                               "epochs": st.theta_history})
        if on_epoch is not None:
            on_epoch(row)
    if writer is not None:
        writer.close()
    return _finish(st, cfg, cost, out, log, time.perf_counter() - t_call)


def _finish(st: SearchState, cfg: SearchConfig, cost: CostModel, out: Path, log: RunLog,
            seconds: float) -> SearchResult:
    """The result; when every epoch is done also genotype.json and result.json."""
    table = cost.table
    genotype = st.net.derive()
    p = st.net.probabilities().detach()
    result = SearchResult(
        genotype=genotype, probabilities=p.cpu().tolist(), expected_cost=table.calibrate(cost.expected(p)),
        predicted_cost=table.calibrate(table.predict(genotype)), unit=cost.unit, alpha=st.alpha,
        epochs=st.epoch, finished=st.epoch >= cfg.epochs, history=st.history, pruned=st.pruned, out=out,
        seconds=seconds, target=cfg.target, lam_total=st.projector.lam_total if st.projector is not None else None)
    if not result.finished:
        return result
    key = UNIT_KEYS.get(cost.unit, cost.unit)
    genotype.save(out / "genotype.json", meta={
        "source": "search (most probable architecture)", "search": str(out),
        f"predicted_{key}": result.predicted_cost, f"expected_{key}": result.expected_cost})
    atomic_write_json(out / "result.json", result.to_dict())
    log(f"done: {' '.join(genotype.ops)} — predicted {result.predicted_cost:.4g} {cost.unit}, "
        f"E[cost] {result.expected_cost:.4g} {cost.unit}; wrote {out / 'genotype.json'}")
    return result


def _theta_entry(net: nn.Module, epoch: int, theta_step: int, temperature: float) -> dict[str, Any]:
    return {"epoch": epoch, "theta_step": theta_step, "temperature": temperature,
            "probabilities": [[round(v, 6) for v in row] for row in net.probabilities().detach().cpu().tolist()],
            "alive": net.alive.cpu().tolist()}
