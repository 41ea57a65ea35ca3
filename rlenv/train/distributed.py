"""Data parallelism for the training stages: torchrun environment, gradient all-reduce, reductions.

Key idea: ``torchrun --nproc_per_node K rlenv train ...`` starts K processes; each samples its share of the
prompts, computes gradients on its rows, and the gradients are averaged across ranks before the optimiser step
(gloo on CPU; on GPU nccl for the gradients and gloo for the CPU scalars and objects) -- the same arithmetic
as ``DistributedDataParallel``. The all-reduce is done by hand, once per optimiser step over one flat buffer,
because MoE layers leave some experts without gradient in a step (which DDP only tolerates with
``find_unused_parameters``) and because the policy's forward returns rich outputs.

Without torchrun (no ``WORLD_SIZE`` in the environment) everything here is a no-op on one rank.

Left out on purpose: FSDP / tensor parallelism (the bundled models are small), overlapping communication with
the backward pass.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_objects",
    "all_reduce_grads",
    "barrier",
    "init_distributed",
    "rank_and_world",
    "reduce_max",
    "reduce_sum",
    "run_local_ranks",
    "sum_over_ranks",
    "zero_missing_grads",
]


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
        # GPU: nccl for the gradients, gloo for the CPU scalars (losses, token counts, flags) and objects
        backend = "cpu:gloo,cuda:nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        _bind_group_defaults_to_none()
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def zero_missing_grads(parameters: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """Gives every trainable parameter without a gradient a zero one; returns the trainable parameters."""
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return params


def all_reduce_grads(parameters: Iterable[torch.nn.Parameter], sums: Sequence[float] = ()) -> list[float]:
    """Averages gradients over ranks (parameters without a gradient count as zero).

    ``sums`` (a step's loss, a flag) ride in the same all-reduce, which saves a round trip per scalar
    all-reduce each step, and come back summed over ranks (as they are on one rank).
    """
    values = [float(v) for v in sums]
    if not _active():
        return values
    params = zero_missing_grads(parameters)
    dtype = params[0].grad.dtype if params else torch.float32
    ride = dtype in (torch.float32, torch.float64)  # lower precisions would round the sums
    device = params[0].grad.device if params else torch.device("cpu")
    extra = torch.tensor(values if ride else [], dtype=dtype, device=device)  # (S,) or (0,)
    flat = torch.cat([p.grad.reshape(-1) for p in params] + [extra])  # (P + S,)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    if ride:
        total = flat[flat.numel() - extra.numel() :].tolist()
    else:
        total = reduce_sum(torch.tensor(values, dtype=torch.float64)).tolist()
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p))
        offset += n
    return total


def reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over ranks of a tensor (returned as a new tensor)."""
    out = values.detach().clone()
    if _active():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def sum_over_ranks(buffers: Sequence[torch.Tensor]) -> None:
    """Replaces each tensor by its sum over ranks, in place, in one all-reduce (no-op on one rank)."""
    if not _active() or not buffers:
        return
    flat = torch.cat([b.reshape(-1).to(torch.float64) for b in buffers])  # (N,)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for b in buffers:
        b.copy_(flat[offset : offset + b.numel()].view_as(b))
        offset += b.numel()


def reduce_max(values: torch.Tensor) -> torch.Tensor:
    """Max over ranks of a tensor (returned as a new tensor)."""
    out = values.detach().clone()
    if _active():
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the group's size ((0, 1) outside a data-parallel group)."""
    return (dist.get_rank(), dist.get_world_size()) if _active() else (0, 1)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order (``[obj]`` outside a data-parallel group)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def run_local_ranks(fn: Callable[[Any], object], arg: Any, world_size: int, *, threads: int = 1) -> None:
    """Runs ``fn(arg)`` in ``world_size`` fresh local processes that form one gloo group, and waits for them.

    What ``torchrun --standalone`` does, from inside a program: each process gets ``RANK``, ``WORLD_SIZE``
    and a rendezvous address in its environment and ``threads`` intra-op threads, so ``fn`` (a stage such
    as :func:`rlenv.train.sft.sft`) sees the same environment as under torchrun; rank 0 is the main rank
    (checkpoints, logs, progress bars). On a small CPU, K single-threaded ranks beat one K-threaded process:
    the bundled policy's matrices are too small for intra-op threads to scale.

    Args:
        fn: A picklable (module-level) function; its return value is dropped (stage outputs are on disk).
        arg: Its argument (picklable).
        world_size: Processes to start (>= 1).
        threads: Intra-op threads per process (>= 1).

    Raises:
        ValueError: ``world_size`` or ``threads`` < 1, or already inside a process group.
        RuntimeError: A rank failed (the others are then stopped); names the ranks and exit codes.
    """
    if world_size < 1 or threads < 1:
        raise ValueError(f"world_size={world_size} and threads={threads} must be >= 1")
    if _active() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("run_local_ranks cannot start ranks from inside a data-parallel process group")
    import multiprocessing as mp
    from multiprocessing.connection import wait

    context = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools or locks
    port = _free_port()
    procs = [
        context.Process(target=_rank_main, args=(fn, arg, rank, world_size, port, threads, os.getpid()),
                        daemon=True)
        for rank in range(world_size)
    ]
    try:
        for proc in procs:
            proc.start()
        running = list(procs)
        while running:
            for sentinel in wait([p.sentinel for p in running]):
                proc = next(p for p in running if p.sentinel == sentinel)
                proc.join()
                running.remove(proc)
                if proc.exitcode != 0:
                    raise RuntimeError(
                        f"rank {procs.index(proc)} of {world_size} exited with code {proc.exitcode} "
                        "(its traceback is above); the other ranks were stopped"
                    )
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rank_main(fn: Callable[[Any], object], arg: Any, rank: int, world_size: int, port: int,
               threads: int, launcher: int) -> None:
    _die_with(launcher)
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS=str(threads),
    )
    torch.set_num_threads(threads)
    _bind_group_defaults_to_none()  # before ``fn`` forms a group, whether through init_distributed or not
    try:
        fn(arg)
    finally:
        destroy()


