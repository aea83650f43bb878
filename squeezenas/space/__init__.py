"""The SqueezeNAS search space as data: candidate codes, macro-architectures, genotypes."""

from squeezenas.space.genotype import Genotype, GenotypeError, load_genotype, random_genotype
from squeezenas.space.macro import MACROS, DecoderSpec, MacroArch, PositionSpec, Stage, get_macro, get_space, load_macro
from squeezenas.space.ops import CANDIDATES, SKIP, OpSpec, parse_op

__all__ = [
    "CANDIDATES", "SKIP", "OpSpec", "parse_op",
    "MACROS", "DecoderSpec", "MacroArch", "PositionSpec", "Stage", "get_macro", "get_space", "load_macro",
    "Genotype", "GenotypeError", "load_genotype", "random_genotype",
]
