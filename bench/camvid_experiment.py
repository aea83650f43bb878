"""Table and figures of the CamVid experiment (bench/camvid_experiment.sh): MAC-searched vs latency-searched vs
MobileNetV3 LR-ASPP, each retrained with one recipe.

    python bench/camvid_experiment.py --dir runs/camvid_experiment --lut runs/camvid_experiment/lut_eager.json \
        --plots docs/img

Reads ``DIR/{mac,lat,mnv3}/test.json`` (squeezenas eval; with ``DIR/seeds/NAME_sN/test.json`` of
bench/camvid_seeds.sh, also the mean and spread of test mIoU over the seeds), ``DIR/{mac,lat,mnv3}/latency_{eager,onnxruntime}.json``
(squeezenas bench --json), the two searches' ``pareto.json`` and chosen genotypes; prints a Markdown table and
writes the paper's Figure 5 (GMACs vs mIoU), Figure 6 (latency vs mIoU) and Figure 10 (GMAC/s vs latency), plus
both searches' sampled architectures on one latency axis.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from squeezenas.cost.counting import count_costs
from squeezenas.cost.tables import CostTable
from squeezenas.models.resolve import resolve_model
from squeezenas.space.genotype import load_genotype

RUNS = {  # run folder → label, marker, colour
    "mac": ("(a) MAC-searched", "s", "#e67e22"),
    "lat": ("(b) latency-searched", "*", "#c0392b"),
    "mnv3": ("(c) MobileNetV3-Large LR-ASPP", "o", "#2c7fb8"),
}
SEARCHES = {"mac": "search_mac", "lat": "search_lat"}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def collect(run_dir: Path, lut: CostTable | None) -> list[dict]:
    rows = []
    for key, (label, _, _) in RUNS.items():
        d = run_dir / key
        test = _load(d / "test.json")
        if test is None:
            continue
        ckpt = d / "best.pt"
        model = resolve_model(ckpt).model
        size = tuple(test["size"])
        costs = count_costs(model, size)
        row = {"key": key, "label": label, "miou": test["miou"], "pixel_accuracy": test["pixel_accuracy"],
               "per_class_iou": test["per_class_iou"], "gmacs": costs.gmacs, "params_m": costs.params / 1e6,
               "size": list(size), "seed_mious": seed_mious(run_dir, key, test["miou"])}
        for backend in ("eager", "onnxruntime"):
            lat = _load(d / f"latency_{backend}.json")
            if lat is not None:
                row[f"{backend}_ms"] = lat["median_ms"]
                row[f"{backend}_min_ms"] = lat["min_ms"]
                row[f"{backend}_iqr_ms"] = lat["iqr_ms"]
                row["threads"] = lat["threads"]
        if key in SEARCHES:
            chosen = _load(run_dir / SEARCHES[key] / "chosen_genotype.json")
            row["supernet_miou"] = chosen["meta"]["miou_supernet_estimate"]
            if lut is not None:
                g = load_genotype(run_dir / SEARCHES[key] / "chosen_genotype.json")
                row["predicted_ms"] = lut.predict(g, calibrated=True)
        rows.append(row)
    return rows


def seed_mious(run_dir: Path, key: str, seed0: float) -> dict[str, float]:
    """Test mIoU per retraining seed: 0 is the experiment's run, others from bench/camvid_seeds.sh."""
    out = {"0": seed0}
    for f in sorted((run_dir / "seeds").glob(f"{key}_s*/test.json")):
        out[f.parent.name.rsplit("_s", 1)[1]] = json.loads(f.read_text())["miou"]
    return out


def miou_over_seeds(r: dict) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one seed) and number of seeds of a row's test mIoU."""
    v = list(r["seed_mious"].values())
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)


