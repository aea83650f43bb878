"""The search on several processes (torchrun): the supernet's weights under DistributedDataParallel, θ kept
identical on every rank, the global batch shared out, and the seeds of each rank's random draws.

One process is the special case N = 1 and runs exactly the single-process search (same draws, same results).
Under N processes (``cfg.batch_size`` is the global batch, B/N images per rank):

- weights: DDP averages their gradients (SyncBatchNorm on CUDA with ``sync_bn``); it is rebuilt over the
  surviving weights after pruning, as the SGD is.
- θ (and θ_cost): kept out of DDP; their gradients are averaged over the ranks by one all-reduce before Adam
  steps, so every rank runs the same Adam on the same bits and holds the same θ. Pruning and the target
  projection are then computed from identical state on every rank (no broadcast needed); a check at the end
  of every epoch raises if θ or the alive mask ever differ.
- data: every rank draws the same shuffled order (the loader generator's seed depends on (seed, epoch) only)
  and takes its slice of each global batch, so the ranks together see the batches one process would see.
- noise: each rank's global generator (augmentation with ``workers`` 0, and the mixture's per-sample Gumbel
  noise) is seeded from (seed, epoch, rank): independent across ranks and samples, reproducible, and rank 0's
  is the single-process seed. The path mode draws one path per global step from a generator seeded from
  (seed, epoch) alone, so every rank runs the same network (SyncBatchNorm needs it, and it is what one
  process does with the whole batch).
"""

from __future__ import annotations

import functools
import hashlib
import random
import warnings
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from squeezenas.engine.distributed import (
    DistInfo, GlobalBatchShards, average_, broadcast_buffers, identical_everywhere, wrap_ddp,
)
from squeezenas.engine.loaders import epoch_seed, set_epoch
from squeezenas.supernet.supernet import ARCH_NAMES


def mix_seed(*parts: Any) -> int:
    """A 63-bit seed hashed from ``parts``: streams with different parts are unrelated (torch's CPU generator
    reads only a seed's low 32 bits, so offsets such as seed + rank·2^40 would repeat one stream)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**63


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of rank ``rank``'s global generator in ``epoch``; rank 0's is the single-process one."""
    base = epoch_seed(seed, epoch)
    return base if rank == 0 else mix_seed("rank", base, rank)


def _rank_worker_seed(rank: int, worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: the loader's worker seeds are the same on every rank (its generator is
    shared), so each rank's workers are reseeded apart."""
    s = mix_seed("worker", torch.initial_seed(), rank)
    torch.manual_seed(s)
    random.seed(s)


class Replicas:
    """The search's view of its processes: which module a step runs forward on, how θ and the data are kept
    in step, and what every rank agrees on at the end of an epoch. With one process every method is the
    single-process behaviour."""

    def __init__(self, info: DistInfo, device: torch.device, supernet: str = "mixture", sync_bn: bool = True):
        self.info, self.device, self.supernet, self.sync_bn = info, device, supernet, sync_bn
        self.model: nn.Module | None = None  # the DDP wrapper (or the supernet itself with one process)
        self.path_noise = torch.Generator() if info.distributed and supernet == "path" else None

    @property
    def distributed(self) -> bool:
        return self.info.distributed

    def prepare(self, net: nn.Module) -> nn.Module:
        """The supernet ready for its optimisers: BatchNorms made SyncBatchNorm on CUDA under torchrun (before
        any optimiser holds the parameters; the parameters themselves are kept)."""
        if self.distributed and self.sync_bn and self.device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return net

    def wrap(self, net: nn.Module) -> None:
        """(Re)build the DDP wrapper over ``net``'s current weights (at the start, after restoring, after pruning)."""
        if not self.distributed:
            self.model = net
            return
        self.model = None  # the old wrapper's gradient hooks go with it
        # the compiled CPU depthwise gradient comes back contiguous for a channels-last weight of shape
        # (C, 1, k, k): the same bytes, strides that differ only on the size-1 dimension, which DDP reports
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        self.model = wrap_ddp(net, self.device, sync_bn=False, ignore=(*ARCH_NAMES, "alive"),
                              find_unused=self.supernet == "path")  # a path leaves the other candidates unused

    def average_theta_grads(self, net: Any) -> None:
        """θ's gradients averaged over the ranks (call between backward and Adam's step)."""
        if self.distributed:
            average_([p.grad for p in net.arch_parameters() if p.grad is not None])

    def seed_epoch(self, loader: DataLoader, epoch: int, seed: int) -> None:
        """Reseed the order (the same on every rank), the rank's own draws and the shared path noise."""
        if not self.distributed:
            set_epoch(loader, epoch, seed)
            return
        loader.generator.manual_seed(epoch_seed(seed, epoch))
        torch.manual_seed(rank_seed(seed, epoch, self.info.rank))
        if self.path_noise is not None:
            self.path_noise.manual_seed(mix_seed("path", seed, epoch))

    def shard(self, loader: DataLoader, batch_size: int) -> DataLoader:
        """This rank's slices of ``loader``'s global batches (``loader`` itself with one process)."""
        if not self.distributed:
            return loader
        world = self.info.world_size
        return DataLoader(loader.dataset, batch_sampler=GlobalBatchShards(loader.sampler, batch_size, self.info.rank,
                                                                          world),
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                          generator=loader.generator, worker_init_fn=functools.partial(_rank_worker_seed, self.info.rank))

    def end_epoch(self, net: Any, sums: dict[str, float]) -> dict[str, float]:
        """Every rank takes rank 0's BatchNorm statistics (those the checkpoint holds), θ and the alive mask are
        checked to be identical everywhere, and the epoch's loss sums are averaged over the ranks."""
        if not self.distributed:
            return sums
        broadcast_buffers(net)
        if not identical_everywhere([*(p.data for p in net.arch_parameters()), net.alive]):
            raise RuntimeError("θ or the alive mask differ between the processes of the search; report this bug")
        values = torch.tensor(list(sums.values()), dtype=torch.float64, device=self.device)
        average_([values])
        return dict(zip(sums, values.tolist()))
