"""The supernetwork: every candidate at every searched position, architecture parameters θ, pruning, paths."""

from squeezenas.supernet.superblock import SuperBlock
from squeezenas.supernet.fused import FusedOptions
from squeezenas.supernet.supernet import SuperNet

__all__ = ["FusedOptions", "SuperBlock", "SuperNet"]
