"""Process groups under torchrun: who am I, which device, wrapping for DDP, and samplers that shard data."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """Rank, world size and local rank from the variables torchrun sets (defaults: a single process)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def resolve_device(device: str, info: DistInfo | None = None) -> torch.device:
    """"auto" → cuda if available; under torchrun each process takes GPU ``local_rank``."""
    info = info or env_dist_info()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but PyTorch sees no CUDA device (use --device cpu)")
        if device == "cuda":
            device = f"cuda:{info.local_rank % torch.cuda.device_count()}"
        torch.cuda.set_device(torch.device(device))
    return torch.device(device)


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (NCCL for CUDA, gloo for CPU); a no-op for one process."""
    info = env_dist_info()
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size, **kwargs)
    return info


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_dist():
        dist.barrier()


def wrap_ddp(model: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """DistributedDataParallel around ``model`` (already on ``device``); SyncBatchNorm on CUDA if asked.

    SyncBatchNorm needs GPUs; on CPU every rank normalises with its own batch and ``broadcast_buffers``
    (DDP's default) hands rank 0's running statistics to all ranks at each forward.
    """
    if not is_dist():
        return model
    if sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain network inside a DDP wrapper (what gets saved and evaluated)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def broadcast_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BN running statistics) to every rank, so all ranks hold identical state."""
    if is_dist():
        for buf in unwrap(model).buffers():
            dist.broadcast(buf.data, src)


def all_reduce_sum(value: float, device: torch.device) -> float:
    """Sum of a number over all ranks (the number itself with one process)."""
    if not is_dist():
        return value
    t = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` in order: every sample exactly once over all ranks.

    Unlike DistributedSampler it never pads with repeats, so metrics summed over ranks are exact; ranks
    may get one sample more or less, which is fine for evaluation (no collective call per batch).
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return max(0, math.ceil((self.length - self.rank) / self.world_size))
