"""Before/after table of the training recipe (bench/camvid_recipe_gain.sh): test mIoU and per-class IoU of each
recipe and seed, the mean per recipe, the gain per seed, and each run's training time and val curve.

    python bench/camvid_recipe_gain.py --dir runs/camvid_recipe --out bench/results/camvid_recipe
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np


def _run(d: Path) -> dict:
    test = json.loads((d / "test.json").read_text())
    rows = list(csv.DictReader((d / "log.csv").open()))
    curve = [(int(r["epoch"]), float(r["val_miou"])) for r in rows if r.get("val_miou")]
    iou = test["per_class_iou"]  # class → IoU
    return {"run": d.name, "test_miou": test["miou"], "per_class_iou": [iou[c] for c in test["classes"]],
            "classes": test["classes"], "train_hours": sum(float(r["train_seconds"]) for r in rows) / 3600,
            "epochs": len(rows), "val_curve": curve}


def collect(root: Path) -> dict:
    runs = {}
    for d in sorted(root.iterdir()):
        m = re.fullmatch(r"(v\d+)_s(\d+)", d.name)
        if m and (d / "test.json").is_file():
            runs.setdefault(m[1], {})[int(m[2])] = _run(d)
    summary = {}
    for recipe, seeds in runs.items():
        t = [r["test_miou"] for r in seeds.values()]
        pc = np.array([r["per_class_iou"] for r in seeds.values()])
        summary[recipe] = {"seeds": sorted(seeds), "test_miou": t, "mean": float(np.mean(t)),
                           "sd": float(np.std(t, ddof=1)) if len(t) > 1 else None,
                           "per_class_mean": pc.mean(0).tolist()}
    gains = {}  # every newer recipe against every older one, on the seeds both ran
    for new in sorted(runs):
        for old in sorted(runs):
            common = sorted(set(runs[old]) & set(runs[new]))
            if old < new and common:
                gains[f"{new}-{old}"] = {s: runs[new][s]["test_miou"] - runs[old][s]["test_miou"] for s in common}
    return {"runs": runs, "summary": summary, "gain_per_seed": gains}


def markdown(r: dict) -> str:
    classes = next(iter(next(iter(r["runs"].values())).values()))["classes"]
    lines = ["| recipe / seed | epochs | train h | test mIoU | " + " | ".join(classes) + " |",
             "|---" * (4 + len(classes)) + "|"]
    for recipe, seeds in sorted(r["runs"].items()):
        for s, run in sorted(seeds.items()):
            lines.append(f"| {recipe} / {s} | {run['epochs']} | {run['train_hours']:.2f} | "
                         f"{100 * run['test_miou']:.1f} | "
                         + " | ".join(f"{100 * v:.1f}" for v in run["per_class_iou"]) + " |")
    for recipe, s in sorted(r["summary"].items()):
        sd = f" ± {100 * s['sd']:.1f}" if s["sd"] is not None else ""
        lines.append(f"| **{recipe} mean** | | | **{100 * s['mean']:.1f}{sd}** | "
                     + " | ".join(f"{100 * v:.1f}" for v in s["per_class_mean"]) + " |")
    for pair, gains in r["gain_per_seed"].items():
        lines.append(f"\nGain {pair.replace('-', ' − ')} per seed (test mIoU points): "
                     + ", ".join(f"seed {s}: {100 * g:+.1f}" for s, g in sorted(gains.items())))
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=Path("runs/camvid_recipe"))
    p.add_argument("--out", type=Path, default=Path("bench/results/camvid_recipe"))
    a = p.parse_args()
    r = collect(a.dir)
    if not r["runs"]:
        raise SystemExit(f"{a.dir}: no finished run (v1_sN/ or v2_sN/ with test.json)")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "summary.json").write_text(json.dumps(r, indent=1))
    (a.out / "summary.md").write_text(markdown(r))
    for recipe, seeds in r["runs"].items():  # the raw reports and logs next to the summary
        for s in seeds:
            d = a.dir / f"{recipe}_s{s}"
            for name, dst in (("test.json", f"{recipe}_s{s}_test.json"), ("log.csv", f"{recipe}_s{s}_log.csv"),
                              ("class_weights.json", f"{recipe}_s{s}_class_weights.json")):
                if (d / name).is_file():
                    shutil.copyfile(d / name, a.out / dst)
    print(markdown(r))


if __name__ == "__main__":
    main()