def _bind_group_defaults_to_none() -> None:
    """Imports ``torch.distributed.nn.functional`` while no process group exists, so ``destroy`` can free one.

    Its ten functions take ``group=group.WORLD`` as a default argument, which Python evaluates at import.
    Imported after ``init_process_group`` (``torch._dynamo`` imports it, and building a ``torch.optim``
    optimiser imports ``torch._dynamo``), they hold the default group for good: ``destroy_process_group``
    then drops only torch's own references, gloo's worker threads live on into interpreter finalisation,
    and one that releases a finished collective's tensors there takes the GIL and aborts the process
    (``std::terminate``, exit code -6, after the rank's work was written: 4 of 60 ``rlenv run --quick`` runs
    before this, core dump ``~AsyncAllgatherWork`` -> ``decref`` -> ``take_gil`` in ``Py_FinalizeEx``).
    Imported first, the defaults are ``None`` (the same group at call time). ~8 ms, once per process.
    """
    import torch.distributed.nn.functional  # noqa: F401


def _die_with(launcher: int) -> None:
    """Has the kernel send this rank SIGTERM when its launcher dies (Linux), even by SIGKILL or an OOM kill.

    Daemonic processes are stopped only when their parent exits normally: without this, ranks whose
    ``rlenv run`` was killed went on training (and holding both cores) with no one to read their results.
    Elsewhere this is a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != launcher:  # the launcher died before the request took effect
        os._exit(1)


def barrier() -> None:
    """Waits for every rank (no-op on one rank)."""
    if _active():
        dist.barrier()


def destroy() -> None:
    """Tears the process group down (no-op on one rank)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
