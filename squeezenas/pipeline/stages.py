"""The whole pipeline in one call: latency table on this device → latency-aware search → sample and select →
retrain from scratch → evaluate → measure → a report with the plots. Behind ``squeezenas demo``.

Every stage leaves its result in ``cfg.out`` and is skipped (or resumed) when that result is already there, so an
interrupted demo continues where it stopped; only the evaluation, the latency measurement and the report run
again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from squeezenas.cost.benchmark import benchmark_fresh
from squeezenas.cost.lut import build_lut, check_lut
from squeezenas.cost.tables import CostTable
from squeezenas.cost.timing import TimingConfig, stat_key
from squeezenas.data import dataset_info
from squeezenas.engine.config import EvalConfig, TrainConfig
from squeezenas.engine.evaluate import evaluate_checkpoint
from squeezenas.engine.train import train
from squeezenas.pipeline.config import DemoConfig
from squeezenas.pipeline.report import pictures, render_report
from squeezenas.search import SampleConfig, SearchConfig, run_search, sample_and_select
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import get_space
from squeezenas.utils.config import to_dict
from squeezenas.utils.io import LOCK_FILE, RunLock, atomic_write_json, atomic_write_text, check_output
from squeezenas.viz.search_plots import draw_search, draw_selection


def _log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timing_config(cfg: DemoConfig) -> TimingConfig:
    """How the demo times parts and networks (the table records it)."""
    return TimingConfig(device=cfg.device, threads=cfg.threads, min_run_time=cfg.lut_min_run_time, warmup=3,
                        min_repeats=5, statistic=cfg.lut_statistic)


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run every stage (each resumes or is skipped when its result is already in ``cfg.out``)."""
    get_space(cfg.space)  # every input is checked before anything is measured or written
    dataset_info(cfg.dataset, cfg.data_root)
    timing = timing_config(cfg)
    out = check_output(cfg.out, kind="folder", what="--out")
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out / LOCK_FILE, "--out"):
        return _run_stages(cfg, timing, out)


