"""Data-parallel training over processes started by ``torchrun`` (NCCL on GPUs, gloo on CPU).

    torchrun --nproc_per_node 2 -m vaegan_lite train --model vaegan --steps 1000 --out runs/ddp

Why not DistributedDataParallel's wrapper: its gradient all-reduce runs from hooks that fire when
``.backward()`` accumulates into ``.grad``. Algorithm 1 takes each network's gradient of its own
loss with ``torch.autograd.grad`` (models.grads), which never touches ``.grad``, so those hooks
would never fire. Instead every gradient list is averaged over the processes right before it is
applied (models.vaegan.set_grads calls ``average``), which is what DDP does, done by hand:

- the global batch of ``batch_size`` images is split, each process takes its slice
  (``shard``), so a run on K processes sees the same images per step as a run on one;
- each process draws its own noise (eps, z_p) and normalises its slice with its own BatchNorm
  statistics (as DDP without SyncBatchNorm); the running statistics are process 0's, broadcast
  before every step like DDP's ``broadcast_buffers``;
- decisions that skip work (a non-finite loss, the authors' equilibrium trick) are made on
  values reduced over all processes, so every process takes the same branch (``all_of`` keeps
  the non-finite one on the GPU);
- process 0 alone writes checkpoints, config.json and samples; a checkpoint holds every
  process's RNG state, so resuming with the same number of processes is exact.

Outside torchrun (no WORLD_SIZE in the environment) everything here is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def enabled() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the group (0 outside one)."""
    return dist.get_rank() if enabled() else 0


def world_size() -> int:
    """How many processes train together (1 outside a group)."""
    return dist.get_world_size() if enabled() else 1


def is_main() -> bool:
    """True in the process that writes and reports (rank 0; the only one outside a group)."""
    return rank() == 0


def launched() -> bool:
    """Started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> torch.device:
    """Join torchrun's process group (once); returns the device this process should use."""
    if not launched() or not dist.is_available():
        return device
    if device.type == "cuda":  # one GPU per process
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    """Leave the process group, if one was joined (torch warns at exit otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(t: torch.Tensor) -> torch.Tensor:
    """This process's slice of a global batch (dim 0 must divide by the number of processes)."""
    if not enabled():
        return t
    n, k = t.shape[0], world_size()
    if n % k:
        raise ValueError(f"batch size {n} does not divide by the {k} processes")
    return t.chunk(k)[rank()]


def average(gs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mean of a gradient list over all processes: one all-reduce of one flat buffer."""
    if not enabled() or not gs:
        return gs
    flat = torch.cat([g.reshape(-1).float() for g in gs])
    dist.all_reduce(flat)
    flat /= world_size()
    out, i = [], 0
    for g in gs:
        out.append(flat[i : i + g.numel()].view_as(g).to(g.dtype))
        i += g.numel()
    return out


def mean(t: torch.Tensor) -> torch.Tensor:
    """A statistic averaged over all processes (equal slices: the global batch's mean)."""
    if not enabled():
        return t
    v = t.detach().to(_device(), torch.float64 if t.dtype == torch.float64 else torch.float32)
    dist.all_reduce(v)
    return (v / world_size()).to(t.device)


def all_of(flag: torch.Tensor) -> torch.Tensor:
    """A bool tensor, True only where it is True on every process (no host sync)."""
    if not enabled():
        return flag
    bad = (~flag).to(_device(), torch.float32).reshape(1)
    dist.all_reduce(bad)
    return (bad[0] == 0).to(flag.device)


def all_true(flag: bool) -> bool:
    """True only if ``flag`` is True on every process."""
    if not enabled():
        return flag
    return bool(all_of(torch.tensor(flag, device=_device())))  # a host read: a sync


def broadcast_buffers(model: nn.Module) -> None:
    """Process 0's BatchNorm running statistics to every process (DDP's broadcast_buffers)."""
    if not enabled():
        return
    bufs = [b for b in model.buffers() if b.is_floating_point()]
    if bufs:
        flat = torch.cat([b.reshape(-1) for b in bufs])
        dist.broadcast(flat, 0)
        for b, v in zip(bufs, torch._utils._unflatten_dense_tensors(flat, bufs), strict=True):
            b.copy_(v)


def gather(obj: object) -> list[object]:
    """Every process's ``obj`` (e.g. its RNG state), in rank order."""
    if not enabled():
        return [obj]
    out: list[object] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def check_in_sync(model: nn.Module) -> None:
    """Raise if the processes' weights have drifted apart (they must stay identical)."""
    if not enabled():
        return
    with torch.no_grad():
        s = torch.stack([p.double().sum() for p in model.parameters()]).to(_device())
    lo, hi = s.clone(), s.clone()
    dist.all_reduce(lo, dist.ReduceOp.MIN)
    dist.all_reduce(hi, dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise RuntimeError("data-parallel processes hold different weights (not averaged?)")


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for outside a group)."""
    if enabled():
        dist.barrier()


def _device() -> torch.device:
    """Where collectives of small tensors live: NCCL needs them on the GPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
