"""`squeezenas export` as a library function: a zoo network, genotype file or checkpoint written to the runtimes
asked for (ONNX, OpenVINO, ExecuTorch), each file verified against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from squeezenas.cost.timing.config import BACKENDS
from squeezenas.deploy.onnx import export_onnx, verify_onnx
from squeezenas.deploy.runtimes import RUNTIME_SUFFIX, export_runtime, verify_runtime
from squeezenas.models.resolve import resolve_model
from squeezenas.utils.config import ConfigError, pair
from squeezenas.utils.io import check_output


def export_network(model_spec: str, onnx_path: str | Path | None = None, size: tuple[int, int] = (1024, 2048), *,
                   openvino: str | Path | None = None, executorch: str | Path | None = None,
                   weights: str | None = None, num_classes: int | None = None, dynamic: bool = False,
                   exporter: str = "dynamo", seed: int = 0, tolerance: float = 1e-3) -> dict[str, Any]:
    """Export a zoo network, genotype file or checkpoint (``weights`` loaded on top) at a (1, 3, H, W) example to
    each file asked for — ``onnx_path`` (.onnx, optionally ``dynamic``), ``openvino`` (.xml, weights in the .bin
    next to it), ``executorch`` (.pte) — and verify each on a seeded random input in its runtime.

    Returns one entry per file under ``files`` (runtime, path, bytes, max_abs_diff, verified), and ``verified``:
    whether every file is within ``tolerance`` of PyTorch (max abs difference of the logits). Every output is
    checked before anything is exported; a missing runtime is an error naming its extra.
    """
    size = pair("size", tuple(size))
    outputs = {"onnx": onnx_path, "openvino": openvino, "executorch": executorch}
    outputs = {runtime: Path(p) for runtime, p in outputs.items() if p is not None}
    if not outputs:
        raise ConfigError("name at least one output: --onnx M.onnx, --openvino M.xml or --executorch M.pte")
    if dynamic and "onnx" not in outputs:
        raise ConfigError("--dynamic applies to the ONNX export (--onnx); OpenVINO and ExecuTorch files are static")
    inputs = (model_spec,) + ((weights,) if weights else ())
    for runtime, path in outputs.items():
        check_output(path, kind="file", what=f"--{runtime}", inputs=inputs)
        suffix = RUNTIME_SUFFIX.get(runtime)
        if suffix and path.suffix.lower() != suffix:
            raise ConfigError(f"--{runtime} {path}: name a {suffix} file")
        if suffix:
            BACKENDS.get(runtime).require()  # a missing runtime: one line naming its extra, before any work
    r = resolve_model(model_spec, weights=weights, num_classes=num_classes)
    model = r.model.eval()
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))
    files = []
    for runtime, path in outputs.items():
        if runtime == "onnx":
            written = export_onnx(model, path, (1, 3, *size), dynamic=dynamic, exporter=exporter)
            diff = verify_onnx(model, written, x)
        else:
            written = export_runtime(model, path, runtime, (1, 3, *size))
            diff = verify_runtime(model, written, runtime, x)
        size_b = sum(f.stat().st_size for f in (written, written.with_suffix(".bin")) if f.is_file())
        files.append({"runtime": "onnxruntime" if runtime == "onnx" else runtime, "path": str(written), "bytes": size_b, "max_abs_diff": diff,
                      "verified": diff <= tolerance})
    return {"model": r.name, "input_size": list(size), "dynamic": dynamic, "num_classes": r.num_classes,
            "tolerance": tolerance, "files": files, "max_abs_diff": max(f["max_abs_diff"] for f in files),
            "verified": all(f["verified"] for f in files)}
