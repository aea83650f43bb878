"""The supernetwork: every candidate at every searched position, architecture parameters θ, pruning, paths."""

from squeezenas.supernet.superblock import SuperBlock
from squeezenas.supernet.supernet import SuperNet, drop_stale_parameters

__all__ = ["SuperBlock", "SuperNet", "drop_stale_parameters"]
