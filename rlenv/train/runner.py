"""What every training stage does around its loop: device, ranks, seeding, policy, optimiser, resume, logging.

Key idea: ``start_run(config, total_updates)`` returns a :class:`Run` holding the policy, AdamW, the warmup +
cosine schedule, the metrics logger and the :class:`~rlenv.train.checkpoint.TrainerState` -- restored from the
latest checkpoint when ``config.resume`` -- so that the GRPO, pretraining and SFT loops only write their step.

Seeding happens once, here, with the same seed on every rank (identical initial weights everywhere); anything
random afterwards (rollout sampling, data order) is seeded from the step or data position, which makes
``--resume`` and data parallelism reproducible.

Left out on purpose: experiment trackers besides JSONL / TensorBoard.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from rlenv.train.checkpoint import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint
from rlenv.train.config import OptimConfig, StageResult
from rlenv.train.distributed import DistInfo, barrier, init_distributed
from rlenv.train.metrics import MetricsLogger
from rlenv.train.optim import (
    autocast,
    build_optimizer,
    build_scheduler,
    maybe_fp8,
    resolve_device,
    seed_everything,
    width_multiple,
)
from rlenv.train.policy import Policy, load_policy

__all__ = ["Run", "start_run"]


@dataclass
class Run:
    """A training run in progress (see :func:`start_run`)."""

    config: OptimConfig
    device: torch.device
    dist: DistInfo
    policy: Policy
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    logger: MetricsLogger
    state: TrainerState
    resumed_from: str | None = None
    checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def autocast(self) -> Any:
        """The mixed-precision context of forward passes."""
        return autocast(self.config.precision, self.device)

    @property
    def width_multiple(self) -> int:
        """What padded batch widths are rounded up to (see ``optim.width_multiple``)."""
        return width_multiple(self.config.precision, self.device)

    def save(self) -> str | None:
        """Writes a checkpoint (main rank only) and returns its directory."""
        if self.dist.is_main:
            self.checkpoint = save_checkpoint(
                self.config.run_dir,
                policy=self.policy,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                state=self.state,
                keep=self.config.keep_checkpoints,
            )
        barrier()
        if not self.dist.is_main:
            self.checkpoint = latest_checkpoint(self.config.run_dir)
        return self.checkpoint

    def running(self) -> bool:
        """Whether another step is due: ``steps`` not reached, nor ``stop_after`` (a resumed run that was
        stopped there does not train one more step)."""
        step, stop_after = self.state.step, self.config.stop_after
        return step < self.config.steps and not (stop_after and step >= stop_after)

    def after_step(self) -> bool:
        """Checkpoints on schedule; returns True when the loop must stop now (``stop_after`` reached)."""
        step = self.state.step
        stop = bool(self.config.stop_after) and step >= self.config.stop_after
        if stop or (self.config.save_every and step % self.config.save_every == 0):
            self.save()
        return stop

    def progress(self, desc: str) -> Any:
        """A tqdm bar over the remaining steps (a no-op object when disabled or on non-main ranks)."""
        from tqdm.auto import tqdm

        disable = not (self.config.progress and self.dist.is_main)
        total, initial = self.config.steps, self.state.step
        return tqdm(total=total, initial=initial, desc=desc, disable=disable, dynamic_ncols=True)

    def finish(self) -> StageResult:
        """Writes the final checkpoint (unless the last step just wrote it) and closes the logger."""
        if self.checkpoint is None or not self.checkpoint.endswith(f"step-{self.state.step:08d}"):
            self.save()
        self.logger.close()
        return StageResult(
            run_dir=self.config.run_dir,
            checkpoint=self.checkpoint,
            metrics=dict(self.logger.last),
            steps=self.state.step,
        )


def _write_config(config: OptimConfig) -> None:
    os.makedirs(config.run_dir, exist_ok=True)
    with open(os.path.join(config.run_dir, "config.json"), "w") as f:
        json.dump({"class": type(config).__name__, **dataclasses.asdict(config)}, f, indent=2)


def start_run(config: OptimConfig, *, total_updates: int, policy_spec: str | None = None) -> Run:
    """Sets a stage up: device, ranks, seed, policy (fresh or resumed), optimiser, schedule, logger.

    Args:
        config: The stage config.
        total_updates: Optimiser updates of the whole run (the schedule's horizon).
        policy_spec: Policy to start from (defaults to ``config.policy``); ignored when resuming.

    Returns:
        The :class:`Run`.
    """
    device = resolve_device(config.device)
    dist = init_distributed(device.type)
    seed_everything(config.seed)
    resume = latest_checkpoint(config.run_dir) if config.resume else None
    policy = load_policy(resume or policy_spec or config.policy, device=device, seed=config.seed)
    policy.module = maybe_fp8(policy.module, config.fp8).to(device)
    policy.module.train()
    optimizer = build_optimizer(policy.module, config)
    scheduler = build_scheduler(optimizer, config, total_updates)
    state = TrainerState()
    if resume is not None:
        state = load_checkpoint(resume, optimizer=optimizer, scheduler=scheduler)
    if dist.is_main:
        _write_config(config)
    logger = MetricsLogger(
        config.run_dir,
        enabled=dist.is_main,
        tensorboard=config.tensorboard,
        resume_step=state.step if resume is not None else None,
    )
    return Run(
        config=config,
        device=device,
        dist=dist,
        policy=policy,
        optimizer=optimizer,
        scheduler=scheduler,
        logger=logger,
        state=state,
        resumed_from=resume,
        checkpoint=resume,
    )
