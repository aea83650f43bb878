"""What a table, a check or a benchmark hands to the timer for each part or network: a module, or its runtime's
artefact (ONNX, OpenVINO IR, ExecuTorch program) exported once."""

from __future__ import annotations

import tempfile
from typing import Any, Callable, Sequence

from torch import nn

from squeezenas.cost.timing.backends import Artefact, export_for_timing
from squeezenas.cost.timing.config import BACKENDS, TimingConfig


class TimingTargets:
    """What a table or a check hands to ``measure`` for each part or network.

    A fresh module from ``build``, except with ``export`` and a backend that runs an artefact (onnxruntime,
    openvino, executorch): then each key's module is exported once, into a temp dir that lives as long as this
    object, and every round and retry times that file: an export takes seconds, longer than the timing itself.
    """

    def __init__(self, config: TimingConfig, export: bool = True):
        self.config = config
        export = export and BACKENDS.get(config.backend).suffix is not None
        self._dir = tempfile.TemporaryDirectory(prefix="squeezenas-timing-") if export else None
        self._exported: dict[str, Artefact] = {}

    def get(self, key: str, build: Callable[[], nn.Module], shape: Sequence[int]) -> nn.Module | Artefact:
        if self._dir is None:
            return build()
        if key not in self._exported:
            self._exported[key] = export_for_timing(build(), shape, self.config, self._dir.name,
                                                    name=f"part{len(self._exported)}")
        return self._exported[key]

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()

    def __enter__(self) -> TimingTargets:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
