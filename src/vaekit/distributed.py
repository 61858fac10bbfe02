"""Data-parallel training on torch.distributed: DistributedDataParallel over gloo (CPU) or nccl (CUDA).

``fit`` uses this when a process group is initialised, or when ``torchrun`` has set the environment
(``WORLD_SIZE`` > 1, ``RANK``, ``MASTER_ADDR``): every rank holds a replica, takes its slice of the
same shuffled order each epoch, gradients are averaged by DDP, metrics are summed across ranks, and
only rank 0 writes files or shows progress.

    torchrun --nproc_per_node=2 -m vaekit train digits --out runs/ddp
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist


def env_world_size() -> int:
    """The world size torchrun announced in the environment (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_by_torchrun() -> bool:
    return env_world_size() > 1 and "RANK" in os.environ and "MASTER_ADDR" in os.environ


def setup(device: torch.device | None = None) -> bool:
    """Initialise the process group from torchrun's environment if needed; True when distributed.

    The backend is nccl for CUDA devices and gloo otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if not (dist.is_available() and launched_by_torchrun()):
        return False
    cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the one process that writes files and logs (rank 0, or the only process)."""
    return rank() == 0 if is_distributed() else int(os.environ.get("RANK", "0")) == 0


def rank_device(device: torch.device) -> torch.device:
    """Under torchrun each rank drives its own GPU: cuda -> cuda:LOCAL_RANK."""
    if device.type == "cuda" and device.index is None and (is_distributed() or launched_by_torchrun()):
        return torch.device("cuda", local_rank())
    return device


def shard(perm: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, int]:
    """This rank's slice of a permutation shared by all ranks, and its per-rank batch size.

    ``batch_size`` is the global batch, so one optimiser step sees the same number of examples as
    in a single process. The permutation is padded by wrapping around (as DistributedSampler does)
    so that every rank runs the same number of steps, which DDP requires."""
    world = world_size()
    if world == 1:
        return perm, batch_size
    local_batch = max(1, batch_size // world)
    steps = -(-len(perm) // (local_batch * world))  # ceil
    total = steps * local_batch * world
    if total > len(perm):
        perm = torch.cat([perm, perm.repeat(-(-total // len(perm)))[: total - len(perm)]])
    r = rank()
    # step s takes perm[s*B*W : (s+1)*B*W]; rank r takes its B-wide part of that global batch
    mine = perm.view(steps, world, local_batch)[:, r].reshape(-1)
    return mine, local_batch


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (identity in one process)."""
    if not is_distributed():
        return t
    comm = torch.device("cpu") if dist.get_backend() == "gloo" else torch.device("cuda", torch.cuda.current_device())
    out = t.to(comm, copy=True)  # gloo reduces CPU tensors, nccl CUDA tensors
    dist.all_reduce(out)
    return out.to(t.device)


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision, on every rank (e.g. a callback's "stop")."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device="cpu" if dist.get_backend() == "gloo" else device)
    dist.broadcast(t, 0)
    return bool(t.item())


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model under DistributedDataParallel (parameters broadcast from rank 0), or as is.

    Every trainable parameter must take part in the loss (DDP's default; true of vaekit's models)."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


__all__ = [
    "all_sum",
    "broadcast_flag",
    "is_distributed",
    "is_main",
    "rank",
    "setup",
    "shard",
    "unwrap",
    "world_size",
    "wrap",
]

