"""Where does a CamVid network lose accuracy: per drive (the file-name prefix: 0001TP, 0006R0, 0016E5, Seq05VD) of
each split, test mIoU and per-class IoU. Train and val come from drives 0001TP, 0006R0 and 0016E5; test holds
62 later frames of 0001TP (the dusk drive) and 171 frames of Seq05VD, a drive never seen in training.

    python bench/camvid_by_sequence.py --checkpoint runs/camvid_claim/runs/latency_t1_s0/best.pt \
        --out bench/results/camvid_recipe/by_sequence_latency_t1_s0.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.data import Subset

from squeezenas.data import dataset_info
from squeezenas.engine.evaluate import evaluate, make_report
from squeezenas.engine.loaders import build_eval_dataset, build_eval_loader
from squeezenas.engine.metrics import scores
from squeezenas.models.resolve import resolve_model
from squeezenas.utils.io import atomic_write_json


def by_sequence(checkpoint: str, data_root: str, size: tuple[int, int], splits: list[str],
                workers: int = 1) -> dict:
    resolved = resolve_model(checkpoint)
    info = dataset_info("camvid", data_root)
    model = resolved.model.eval()
    out: dict = {"checkpoint": checkpoint, "size": list(size), "splits": {}}
    for split in splits:
        ds = build_eval_dataset("camvid", data_root, split, size)
        groups: dict[str, list[int]] = defaultdict(list)
        for i in range(len(ds)):
            groups[ds.sample_name(i).split("_")[0]].append(i)
        rows, confusion = {}, 0
        for seq, idx in sorted(groups.items()):
            metrics = evaluate(model, build_eval_loader(Subset(ds, idx), workers), info.num_classes, "cpu",
                               ignore_index=info.ignore_index)
            confusion = confusion + metrics["confusion"]
            report = make_report(metrics, info)
            rows[seq] = {k: report[k] for k in ("num_images", "miou", "pixel_accuracy", "per_class_iou")}
        # the whole split: the drives' matrices summed (one confusion matrix, as evaluate scores a split)
        whole = make_report({**scores(confusion), "num_images": len(ds)}, info)
        out["splits"][split] = {"all": {k: whole[k] for k in ("num_images", "miou", "pixel_accuracy",
                                                               "per_class_iou")}, "sequences": rows}
    return out


def markdown(result: dict) -> str:
    classes = None
    lines = []
    for split, r in result["splits"].items():
        for seq, row in [("all", r["all"]), *r["sequences"].items()]:
            if classes is None:
                classes = list(row["per_class_iou"])
                lines += ["| split | drive | images | mIoU | " + " | ".join(classes) + " |",
                          "|---|---|---|---|" + "---|" * len(classes)]
            ious = " | ".join("–" if row["per_class_iou"][c] is None else f"{100 * row['per_class_iou'][c]:.1f}"
                              for c in classes)
            lines.append(f"| {split} | {seq} | {row['num_images']} | {100 * row['miou']:.1f} | {ious} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-root", default="../shared/data/camvid")
    p.add_argument("--size", type=int, nargs=2, default=(180, 240), help="network input (H, W); scored at 360×480")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSON; a .md table beside it")
    a = p.parse_args()
    torch.set_num_threads(1)
    result = by_sequence(a.checkpoint, a.data_root, tuple(a.size), a.splits, a.workers)
    atomic_write_json(a.out, result)
    a.out.with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