def _run_stages(cfg: DemoConfig, timing: TimingConfig, out: Path) -> dict[str, Any]:
    atomic_write_json(out / "demo_config.json", to_dict(cfg))
    t0, stages = time.perf_counter(), {}

    t = time.perf_counter()
    table = latency_table(cfg, timing, out)
    stages["lut_s"] = time.perf_counter() - t

    t = time.perf_counter()
    cheapest, uniform = table.calibrate(table.bounds()[0]), table.calibrate(table.e_ref)
    target = cheapest + cfg.target_fraction * (uniform - cheapest)
    sres = search(cfg, table, target, uniform, out / "search")
    stages["search_s"] = time.perf_counter() - t

    t = time.perf_counter()
    genotype, chosen = select(cfg, table, target, out)
    stages["sample_s"] = time.perf_counter() - t

    t = time.perf_counter()
    _log(f"4/6 retrain the chosen network from scratch ({cfg.train_epochs} epochs)")
    tres = train(retrain_config(cfg, out))
    stages["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    _log("5/6 evaluate on test and measure batch-1 latency")
    report = evaluate_checkpoint(EvalConfig(checkpoint=str(out / "train" / "best.pt"), split="test",
                                            device=cfg.device, workers=cfg.workers, report=str(out / "test.json"),
                                            progress=cfg.progress))
    latency = measure_latency(genotype, table, cfg, timing)
    stages["eval_s"] = time.perf_counter() - t

    _log("6/6 report")
    pics = pictures(out, genotype, out / "train" / "best.pt", cfg)
    summary = {
        "genotype": genotype.to_dict(), "target_ms": target, "uniform_expected_ms": uniform,
        "search": {"expected_ms": sres.expected_cost, "argmax_predicted_ms": sres.predicted_cost,
                   "pruned": len(sres.pruned), "epochs": sres.epochs},
        "chosen": chosen, "test_miou": report["miou"], "test_pixel_accuracy": report["pixel_accuracy"],
        "per_class_iou": report.get("per_class_iou"), "latency": latency,
        "lut_check": json.loads((out / "lut_check.json").read_text()) if (out / "lut_check.json").is_file() else None,
        "train": {k: tres[k] for k in ("best_miou", "best_epoch", "epochs") if k in tres},
        "stages_s": {k: round(v, 1) for k, v in stages.items()}, "total_s": round(time.perf_counter() - t0, 1),
        "pictures": {k: str(Path(v).relative_to(out)) for k, v in pics.items()},
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render_report(summary, cfg))
    _log(f"done in {summary['total_s']:.0f} s: test mIoU {100 * report['miou']:.1f}%, latency measured "
         f"{latency['measured_ms']:.2f} ms vs predicted {latency['predicted_ms']:.2f} ms → {out / 'report.md'}")
    return summary


def latency_table(cfg: DemoConfig, timing: TimingConfig, out: Path) -> CostTable:
    """1. The latency table measured here, checked end to end and calibrated: ``lut.json`` is written only
    once it holds its calibration (``lut_measured.json`` keeps the measurements while the check runs, so an
    interrupted check is redone, never skipped)."""
    final, measured = out / "lut.json", out / "lut_measured.json"
    if final.is_file():
        return CostTable.load(final)
    # a busy laptop slows the demo instead of stalling it (no waiting for quiet moments or normal speed)
    guard = {"max_other_cpu": 0.25, "retries": cfg.lut_retries, "canary": False}
    if measured.is_file():
        table = CostTable.load(measured)
    else:
        _log(f"1/6 latency table: space {cfg.space} at {cfg.size[0]}×{cfg.size[1]} on {cfg.device}")
        table = build_lut(cfg.space, cfg.size, timing, num_classes=dataset_info(cfg.dataset, cfg.data_root).num_classes,
                          out=measured, progress=cfg.progress, rounds=cfg.lut_rounds, **guard)
    check = check_lut(table, samples=cfg.check_samples, seed=cfg.seed, calibrate=True, progress=cfg.progress,
                      rounds=cfg.lut_rounds, **guard)
    if table.calibrate(table.bounds()[0]) <= 0:  # a fit spoilt by a busy machine: the raw sums are safer
        _log(f"the calibration predicts {table.calibrate(table.bounds()[0]):.2f} ms for the cheapest network; "
             "not kept (the table's raw sums are used)")
        table.meta.pop("calibration")
        check["calibration_dropped"] = True
    atomic_write_json(out / "lut_check.json", check)
    table.save(final)
    measured.unlink()
    return table


def search(cfg: DemoConfig, table: CostTable, target: float, uniform: float, folder: Path) -> Any:
    """2. The latency-aware search to ``target`` ms (resumed when interrupted), and its θ heat-map."""
    scfg = SearchConfig(space=cfg.space, dataset=cfg.dataset, data_root=cfg.data_root,
                        data_options=dict(cfg.data_options), out=str(folder), cost="latency",
                        lut=str(Path(cfg.out) / "lut.json"), target=target, epochs=cfg.search_epochs,
                        warmup_epochs=cfg.warmup_epochs, steps_per_epoch=cfg.search_steps,
                        batch_size=cfg.batch_size, crop=cfg.crop, workers=cfg.workers, device=cfg.device,
                        seed=cfg.seed, progress=cfg.progress)
    _log(f"2/6 search: target {target:.2f} ms (uniform distribution: {uniform:.2f} ms)")
    result = run_search(scfg, table, resume=(folder / "checkpoint.pt").is_file())
    draw_search(folder)
    return result


def select(cfg: DemoConfig, table: CostTable, target: float, out: Path) -> tuple[Genotype, dict[str, Any]]:
    """3. Sample, score through the supernet, Pareto front, pick at the budget (skipped once chosen)."""
    path = out / "genotype.json"
    report = out / "search" / "pareto.json"
    if path.is_file() and report.is_file():
        from squeezenas.space.genotype import load_genotype

        return load_genotype(path), json.loads(report.read_text())["chosen"]
    _log(f"3/6 sample {cfg.samples} architectures and select at ≤ {target:.2f} ms")
    result = sample_and_select(SampleConfig(search=str(out / "search"), n=cfg.samples, budget=target,
                                            budget_kind="ms", bn_batches=4, val_limit=cfg.val_limit,
                                            finalists=cfg.finalists,
                                            device=cfg.device, workers=cfg.workers, seed=cfg.seed,
                                            progress=cfg.progress), lut=table)
    draw_selection(out / "search")
    result.chosen_genotype.save(path)
    return result.chosen_genotype, result.chosen


def retrain_config(cfg: DemoConfig, out: Path) -> TrainConfig:
    """4. The chosen network trained from scratch (resumed when interrupted)."""
    folder = out / "train"
    return TrainConfig(model=str(out / "genotype.json"), dataset=cfg.dataset, data_root=cfg.data_root,
                       data_options=dict(cfg.data_options), out=str(folder), epochs=cfg.train_epochs,
                       batch_size=cfg.batch_size, crop=cfg.crop, schedule="poly", workers=cfg.workers,
                       max_steps_per_epoch=cfg.train_steps, val_every=max(1, cfg.train_epochs // 3),
                       device=cfg.device, seed=cfg.seed, progress=cfg.progress,
                       resume=(folder / "last.pt").is_file())


def measure_latency(genotype: Genotype, table: CostTable, cfg: DemoConfig, timing: TimingConfig) -> dict[str, float]:
    """5. The chosen network timed end to end as the table's check timed its networks (its settings, rounds and
    their speed-normalised median: the calibrated prediction is in those terms), next to the table's prediction,
    in a new process (``benchmark_fresh``: not in the one that searched and trained)."""
    t, = benchmark_fresh([genotype], tuple(cfg.size), timing.resolved(),  # resolved: this process's threads
                         num_classes=table.meta.get("num_classes", 19), canary=False, memory=False,
                         rounds=cfg.lut_rounds, max_other_cpu=None)
    return {"measured_ms": t[stat_key(timing.statistic)], "statistic": timing.statistic, "process": "fresh",
            "median_ms": t["median_ms"], "iqr_ms": t["iqr_ms"],
            "predicted_ms": table.predict(genotype, calibrated=True), "predicted_raw_ms": table.predict(genotype)}
