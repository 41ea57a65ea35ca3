"""Checkpoints that survive a kill at any moment, and an exact resume.

Key idea: a checkpoint is a directory ``RUN_DIR/checkpoints/step-00000042/`` holding the policy (``model/``,
loadable as the ``policy`` of any stage) and ``trainer.pt`` (optimizer, scheduler, python / numpy / torch RNG
states, step, data position and counters). It is written into a temporary sibling directory and renamed into
place (``os.replace`` is atomic on POSIX), then the ``latest`` pointer file is replaced the same way, so a
reader never sees a half-written checkpoint. Generation is seeded per call from the prompt index
(:func:`rlenv.train.sampling.generation_seed`), so restoring these states makes ``--resume`` continue the same
trajectory as an uninterrupted run.

Left out on purpose: sharded / asynchronous checkpointing, cloud storage.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["TrainerState", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

LATEST = "latest"


@dataclass
class TrainerState:
    """Everything besides the weights that a resume needs.

    Attributes:
        step: Completed steps.
        data_position: Next prompt / example index of the data stream.
        counters: Running totals (skipped steps, dropped groups, reward failures, ...).
    """

    step: int = 0
    data_position: int = 0
    counters: dict[str, float] = field(default_factory=dict)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_write_text(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def save_checkpoint(
    run_dir: str,
    *,
    policy: Any,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    state: TrainerState,
    keep: int = 2,
) -> str:
    """Writes a checkpoint atomically and returns its directory.

    Args:
        run_dir: The run directory (checkpoints go to ``run_dir/checkpoints``).
        policy: An object with ``save(directory)`` (a :class:`rlenv.train.policy.Policy`).
        optimizer: The optimiser (its state is saved) or None.
        scheduler: The LR scheduler or None.
        state: The :class:`TrainerState`.
        keep: Number of newest step checkpoints kept.

    Returns:
        The final checkpoint directory.
    """
    root = os.path.join(run_dir, "checkpoints")
    os.makedirs(root, exist_ok=True)
    name = f"step-{state.step:08d}"
    final = os.path.join(root, name)
    tmp = tempfile.mkdtemp(dir=root, prefix=f".{name}-")
    policy.save(os.path.join(tmp, "model"))
    payload = {
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": _rng_state(),
        "step": state.step,
        "data_position": state.data_position,
        "counters": dict(state.counters),
    }
    torch.save(payload, os.path.join(tmp, "trainer.pt"))
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    _atomic_write_text(os.path.join(root, LATEST), name)
    _prune(root, keep, current=name)
    return final


def _prune(root: str, keep: int, *, current: str) -> None:
    """Keeps the ``keep`` newest checkpoints up to ``current``; later steps are an earlier run's (a fresh run
    in a used directory) and go, so they can neither outrank this run's checkpoints nor be resumed."""
    steps = sorted(d for d in os.listdir(root) if d.startswith("step-"))
    stale = [d for d in steps if d > current]
    mine = [d for d in steps if d <= current]
    for old in stale + mine[:-keep]:
        shutil.rmtree(os.path.join(root, old), ignore_errors=True)
    for stale in (d for d in os.listdir(root) if d.startswith(".step-")):
        shutil.rmtree(os.path.join(root, stale), ignore_errors=True)


def latest_checkpoint(run_dir: str) -> str | None:
    """The newest complete checkpoint directory of a run, or None."""
    root = os.path.join(run_dir, "checkpoints")
    pointer = os.path.join(root, LATEST)
    if not os.path.exists(pointer):
        return None
    with open(pointer) as f:
        path = os.path.join(root, f.read().strip())
    return path if os.path.isdir(path) else None


def load_checkpoint(
    directory: str, *, optimizer: torch.optim.Optimizer | None, scheduler: Any, restore_rng: bool = True
) -> TrainerState:
    """Restores optimiser, scheduler and RNG states from a checkpoint (the weights are loaded with the
    policy from ``directory/model``) and returns the :class:`TrainerState`."""
    payload = torch.load(os.path.join(directory, "trainer.pt"), weights_only=False)
    if optimizer is not None and payload["optimizer"] is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload["scheduler"] is not None:
        scheduler.load_state_dict(payload["scheduler"])
    if restore_rng:
        _set_rng_state(payload["rng"])
    return TrainerState(
        step=payload["step"], data_position=payload["data_position"], counters=dict(payload["counters"])
    )
