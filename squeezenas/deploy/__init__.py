"""Deployment: export a network to a runtime (ONNX, OpenVINO, ExecuTorch) and verify the file against PyTorch."""

from squeezenas.cost.timing.onnx import EXPORTERS
from squeezenas.deploy.network import export_network
from squeezenas.deploy.onnx import LOGITS_NAME, LogitsOnly, as_logits, export_onnx, verify_onnx
from squeezenas.deploy.runtimes import RUNTIME_SUFFIX, export_runtime, verify_runtime

__all__ = ["EXPORTERS", "LOGITS_NAME", "RUNTIME_SUFFIX", "LogitsOnly", "as_logits", "export_network", "export_onnx",
           "export_runtime", "verify_onnx", "verify_runtime"]
