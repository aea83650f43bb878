"""The whole pipeline in one call: latency table on this device → latency-aware search → sample and select →
retrain from scratch → evaluate → measure → a report with the plots. Behind ``squeezenas demo``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from squeezenas.utils.config import to_dict
from squeezenas.utils.io import atomic_write_json, atomic_write_text


@dataclass(frozen=True)
class DemoConfig:
    """One end-to-end run; the defaults fit a 2-core laptop CPU in about ten minutes on the synthetic data."""

    out: str = "runs/demo"  # everything goes here: lut.json, search/, train/, report.md, pictures
    device: str = "cpu"  # "cpu" or "cuda": the device searched for AND measured on
    dataset: str = "synthetic"  # camvid, cityscapes, folder or synthetic (built in, no files needed)
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # e.g. synthetic num_samples / size
    space: str = "small"  # macro-architecture searched
    size: tuple[int, int] = (128, 256)  # deployment resolution: the latency table and the final benchmark
    crop: tuple[int, int] = (64, 128)  # training crop for the search and the retraining
    batch_size: int = 8
    threads: int | None = 1  # CPU threads for measuring latency: one gives the steadiest figures on a shared or
    #                          virtual machine (docs/LATENCY.md); None: all of torch's
    lut_min_run_time: float = 0.05  # seconds of timing per lookup-table entry
    lut_retries: int = 1  # re-measure a part once if other processes took > 25% of the CPUs meanwhile
    lut_rounds: int = 3  # every part and check network timed in 3 round-robin rounds (the fastest kept, for min)
    lut_statistic: str = "min"  # per-call figure of the table and the check: min is the steadiest on a busy laptop
    check_samples: int = 12  # networks measured end to end to check (and calibrate) the table
    target_fraction: float = 0.5  # latency target: this far from the cheapest network (0) to the mean one (1)
    search_epochs: int = 6
    search_steps: int = 20  # steps per search epoch
    warmup_epochs: int = 1  # search epochs training weights only (θ frozen)
    samples: int = 40  # architectures drawn from the learned distribution and scored
    val_limit: int | None = 24  # validation images used to score each sampled path
    train_epochs: int = 10
    train_steps: int | None = 25  # steps per retraining epoch (None: the whole split)
    workers: int = 0  # DataLoader workers (0 keeps a tiny run cheap)
    seed: int = 0
    progress: bool = True


# Larger settings for real data; picked with ``--dataset`` unless overridden.
PRESETS: dict[str, dict[str, Any]] = {
    "synthetic": {},
    "camvid": {"size": (360, 480), "crop": (176, 240), "search_epochs": 10, "search_steps": 45, "samples": 60,
               "val_limit": 50, "train_epochs": 30, "train_steps": None, "workers": 1, "check_samples": 10},
    "cityscapes": {"size": (512, 1024), "crop": (384, 768), "search_epochs": 10, "search_steps": None,
                   "samples": 100, "val_limit": 100, "train_epochs": 50, "train_steps": None, "workers": 4},
    "folder": {"size": (256, 512), "crop": (128, 256), "search_epochs": 10, "search_steps": None,
               "train_epochs": 30, "train_steps": None, "workers": 2},
}


def demo_config(**overrides: Any) -> DemoConfig:
    """Defaults, then the dataset's preset, then explicit overrides (None values are ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    preset = PRESETS.get(overrides.get("dataset", "synthetic"), {})
    return DemoConfig(**{**preset, **overrides})


