"""Latency tables for devices that cannot run the project: export a self-contained bundle, import its results.

``export_bundle`` writes every distinct part of a latency table (each candidate at each distinct input shape,
stem, last conv, decoder) as the runtime's artefact — ONNX (onnxruntime), OpenVINO IR or an ExecuTorch program —
exactly as that timing backend exports it, optionally a few whole networks spanning the space's cost range (to
check and calibrate the sum on the device), a manifest and ``run_bundle.py`` (a copy of ``runner.py``: Python +
numpy + that runtime only). ``import_results`` turns the runner's results JSON into a latency ``CostTable`` of
that backend; when the bundle held networks, it also reports the prediction errors (raw and held-out calibrated)
and stores the calibration.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from pathlib import Path

import torch

from squeezenas.cost.bundle.runner import RESULTS_FORMAT
from squeezenas.cost.lut.build import assemble_table
from squeezenas.cost.lut.check import evaluate_predictions, spanning_genotypes
from squeezenas.cost.lut.loading import LutError
from squeezenas.cost.lut.plan import plan_lut
from squeezenas.cost.tables import CostTable, mac_table
from squeezenas.cost.timing.backends import export_for_timing
from squeezenas.cost.timing.config import BACKENDS, TimingConfig, default_statistic, stat_key
from squeezenas.cost.timing.rounds import combine_rounds
from squeezenas.utils.config import ConfigError
from squeezenas.models.builder import build_model
from squeezenas.space.genotype import Genotype
from squeezenas.space.macro import MacroArch, get_space
from squeezenas.utils.io import atomic_write_json

BUNDLE_FORMAT = "squeezenas latency bundle"
RUNNER = Path(__file__).with_name("runner.py")
RUNTIMES = ("onnxruntime", "openvino", "executorch")  # the backends whose artefacts a bundle can carry


def export_bundle(
    macro: str | MacroArch,
    input_size: tuple[int, int],
    out_dir: str | Path,
    *,
    num_classes: int = 19,
    networks: int = 0,
    seed: int = 0,
    exporter: str = "dynamo",
    progress: bool = True,
    context: str | None = None,
    backend: str = "onnxruntime",
) -> Path:
    """Write the bundle for (macro, input_size) and the runtime ``backend`` (onnxruntime, openvino, executorch)
    to ``out_dir``; returns the manifest path.

    ``networks`` whole networks are added for an on-device check; they span the MAC range and the skip ratio
    (the latency ordering is unknown before the device has run the bundle), sampled as ``lut check`` samples
    them. ``context`` is ``plan_lut``'s: by default ops are exported after an adapter, and the adapters alone, as
    the backend times them (see ``lut.plan.adapter_conv``).
    """
    if backend not in RUNTIMES:
        raise ConfigError(f"--backend: a bundle carries the artefacts of {', '.join(RUNTIMES)}, not {backend!r}")
    arch = get_space(macro)
    config = TimingConfig(backend=backend, onnx_exporter=exporter, threads=1)
    BACKENDS.get(backend).require()
    out = Path(out_dir)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    plan = plan_lut(arch, tuple(input_size), config, num_classes, context)
    from tqdm import tqdm

    parts = []
    gen = torch.Generator().manual_seed(0)
    for i, (key, part) in enumerate(tqdm(plan.parts.items(), desc=f"export {arch.name}", unit="model",
                                         disable=not progress, dynamic_ncols=True)):
        name = f"{i:03d}_{part.kind}"
        artefact = export_for_timing(part.build(), torch.randn(part.input_shape, generator=gen), config,
                                     out / "parts", name)
        parts.append({"key": key, "kind": part.kind, "file": f"parts/{artefact.path.name}",
                      "input_shape": list(part.input_shape)})
    nets = []
    if networks:
        (out / "networks").mkdir(exist_ok=True)
        h, w = plan.input_size
        macs = mac_table(arch, plan.input_size, num_classes)
        for k, (r, s, geno) in enumerate(spanning_genotypes(macs, networks, seed)):
            name = f"net{k:03d}"
            artefact = export_for_timing(build_model(geno, num_classes=num_classes),
                                         torch.randn(1, 3, h, w, generator=gen), config, out / "networks", name)
            nets.append({"name": name, "file": f"networks/{artefact.path.name}", "input_shape": [1, 3, h, w],
                         "mix_ratio": round(r, 4), "skip_ratio": round(s, 4), "genotype": list(geno.ops)})
    from squeezenas import __version__

    manifest = {
        "format": BUNDLE_FORMAT, "version": 1, "space": arch.name, "macro": arch.to_dict(),
        "input_size": list(plan.input_size), "num_classes": num_classes, "candidates": list(arch.candidates),
        "runtime": backend,
        "cells": plan.cells, "fixed_keys": plan.fixed, "context": plan.context, "parts": parts, "networks": nets,
        **({"after_keys": {str(g): k for g, k in plan.after.items()}} if plan.after else {}),
        "seed": seed,
        "exporter": exporter, "torch": torch.__version__, "squeezenas": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest["bundle_id"] = hashlib.sha256(json.dumps([manifest["macro"], manifest["input_size"], num_classes,
                                                       [p["key"] for p in parts], nets]).encode()).hexdigest()[:16]
    atomic_write_json(out / "manifest.json", manifest)
    shutil.copyfile(RUNNER, out / "run_bundle.py")
    needs = {"onnxruntime": "onnxruntime", "openvino": "openvino", "executorch": "executorch (with its torch)"}
    (out / "README.txt").write_text(
        f"squeezenas latency bundle ({backend}): space {arch.name!r} at {plan.input_size[0]}x{plan.input_size[1]}, "
        f"{len(parts)} parts, {len(nets)} check networks.\n\n"
        f"On the target device (needs Python 3.8+, numpy, {needs[backend]}):\n"
        "    python run_bundle.py --threads N --out results.json\n"
        "Then, where squeezenas is installed:\n"
        "    squeezenas lut import results.json --out table.json\n")
    return out / "manifest.json"


def import_results(results: str | Path, out: str | Path | None = None, *, calibrate: bool = True,
                   statistic: str | None = None) -> tuple[CostTable, dict | None]:
    """Turn a bundle's results JSON into a latency table (saved to ``out`` when given), keeping each part's
    and network's ``statistic`` (median, min or p10 of the per-call times the runner recorded; by default the
    min on a CPU, as ``TimingConfig``), of the fastest round for the min, of the median round otherwise.

    Returns the table and, when the results hold check networks, their error report (raw and leave-one-out
    calibrated); with ``calibrate`` the fit on all of them is stored in the table.
    """
    path = Path(results)
    if not path.is_file():
        raise FileNotFoundError(f"bundle results not found: {path}")
    d = json.loads(path.read_text())
    if d.get("format") != RESULTS_FORMAT:
        raise LutError(f"{path}: not squeezenas bundle results (format {d.get('format')!r})")
    manifest, settings, fp = d["manifest"], d["settings"], d["fingerprint"]
    macro = MacroArch.from_dict(manifest["macro"], where=f"{path}: macro")
    device = fp.get("device", "cpu")
    runtime = manifest.get("runtime", "onnxruntime")
    config = TimingConfig(backend=runtime, device=device, threads=int(settings["threads"]),
                          runtime_device=None if settings.get("device", "CPU") == "CPU" or runtime != "openvino"
                          else settings["device"],
                          warmup=settings["warmup"], min_run_time=settings["min_run_time"],
                          max_run_time=settings["max_run_time"], min_repeats=settings["min_repeats"],
                          max_repeats=settings["max_repeats"], onnx_exporter=manifest["exporter"],
                          statistic=statistic or default_statistic(device))
    stat = stat_key(config.statistic)
    # results of runner version 2 hold every round of a model (a list); those of version 1 one measurement
    parts = {k: combine_rounds(v if isinstance(v, list) else [v], stat) for k, v in d["parts"].items()}
    measured = {k: combine_rounds(v if isinstance(v, list) else [v], stat) for k, v in d.get("networks", {}).items()}
    plan = plan_lut(macro, tuple(manifest["input_size"]), config, int(manifest["num_classes"]),
                    manifest.get("context", "alone"))
    after = {str(g): k for g, k in plan.after.items()}
    if (plan.cells, plan.fixed, after) != (manifest["cells"], manifest["fixed_keys"], manifest.get("after_keys", {})):
        raise LutError(f"{path}: the bundle's parts do not match this squeezenas version's plan of the space; "
                       "export the bundle again with this version")
    missing = [k for k in plan.parts if k not in parts]
    if missing:
        raise LutError(f"{path}: {len(missing)} parts have no result (first: {missing[0]})")
    table = assemble_table(plan, parts, fp, 0.0, source="bundle")
    table.meta.update({"bundle_id": manifest["bundle_id"], "provider": fp.get("provider"),
                       "rounds": settings.get("rounds", 1), "created": d.get("created", table.meta["created"])})
    table.meta.pop("build_seconds", None)
    report = None
    rows = [{"index": k, "name": n["name"], "mix_ratio": n["mix_ratio"], "skip_ratio": n.get("skip_ratio"),
             "genotype": n["genotype"], "predicted_ms": table.predict(Genotype(macro, tuple(n["genotype"]))),
             "measured_ms": measured[n["name"]][stat], "iqr_ms": measured[n["name"]]["iqr_ms"]}
            for k, n in enumerate(manifest.get("networks", [])) if n["name"] in measured]
    if len(rows) >= 3:
        report = {"space": macro.name, "input_size": manifest["input_size"], "backend": runtime,
                  "provider": fp.get("provider"), "threads": config.threads, **evaluate_predictions(table, rows),
                  "networks": rows}
        if calibrate:
            table.meta["calibration"] = {**report["calibration_fit"], "seed": manifest.get("seed"),
                                         "held_out_mape": report["calibrated"]["mape"], "fitted": table.meta["created"]}
    if out is not None:
        table.save(out)
    return table, report
