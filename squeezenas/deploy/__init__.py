"""Deployment: export a network to a runtime (ONNX) and verify the file against PyTorch."""

from squeezenas.cost.timing.onnx import EXPORTERS
from squeezenas.deploy.onnx import LOGITS_NAME, LogitsOnly, as_logits, export_network, export_onnx, verify_onnx

__all__ = ["EXPORTERS", "LOGITS_NAME", "LogitsOnly", "as_logits", "export_network", "export_onnx", "verify_onnx"]