def _log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run every stage (each resumes or is skipped when its result is already in ``cfg.out``)."""
    from squeezenas.cost.lut import build_lut, check_lut
    from squeezenas.cost.tables import CostTable
    from squeezenas.cost.timing import TimingConfig

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "demo_config.json", to_dict(cfg))
    t0, stages = time.perf_counter(), {}
    timing = TimingConfig(device=cfg.device, threads=cfg.threads, min_run_time=cfg.lut_min_run_time,
                          warmup=3, min_repeats=5, statistic=cfg.lut_statistic)

    # 1. latency lookup table, measured here
    t = time.perf_counter()
    lut_path = out / "lut.json"
    if lut_path.is_file():
        table = CostTable.load(lut_path)
    else:
        _log(f"1/6 latency table: space {cfg.space} at {cfg.size[0]}×{cfg.size[1]} on {cfg.device}")
        # bounded re-measurement: a busy laptop slows the demo a little instead of stalling it
        guard = {"max_other_cpu": 0.25, "retries": cfg.lut_retries}
        table = build_lut(cfg.space, cfg.size, timing, out=lut_path, progress=cfg.progress, rounds=cfg.lut_rounds,
                          **guard)
        check = check_lut(table, samples=cfg.check_samples, seed=cfg.seed, calibrate=True, progress=cfg.progress,
                          rounds=cfg.lut_rounds, **guard)
        atomic_write_json(out / "lut_check.json", check)
        table.save(lut_path)  # with the calibration
    stages["lut_s"] = time.perf_counter() - t

    # 2. latency-aware search to a target
    from squeezenas.search.config import SearchConfig
    from squeezenas.search.search import search

    t = time.perf_counter()
    uniform, cheapest = _uniform_expected(table), _cheapest(table)
    target = cheapest + cfg.target_fraction * (uniform - cheapest)
    scfg = SearchConfig(space=cfg.space, dataset=cfg.dataset, data_root=cfg.data_root,
                        data_options=dict(cfg.data_options), out=str(out / "search"), cost="latency",
                        lut=str(lut_path), target=target, epochs=cfg.search_epochs, warmup_epochs=cfg.warmup_epochs,
                        steps_per_epoch=cfg.search_steps, batch_size=cfg.batch_size, crop=cfg.crop,
                        workers=cfg.workers, device=cfg.device, seed=cfg.seed, progress=cfg.progress)
    resume = (out / "search" / "checkpoint.pt").is_file()
    _log(f"2/6 search: target {target:.2f} ms (uniform distribution: {uniform:.2f} ms)")
    sres = search(scfg, table, resume=resume)
    stages["search_s"] = time.perf_counter() - t

    # 3. sample, score through the supernet, Pareto front, pick at the budget
    from squeezenas.search.sample import sample_and_select

    t = time.perf_counter()
    _log(f"3/6 sample {cfg.samples} architectures and select at ≤ {target:.2f} ms")
    samp = sample_and_select(out / "search", cfg.samples, budget=target, budget_kind="ms", lut=table,
                             calib_batches=4, val_limit=cfg.val_limit, device=cfg.device, workers=cfg.workers,
                             seed=cfg.seed, progress=cfg.progress)
    genotype = samp.chosen_genotype
    geno_path = out / "genotype.json"
    genotype.save(geno_path)
    stages["sample_s"] = time.perf_counter() - t

    # 4. retrain the choice from scratch
    from squeezenas.engine.config import EvalConfig, TrainConfig
    from squeezenas.engine.evaluate import evaluate_checkpoint
    from squeezenas.engine.train import train

    t = time.perf_counter()
    train_dir = out / "train"
    tcfg = TrainConfig(model=str(geno_path), dataset=cfg.dataset, data_root=cfg.data_root,
                       data_options=dict(cfg.data_options), out=str(train_dir), epochs=cfg.train_epochs,
                       batch_size=cfg.batch_size, crop=cfg.crop, schedule="poly", workers=cfg.workers,
                       max_steps_per_epoch=cfg.train_steps, val_every=max(1, cfg.train_epochs // 3),
                       device=cfg.device, seed=cfg.seed, progress=cfg.progress,
                       resume=(train_dir / "last.pt").is_file())
    _log(f"4/6 retrain the chosen network from scratch ({cfg.train_epochs} epochs)")
    tres = train(tcfg)
    stages["train_s"] = time.perf_counter() - t

    # 5. evaluate on the test split and measure the latency the table predicted
    t = time.perf_counter()
    _log("5/6 evaluate on test and measure batch-1 latency")
    report = evaluate_checkpoint(EvalConfig(checkpoint=str(train_dir / "best.pt"), split="test", device=cfg.device,
                                            workers=cfg.workers, report=str(out / "test.json"),
                                            progress=cfg.progress))
    latency = _measure_latency(genotype, table, cfg, timing)
    stages["eval_s"] = time.perf_counter() - t

    # 6. pictures and report
    _log("6/6 report")
    pictures = _pictures(out, genotype, train_dir / "best.pt", cfg)
    summary = {
        "genotype": genotype.to_dict(), "target_ms": target, "uniform_expected_ms": uniform,
        "search": {"expected_ms": sres.expected_cost, "argmax_predicted_ms": sres.predicted_cost,
                   "pruned": len(sres.pruned), "epochs": sres.epochs},
        "chosen": samp.chosen, "test_miou": report["miou"], "test_pixel_accuracy": report["pixel_accuracy"],
        "per_class_iou": report.get("per_class_iou"), "latency": latency,
        "lut_check": json.loads((out / "lut_check.json").read_text()) if (out / "lut_check.json").is_file() else None,
        "train": {k: tres[k] for k in ("best_miou", "best_epoch", "epochs") if k in tres},
        "stages_s": {k: round(v, 1) for k, v in stages.items()}, "total_s": round(time.perf_counter() - t0, 1),
        "pictures": {k: str(Path(v).relative_to(out)) for k, v in pictures.items()},
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render_report(summary, cfg))
    _log(f"done in {summary['total_s']:.0f} s: test mIoU {100 * report['miou']:.1f}%, latency measured "
         f"{latency['measured_ms']:.2f} ms vs predicted {latency['predicted_ms']:.2f} ms → {out / 'report.md'}")
    return summary


def _uniform_expected(table) -> float:
    """Expected (calibrated) latency of the uniform distribution over the candidates."""
    raw = table.fixed_total + sum(sum(row) / len(row) for row in table.table)
    return table.calibrate(raw)


def _cheapest(table) -> float:
    """(Calibrated) latency of the cheapest network of the table's space."""
    return table.calibrate(table.fixed_total + sum(min(row) for row in table.table))


