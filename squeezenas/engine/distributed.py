"""Process groups under torchrun: who am I, which device, wrapping for DDP, the few collectives the engine and
the search need, and samplers that shard data."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Iterator, Sequence

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


def peak_memory_gib(device: torch.device) -> float:
    """This process's peak memory so far: CUDA ``max_memory_allocated`` on ``device``; on CPU the maximum
    resident set size (it includes the interpreter and libraries, ~0.5 GiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**30 if sys.platform == "darwin" else 2**20)  # bytes on macOS, KiB on Linux


_JOINED = 0  # process groups this process has joined: each gets its own store prefix (see init_distributed)


def init_distributed(device: torch.device, timeout: datetime.timedelta | None = None) -> DistInfo:
    """Join the process group torchrun describes (NCCL for CUDA, gloo for CPU); a no-op for one process.
    ``timeout``: how long a collective (joining included) may wait for the slowest process (torch's default).

    A process may join, leave (``cleanup_distributed``) and join again, e.g. two searches in one script: each
    group's keys live under their own prefix of torchrun's store, so a later group never reads the addresses
    an earlier one left there (with the default prefix, joining again fails now and then).
    """
    global _JOINED
    info = env_dist_info()
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        store, _, _ = next(dist.rendezvous("env://", rank=info.rank, world_size=info.world_size,
                                           **({"timeout": timeout} if timeout is not None else {})))
        _JOINED += 1
        dist.init_process_group(backend=backend, store=dist.PrefixStore(f"squeezenas/group{_JOINED}", store),
                                rank=info.rank, world_size=info.world_size, **kwargs)
    return info


def cleanup_distributed() -> None:
    """Leave the process group, once every rank is done with it."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_dist():
        dist.barrier()


def wrap_ddp(model: nn.Module, device: torch.device, sync_bn: bool, *, ignore: Sequence[str] = (),
             find_unused: bool = False) -> nn.Module:
    """DistributedDataParallel around ``model`` (already on ``device``); SyncBatchNorm on CUDA if asked.

    SyncBatchNorm needs GPUs; on CPU every rank normalises with its own batch and ``broadcast_buffers``
    (DDP's default) hands rank 0's running statistics to all ranks at each forward. ``ignore`` names top-level
    parameters and buffers DDP leaves alone (neither averaged nor broadcast: the caller keeps them in step).
    ``find_unused``: parameters may go unused in a step (a parameter unused on every rank keeps ``grad`` None).
    """
    if not is_dist():
        return model
    if sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if ignore:  # DDP spells a top-level name both "name" and ".name" (module path "" + "." + name)
        names = [n for name in ignore for n in (name, f".{name}")]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, names)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


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


def average_(tensors: Iterable[torch.Tensor]) -> None:
    """Replace each tensor by its mean over all ranks, in place (one flattened all-reduce; a no-op alone).
    Every rank receives the same bits, so optimisers fed these tensors stay identical across ranks."""
    tensors = list(tensors)
    if not is_dist() or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def identical_everywhere(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every rank holds the same values (bit for bit, NaNs aside) in ``tensors``: two all-reduces."""
    tensors = [t.detach().reshape(-1).double() for t in tensors]
    if not is_dist() or not tensors:
        return True
    flat = torch.cat(tensors)
    low, high = flat.clone(), flat.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(torch.equal(low, high))


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (picklable) on every rank; ``obj`` itself with one process."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank; ``[obj]`` with one process."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


@contextlib.contextmanager
def on_main_process(enter: Callable[[], ContextManager[Any]], info: DistInfo) -> Iterator[None]:
    """Enter ``enter()`` (e.g. a run-folder lock) on rank 0 only; if it fails, every rank raises its error,
    so the others do not wait for a process that has stopped."""
    with contextlib.ExitStack() as stack:
        error = None
        if info.is_main:
            try:
                stack.enter_context(enter())
            except Exception as e:  # noqa: BLE001 -- handed to every rank, then raised
                error = e
        error = broadcast_object(error)
        if error is not None:
            raise error
        yield


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


class GlobalBatchShards(Sampler[list[int]]):
    """The batches of one process when ``world_size`` processes share each global batch: the indices of
    ``sampler`` cut into global batches of ``batch_size`` (an incomplete last one dropped), of which this rank
    takes the ``rank``-th of ``world_size`` equal slices.

    Every rank must draw the same order (give each the same sampler generator seed); together the ranks then
    see exactly the batches one process would see with ``BatchSampler(sampler, batch_size, drop_last=True)``.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"a global batch of {batch_size} cannot be split over {world_size} processes")
        self.sampler, self.batch_size, self.rank, self.world_size = sampler, batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        per_rank = self.batch_size // self.world_size
        batch: list[int] = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch[self.rank * per_rank:(self.rank + 1) * per_rank]
                batch = []

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size