def table(rows: list[dict]) -> str:
    out = ["| network | test mIoU | GMACs | params (M) | latency eager: median (IQR), min (ms) | "
           "latency onnxruntime: median (IQR), min (ms) | table's prediction (ms) | GMAC/s (eager, at the min) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, o, pred = r.get("eager_ms"), r.get("onnxruntime_ms"), r.get("predicted_ms")
        cells = [r["label"], f"**{100 * r['miou']:.1f}**", f"{r['gmacs']:.3f}", f"{r['params_m']:.2f}",
                 f"{e:.2f} ({r['eager_iqr_ms']:.2f}), {r['eager_min_ms']:.2f}" if e is not None else "–",
                 f"{o:.2f} ({r['onnxruntime_iqr_ms']:.2f}), {r['onnxruntime_min_ms']:.2f}" if o is not None else "–",
                 f"{pred:.2f}" if pred is not None else "–",
                 f"{r['gmacs'] / (r['eager_min_ms'] / 1e3):.1f}" if e else "–"]
        out.append("| " + " | ".join(cells) + " |")
    if any(len(r["seed_mious"]) > 1 for r in rows):
        out += ["", "| network | test mIoU per retraining seed (%) | mean ± sd (%) |", "|---|---|---|"]
        for r in rows:
            mean, sd, n = miou_over_seeds(r)
            seeds = ", ".join(f"{k}: {100 * v:.1f}" for k, v in r["seed_mious"].items())
            out.append(f"| {r['label']} | {seeds} | {100 * mean:.1f} ± {100 * sd:.1f} (n={n}) |")
    classes = list(rows[0]["per_class_iou"]) if rows else []
    out += ["", "| network | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for r in rows:
        out.append(f"| {r['label']} | " + " | ".join(f"{100 * r['per_class_iou'][c]:.1f}" for c in classes) + " |")
    return "\n".join(out)


def plots(rows: list[dict], run_dir: Path, dest: Path, target: str = "eager") -> list[Path]:
    """The figures, latency on the target backend's axis (the other backend's as hollow markers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dest.mkdir(parents=True, exist_ok=True)
    written = []
    size = "×".join(map(str, rows[0]["size"])) if rows else ""
    threads = rows[0].get("threads") if rows else None
    other = "onnxruntime" if target == "eager" else "eager"
    names = {"eager": "PyTorch eager", "onnxruntime": "ONNX Runtime"}
    lat_key, other_key = f"{target}_min_ms", f"{other}_min_ms"
    lat_label = f"batch-1 latency, {names[target]}, {threads} thread(s), {size}: min per call (ms)"
    figs = [
        ("camvid_fig5_macs_miou.png", "gmacs", lambda r: 100 * r["miou"], f"GMACs at {size}", "test mIoU (%)",
         "MACs vs mIoU (CamVid test)"),
        ("camvid_fig6_latency_miou.png", lat_key, lambda r: 100 * r["miou"], lat_label, "test mIoU (%)",
         "Latency vs mIoU (CamVid test)"),
        ("camvid_fig10_throughput_latency.png", lat_key, lambda r: r["gmacs"] / (r[lat_key] / 1e3),
         lat_label, "throughput (GMAC/s)", "Throughput vs latency"),
    ]
    for name, xkey, yfun, xlabel, ylabel, title in figs:
        fig, ax = plt.subplots(figsize=(6.0, 4.2))
        for r in rows:
            if xkey not in r:
                continue
            _, marker, colour = RUNS[r["key"]]
            ax.scatter([r[xkey]], [yfun(r)], s=140 if marker == "*" else 70, marker=marker, c=colour,
                       label=r["label"], zorder=3)
            mean, sd, n = miou_over_seeds(r)
            if n > 1 and "miou" in title.lower():  # the seeds' mean ± sd beside the seed-0 point
                ax.errorbar([r[xkey]], [100 * mean], yerr=[100 * sd], fmt="_", c=colour, capsize=4, alpha=0.7,
                            zorder=2, label=f"mean ± sd over {n} seeds")
            if xkey == lat_key and other_key in r and "miou" in title.lower():
                ax.scatter([r[other_key]], [yfun(r)], s=60, marker=marker, facecolors="none",
                           edgecolors=colour, zorder=3)
        if "miou" in title.lower() and xkey == lat_key:
            ax.scatter([], [], s=60, marker="o", facecolors="none", edgecolors="k", label=f"same, {names[other]}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(dest / name, dpi=120)
        plt.close(fig)
        written.append(dest / name)

    # both searches' samples on the predicted-latency axis (supernet mIoU estimates on val)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for key, sdir in SEARCHES.items():
        p = _load(run_dir / sdir / "pareto.json")
        if p is None or not p["samples"] or "latency_ms" not in p["samples"][0]:
            continue
        _, marker, colour = RUNS[key]
        xs = [s["latency_ms"] for s in p["samples"]]
        ys = [100 * s["miou"] for s in p["samples"]]
        ax.scatter(xs, ys, s=10, c=colour, alpha=0.45, label=f"{RUNS[key][0]}: {len(xs)} samples")
        c = p["chosen"]
        ax.scatter([c["latency_ms"]], [100 * c["miou"]], s=160, marker=marker, c=colour, edgecolors="k",
                   label=f"{RUNS[key][0]}: chosen", zorder=4)
    ax.set_xlabel(f"predicted latency (calibrated table, {size}) (ms)")
    ax.set_ylabel("mIoU through the supernet (val subset, %)")
    ax.set_title("Architectures sampled from the two searches")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dest / "camvid_samples_latency.png", dpi=120)
    plt.close(fig)
    written.append(dest / "camvid_samples_latency.png")
    for sdir in SEARCHES.values():
        for png in ("theta_heatmap.png",):
            src = run_dir / sdir / png
            if src.is_file():
                shutil.copyfile(src, dest / f"camvid_{sdir}_{png}")
                written.append(dest / f"camvid_{sdir}_{png}")
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("runs/camvid_experiment"))
    ap.add_argument("--lut", type=Path, default=None, help="the experiment's latency table (predicted latency)")
    ap.add_argument("--plots", type=Path, default=None, help="write the figures here")
    ap.add_argument("--target", choices=("eager", "onnxruntime"), default=None,
                    help="backend on the figures' latency axis (default: the --lut table's, else eager)")
    args = ap.parse_args(argv)
    lut = CostTable.load(args.lut) if args.lut else None
    rows = collect(args.dir, lut)
    if not rows:
        raise SystemExit(f"no finished run under {args.dir} (expected mac/, lat/, mnv3/ with test.json)")
    print(table(rows))
    (args.dir / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    if args.plots:
        target = args.target or (lut.meta.get("backend", "eager") if lut is not None else "eager")
        for p in plots(rows, args.dir, args.plots, target if target in ("eager", "onnxruntime") else "eager"):
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
