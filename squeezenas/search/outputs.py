"""What a search leaves behind: its result, the files written after every epoch (checkpoint, log.csv,
theta.json, TensorBoard) and at the end (genotype.json, result.json). Under torchrun only rank 0 writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from squeezenas.engine.runlog import write_csv
from squeezenas.search.checkpoint import CHECKPOINT, SearchState, save_checkpoint
from squeezenas.search.config import SearchConfig
from squeezenas.search.objective import CostModel
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch
from squeezenas.utils.io import atomic_write_json

CSV_FIELDS = ("epoch", "phase", "steps", "seconds", "seconds_per_step", "loss", "ce", "cost_term", "expected_cost",
              "derived_cost", "target", "alpha", "lam", "temperature", "lr", "entropy", "alive", "alive_fraction",
              "pruned", "peak_memory_gib")
UNIT_KEYS = {"gmacs": "gmacs", "ms": "latency_ms"}  # a table's unit → the key of its costs in genotype meta


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
    target_unreachable: bool | None = None  # the alive candidates could not reach the target at some step
    world_size: int = 1  # processes of this call (torchrun)

    def to_dict(self) -> dict[str, Any]:
        return {"genotype": self.genotype.to_dict(), "expected_cost": self.expected_cost,
                "predicted_cost": self.predicted_cost, "unit": self.unit, "alpha": self.alpha, "target": self.target,
                "lam_total": self.lam_total, "target_unreachable": self.target_unreachable, "epochs": self.epochs,
                "finished": self.finished,
                "pruned": [list(p) for p in self.pruned], "probabilities": self.probabilities,
                "world_size": self.world_size}


def write_epoch(st: SearchState, cfg: SearchConfig, macro: MacroArch, num_classes: int, cost: CostModel,
                size: tuple[int, int], writer: Any, row: dict[str, Any]) -> None:
    """Rank 0's files after an epoch: TensorBoard, the checkpoint, log.csv and theta.json."""
    out = Path(cfg.out)
    if writer is not None:
        for k in ("seconds", "alive", "expected_cost", "derived_cost", "entropy", "peak_memory_gib"):
            writer.add_scalar(f"epoch/{k}", row[k], st.epoch)
        writer.flush()
    save_checkpoint(out / CHECKPOINT, st, cfg, macro, num_classes, cost, size)
    write_csv(out / "log.csv", st.history, columns=CSV_FIELDS, float_format=".6g")
    atomic_write_json(out / "theta.json", {"space": macro.name, "candidates": list(macro.candidates),
                                           "epochs": st.theta_history})


def finish(st: SearchState, cfg: SearchConfig, cost: CostModel, out: Path, log: Callable[[str], None],
            seconds: float, main: bool = True) -> SearchResult:
    """The result; when every epoch is done also genotype.json and result.json (rank 0)."""
    table = cost.table
    genotype = st.net.derive()
    p = st.net.probabilities().detach()
    result = SearchResult(
        genotype=genotype, probabilities=p.cpu().tolist(), expected_cost=table.calibrate(cost.expected(p)),
        predicted_cost=table.calibrate(table.predict(genotype)), unit=cost.unit, alpha=st.alpha,
        epochs=st.epoch, finished=st.epoch >= cfg.epochs, history=st.history, pruned=st.pruned, out=out,
        seconds=seconds, target=cfg.target, lam_total=st.projector.lam_total if st.projector is not None else None,
        target_unreachable=st.projector.unreachable if st.projector is not None else None,
        world_size=cfg.world_size)
    if not result.finished or not main:
        return result
    key = UNIT_KEYS.get(cost.unit, cost.unit)
    genotype.save(out / "genotype.json", meta={
        "source": "search (most probable architecture)", "search": str(out),
        f"predicted_{key}": result.predicted_cost, f"expected_{key}": result.expected_cost})
    atomic_write_json(out / "result.json", result.to_dict())
    log(f"done: {' '.join(genotype.ops)} — predicted {result.predicted_cost:.4g} {cost.unit}, "
        f"E[cost] {result.expected_cost:.4g} {cost.unit}; wrote {out / 'genotype.json'}")
    return result


def theta_entry(net: nn.Module, epoch: int, theta_step: int, temperature: float) -> dict[str, Any]:
    return {"epoch": epoch, "theta_step": theta_step, "temperature": temperature,
            "probabilities": [[round(v, 6) for v in row] for row in net.probabilities().detach().cpu().tolist()],
            "alive": net.alive.cpu().tolist()}
