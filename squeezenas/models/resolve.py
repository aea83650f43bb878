"""Turn what a user names on the command line (zoo name, genotype file, checkpoint) into a network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from squeezenas.models.builder import build_model
from squeezenas.models.weights import load_weights, read_state_dict
from squeezenas.models.zoo import ZOO, get_model
from squeezenas.space.genotype import Genotype, load_genotype
from squeezenas.utils.config import positive
from squeezenas.utils.registry import unknown_name_message

GENOTYPE_SUFFIXES = (".json", ".yaml", ".yml")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt")


@dataclass
class ResolvedModel:
    model: nn.Module
    name: str  # zoo name, genotype file stem or checkpoint stem
    genotype: Genotype | None
    num_classes: int
    meta: dict = field(default_factory=dict)  # checkpoint metadata (classes, palette, dataset, ...)


def resolve_model(spec: str | Path, *, weights: str | Path | None = None, num_classes: int | None = None) -> ResolvedModel:
    """``spec`` is a zoo name, a genotype file (.json/.yaml) or a checkpoint of ours (.pt/.safetensors).

    ``weights`` (optional) is loaded strictly on top; it may be a released SqueezeNAS checkpoint.
    """
    positive("num_classes", num_classes)
    spec_s = str(spec)
    path = Path(spec_s)
    meta: dict = {}
    if spec_s in ZOO:
        entry = ZOO.get(spec_s)
        n = num_classes or entry.num_classes
        model, geno, name = get_model(spec_s, num_classes=n), entry.genotype, spec_s
        meta = {"dataset": entry.dataset}
    elif path.suffix in GENOTYPE_SUFFIXES:
        geno = load_genotype(path)
        n = num_classes or 19
        model, name = build_model(geno, num_classes=n), path.stem
    elif path.suffix in CHECKPOINT_SUFFIXES:
        sd, meta = read_state_dict(path)
        if meta.get("genotype"):
            geno = Genotype.from_dict(meta["genotype"], where=f"{path}: genotype")
            n = int(meta.get("num_classes") or num_classes or 19)
            model = build_model(geno, num_classes=n)
        elif meta.get("model_name") in ZOO:
            entry = ZOO.get(meta["model_name"])
            n = int(meta.get("num_classes") or entry.num_classes)
            model, geno = get_model(meta["model_name"], num_classes=n), entry.genotype
        else:
            raise ValueError(f"{path}: the checkpoint does not say which network it holds (no 'genotype' or "
                             "'model_name'); name the network (a zoo name or genotype file) and load this file as "
                             "its weights: eval --model NAME --checkpoint FILE; predict, export, bench NAME --weights FILE")
        from squeezenas.models.weights import load_state_dict_strict

        load_state_dict_strict(model, sd, source=str(path))
        name = path.stem
    else:
        if path.exists():
            raise ValueError(f"{spec_s}: unknown file type (expected a genotype {GENOTYPE_SUFFIXES} "
                             f"or a checkpoint {CHECKPOINT_SUFFIXES})")
        raise KeyError(unknown_name_message("model", spec_s, ZOO.names())
                       + "; or give a genotype .json or a checkpoint file")
    if weights is not None:
        meta = {**meta, **load_weights(model, weights)}
    return ResolvedModel(model=model, name=name, genotype=geno, num_classes=n, meta=meta)