def _measure_latency(genotype, table, cfg: DemoConfig, timing) -> dict[str, float]:
    from squeezenas.cost.timing import measure, stat_key
    from squeezenas.models import build_model

    net = build_model(genotype, num_classes=table.meta.get("num_classes", 19))
    t = measure(net, (3, *cfg.size), replace(timing, min_run_time=max(1.0, timing.min_run_time)))
    return {"measured_ms": getattr(t, stat_key(timing.statistic)), "statistic": timing.statistic,
            "median_ms": t.median_ms, "iqr_ms": t.iqr_ms, "predicted_ms": table.predict(genotype, calibrated=True),
            "predicted_raw_ms": table.predict(genotype)}


def _pictures(out: Path, genotype, checkpoint: Path, cfg: DemoConfig) -> dict[str, Path]:
    """The network drawing and example test predictions (input | ground truth | prediction)."""
    from squeezenas.data import build_dataset
    from squeezenas.data.transforms import denormalize
    from squeezenas.draw import draw_networks
    from squeezenas.models.resolve import resolve_model
    from squeezenas.viz import colorize, side_by_side
    from PIL import Image

    pics = {"pareto": out / "search" / "pareto.png", "theta": out / "search" / "theta_heatmap.png"}
    pics = {k: v for k, v in pics.items() if v.is_file()}
    pics["network"] = draw_networks([(genotype, "chosen")], out / "network.png", size=cfg.size)
    r = resolve_model(str(checkpoint))
    model = r.model.eval()
    ds = build_dataset(cfg.dataset, cfg.data_root, "test", **cfg.data_options)
    palette = r.meta.get("palette") or ds.palette
    rows = []
    with torch.inference_mode():
        for i in range(min(3, len(ds))):
            x, y = ds[i]
            pred = model(x.unsqueeze(0)).argmax(1)[0].numpy()
            img = Image.fromarray((denormalize(x).clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype("uint8"))
            rows.append(side_by_side([img, colorize(y.numpy(), palette), colorize(pred, palette)]))
    grid = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)))
    for k, row in enumerate(rows):
        grid.paste(row, (0, k * rows[0].height))
    grid.save(out / "predictions.png")
    pics["predictions"] = out / "predictions.png"
    return pics


def render_report(s: dict[str, Any], cfg: DemoConfig) -> str:
    lat, chk = s["latency"], s.get("lut_check") or {}
    ops = s["genotype"]["genotype"]
    lines = [
        f"# squeezenas demo: {cfg.space} space, {cfg.dataset} data, {cfg.device}",
        "",
        f"Searched for **this {cfg.device}** at {cfg.size[0]}×{cfg.size[1]} (batch 1) with a latency target of "
        f"{s['target_ms']:.2f} ms ({cfg.target_fraction:.0%} of the way from the space's cheapest network to the "
        f"mean network's {s['uniform_expected_ms']:.2f} ms).",
        "",
        "| | |", "|---|---|",
        f"| test mIoU | {100 * s['test_miou']:.1f}% |",
        f"| test pixel accuracy | {100 * s['test_pixel_accuracy']:.1f}% |",
        f"| latency measured ({lat.get('statistic', 'median')}; median, IQR) | {lat['measured_ms']:.2f} ms "
        f"({lat.get('median_ms', lat['measured_ms']):.2f}, {lat['iqr_ms']:.2f}) |",
        f"| latency predicted by the table (calibrated / raw sum) | {lat['predicted_ms']:.2f} / {lat['predicted_raw_ms']:.2f} ms |",
    ]
    if chk:
        held_out = chk.get("calibrated") or {}
        lines.append(f"| table check over {chk['n']} networks: MAPE, Kendall τ (raw sum) | "
                     f"{chk['mape']:.1f}%, {chk['kendall_tau']:.2f}; calibrated (leave-one-out): "
                     f"{held_out.get('mape', float('nan')):.1f}%, {held_out.get('kendall_tau', float('nan')):.2f} |")
    lines += [
        f"| search | {s['search']['epochs']} epochs, expected {s['search']['expected_ms']:.2f} ms, "
        f"{s['search']['pruned']} candidates pruned |",
        f"| stages (s) | " + ", ".join(f"{k[:-2]} {v}" for k, v in s["stages_s"].items()) + f"; total {s['total_s']} |",
        "",
        "Chosen genotype: `" + " ".join(ops) + "`",
        "",
    ]
    titles = {"pareto": "Sampled architectures: supernet mIoU vs predicted latency (Pareto front, chosen one)",
              "theta": "Architecture distribution per position over the search",
              "network": "The chosen network", "predictions": "Test images: input | ground truth | prediction"}
    for k, title in titles.items():
        if k in s["pictures"]:
            lines += [f"## {title}", "", f"![]({s['pictures'][k]})", ""]
    return "\n".join(lines)
