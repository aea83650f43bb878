"""OpenVINO as a runtime backend (``pip install 'squeezenas[openvino]'``): the OpenVINO IR export (.xml + .bin),
a compiled model on the CPU (or the device named by ``runtime_device``: "GPU", "NPU", ...), one infer request."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenas.cost.bundle.runner import openvino_properties
from squeezenas.cost.timing.backends import RuntimeBackend, TimedCall, host_clock
from squeezenas.cost.timing.config import BACKENDS, TimingConfig
from squeezenas.utils.config import ConfigError

# The precision OpenVINO computes in (INFERENCE_PRECISION_HINT), from the config's dtype, never left to the plugin:
# on CPUs with AVX-512 BF16 or AMX (this project's EPYC has it) the CPU plugin may pick bf16, which would time
# another network than the float32 one exported. The properties are the bundle runner's (``openvino_properties``).
_PRECISION = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


class OpenVinoBackend(RuntimeBackend):
    """``openvino.convert_model`` of the ``torch.export`` program, input shape fixed, saved as IR without fp16
    weight compression (``save_model(..., compress_to_fp16=False)``: the artefact computes what PyTorch does);
    compiled with the latency hint, ``threads`` inference threads (CPU) and the config's precision; one infer
    request with its input tensor set once (shared with numpy), outputs left in the request."""

    name = "openvino"
    suffix = ".xml"  # with its weights in a .bin of the same name
    module = "openvino"
    extra = "openvino"
    # The CPU plugin runs convolutions in blocked layouts (nChw8c/16c) and reorders at a graph's edges: once per
    # network, but at both ends of a part timed alone; ops are timed after an adapter, as for onnxruntime.
    context = "adapter"

    def check(self, config: TimingConfig) -> str | None:
        if config.device != "cpu":
            return ("device: the openvino backend runs from the CPU side; name OpenVINO's own device with "
                    "runtime_device ('GPU', 'NPU'), not device='cuda'")
        if config.channels_last:
            return "channels_last: OpenVINO picks its own layout; use channels_last=False"
        if config.dtype == "float16" and self.device_name(config).startswith("CPU"):
            return "dtype: 'float16' is for OpenVINO's GPU/NPU (runtime_device); on the CPU use float32 or bfloat16"
        return None

    @staticmethod
    def device_name(config: TimingConfig) -> str:
        return config.runtime_device or "CPU"

    def version(self) -> str | None:
        return self.require().__version__

    def export(self, module: nn.Module, example: torch.Tensor, path: Path, config: TimingConfig) -> Path:
        ov = self.require()
        with torch.no_grad():
            program = torch.export.export(module.eval(), (example,))
        model = ov.convert_model(program)
        model.reshape(list(example.shape))  # the static shape deployed (convert_model leaves N, H, W dynamic)
        ov.save_model(model, str(path), compress_to_fp16=False)
        return path

    def compiled(self, path: Path, config: TimingConfig, threads: int) -> Any:
        device = self.device_name(config)
        properties = openvino_properties(device, threads, _PRECISION[config.dtype])
        try:
            return _core().compile_model(str(path), device, properties)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"TimingConfig.runtime_device: OpenVINO cannot compile {path} for {device!r} "
                              f"(available: {_core().available_devices}): {first}") from None

    def session(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int) -> TimedCall:
        ov = self.require()
        compiled = self.compiled(path, config, threads)
        x_np = np.ascontiguousarray(x.detach().float().cpu().numpy())
        expected = compiled.inputs[0].get_partial_shape()
        if expected.is_static and tuple(expected.to_shape()) != x_np.shape:
            raise ConfigError(f"measure: the OpenVINO model takes input {tuple(expected.to_shape())}, "
                              f"the timed input is {x_np.shape}")
        request = compiled.create_infer_request()
        tensor = ov.Tensor(x_np, shared_memory=True)
        request.set_input_tensor(tensor)
        return TimedCall(request.infer, host_clock, keep=(compiled, request, tensor, x_np))

    def run(self, path: Path, x: torch.Tensor, config: TimingConfig, threads: int = 1) -> list[torch.Tensor]:
        compiled = self.compiled(path, config, threads)
        result = compiled(np.ascontiguousarray(x.float().cpu().numpy()))
        return [torch.from_numpy(np.array(result[out])) for out in compiled.outputs]

    def input_shape(self, path: Path) -> tuple[Any, ...]:
        """The IR's one input shape (None for dynamic dimensions); ValueError naming the file otherwise."""
        try:
            model = _core().read_model(str(path))
        except RuntimeError as e:
            raise ValueError(f"{path}: OpenVINO cannot read it ({str(e).strip().splitlines()[0]})") from e
        if len(model.inputs) != 1:
            raise ValueError(f"{path}: expected one input, got {len(model.inputs)}")
        return tuple(d.get_length() if d.is_static else None for d in model.inputs[0].get_partial_shape())


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    """One OpenVINO Core per process (it holds the plugins)."""
    return OpenVinoBackend().require().Core()


BACKENDS.register("openvino", OpenVinoBackend())
