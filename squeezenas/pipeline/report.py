"""The demo's report: its pictures (network drawing, test predictions) and report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from squeezenas.data import build_dataset, palette_for
from squeezenas.models.resolve import resolve_model
from squeezenas.pipeline.config import DemoConfig
from squeezenas.space.genotype import Genotype
from squeezenas.viz.network import draw_networks
from squeezenas.viz.predictions import prediction_grid


def pictures(out: Path, genotype: Genotype, checkpoint: Path, cfg: DemoConfig) -> dict[str, Path]:
    """The search's pictures, the network drawing and example test predictions (input | truth | prediction)."""
    pics = {"pareto": out / "search" / "pareto.png", "theta": out / "search" / "theta_heatmap.png"}
    pics = {k: v for k, v in pics.items() if v.is_file()}
    pics["network"] = draw_networks([(genotype, "chosen")], out / "network.png", size=cfg.size)
    r = resolve_model(str(checkpoint))
    test = build_dataset(cfg.dataset, cfg.data_root, "test", **cfg.data_options)
    pics["predictions"] = prediction_grid(r.model, test, palette_for(r.meta, r.num_classes), out / "predictions.png")
    return pics


def render_report(s: dict[str, Any], cfg: DemoConfig) -> str:
    """report.md: the figures of ``summary.json`` and the pictures."""
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
