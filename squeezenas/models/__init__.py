"""Networks: candidate blocks, decoders, the one builder, the model zoo and weight loading."""

from squeezenas.models.builder import SegmentationNet, SqueezeNASNet, build_model
from squeezenas.models.weights import CheckpointError, load_weights
from squeezenas.models.zoo import ZOO, ZooEntry, get_model, get_model_entry, list_models

__all__ = ["SegmentationNet", "SqueezeNASNet", "build_model", "CheckpointError", "load_weights",
           "ZOO", "ZooEntry", "get_model", "get_model_entry", "list_models"]
