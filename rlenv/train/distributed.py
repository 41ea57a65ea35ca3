"""Data parallelism for the training stages: torchrun environment, gradient all-reduce, reductions.

Key idea: ``torchrun --nproc_per_node K rlenv train ...`` starts K processes; each samples its share of the
prompts, computes gradients on its rows, and the gradients are averaged across ranks before the optimiser step
(gloo on CPU, nccl on GPU) -- the same arithmetic as ``DistributedDataParallel``. The all-reduce is done
by hand, once per optimiser step over one flat buffer, because MoE layers leave some experts without gradient
in a step (which DDP only tolerates with ``find_unused_parameters``) and because the policy's forward returns
rich outputs.

Without torchrun (no ``WORLD_SIZE`` in the environment) everything here is a no-op on one rank.

Left out on purpose: FSDP / tensor parallelism (the bundled models are small), overlapping communication with
the backward pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_reduce_grads", "barrier", "init_distributed", "reduce_max", "reduce_sum"]


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and local rank of this process (0, 1, 0 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Initialises the process group when launched by torchrun (``WORLD_SIZE`` > 1), else does nothing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_grads(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Averages gradients over ranks (parameters without a gradient count as zero)."""
    if not _active():
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])  # (P,)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p))
        offset += n


def reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over ranks of a tensor (returned as a new tensor)."""
    out = values.detach().clone()
    if _active():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def reduce_max(values: torch.Tensor) -> torch.Tensor:
    """Max over ranks of a tensor (returned as a new tensor)."""
    out = values.detach().clone()
    if _active():
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def barrier() -> None:
    """Waits for every rank (no-op on one rank)."""
    if _active():
        dist.barrier()


def destroy() -> None:
    """Tears the process group down (no-op on one rank)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
