"""One GRPO update: advantages, micro-batched clipped loss with KL, gradient all-reduce, guarded step.

Key idea: a rollout batch is turned into ``num_iterations`` optimiser updates. Each update accumulates the
loss of ``ceil(rows / micro_batch_size)`` micro-batches (normalised as :mod:`rlenv.train.losses` describes,
with the DAPO token count taken over the whole batch on all ranks), all-reduces the gradients, clips them and
applies them unless a loss or the gradient norm is NaN/inf -- then the update is skipped and counted.

Old log-probs: with ``num_iterations == 1`` the ratio is exactly 1 (``logp.detach()``, as TRL); with more, the
sampler's own log-probs (``old_logprobs="rollout"``) or a fresh no-grad forward before the first update
(``"recompute"``). The reference policy (``beta > 0``) is scored once per batch under ``no_grad``.

Left out on purpose: sequence packing, liger-style fused log-prob kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from rlenv.train.advantages import group_advantages, nanstd
from rlenv.train.config import GRPOConfig
from rlenv.train.distributed import DistInfo, all_reduce_grads, reduce_max, reduce_sum, zero_missing_grads
from rlenv.train.losses import grpo_loss
from rlenv.train.optim import optimizer_step
from rlenv.train.policy import Policy
from rlenv.train.rollout import RolloutBatch

__all__ = ["compute_advantages", "grpo_update"]


def compute_advantages(batch: RolloutBatch, config: GRPOConfig) -> torch.Tensor:
    """Group-relative advantages of a batch; the batch-level std is taken over all ranks."""
    batch_std = None
    if config.scale_rewards == "batch":
        # float64: E[x^2] - E[x]^2 in float32 loses a small spread around a large mean (100 +- 0.01 -> 0)
        valid = batch.rewards[~torch.isnan(batch.rewards)].double()  # (n,)
        n_valid = torch.tensor(float(valid.numel()), dtype=torch.float64)
        sums = reduce_sum(torch.stack([valid.sum(), (valid**2).sum(), n_valid]))
        count = float(sums[2])
        if count > 1:
            mean = sums[0] / count
            batch_std = ((sums[1] / count - mean**2).clamp(min=0) * count / (count - 1)).sqrt().float()
        else:
            batch_std = nanstd(batch.rewards) if batch.rewards.numel() > 1 else torch.zeros(())
    out = group_advantages(
        batch.rewards, config.num_generations, scale=config.scale_rewards, eps=config.advantage_eps,
        batch_std=batch_std,
    )
    return out.advantages


def _padded(rows: Sequence[Sequence[float]], device: torch.device) -> torch.Tensor:
    width = max(1, max((len(r) for r in rows), default=1))
    return torch.tensor([list(r) + [0.0] * (width - len(r)) for r in rows], device=device)  # (B, C)


class _Stats:
    """Token-weighted running means of the loss statistics of one update."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.tokens = 0.0
        self.policy_loss = 0.0

    def add(self, values: dict[str, float], tokens: float, policy_loss: float) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * tokens
        self.tokens += tokens
        self.policy_loss += policy_loss

    def means(self) -> dict[str, float]:
        return {k: v / max(self.tokens, 1.0) for k, v in self.sums.items()}


def _micro_batches(rows: Sequence[int], size: int) -> list[Sequence[int]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _trained_rows(advantages: torch.Tensor, weights: torch.Tensor, config: GRPOConfig) -> list[int]:
    """Rows whose loss can have a gradient: all of them, unless ``skip_zero_advantage`` applies (dapo's
    global token normaliser, no KL, no balance loss): then rows with a zero advantage or weight are out."""
    if not config.skip_zero_advantage or config.loss_type != "dapo" or config.beta or config.aux_loss_coef:
        return list(range(advantages.numel()))
    return torch.nonzero((advantages != 0) & (weights != 0)).flatten().tolist()


def _reference_logprobs(
    ref: Policy | None, batch: RolloutBatch, micros: list[Sequence[int]], config: GRPOConfig, autocast: Any
) -> list[torch.Tensor | None]:
    if ref is None:
        return [None] * len(micros)
    out = []
    with torch.no_grad(), autocast():
        for rows in micros:
            sub = batch.rollouts.select(list(rows))
            routing = sub.routing if config.routing_replay else None
            out.append(ref.score(sub.prompt_ids, sub.completion_ids, routing, temperature=config.temperature)
                       .logprobs.float())
    return out


def _old_logprobs(
    policy: Policy, batch: RolloutBatch, micros: list[Sequence[int]], config: GRPOConfig, autocast: Any
) -> list[torch.Tensor | None]:
    if config.num_iterations == 1:
        return [None] * len(micros)
    out: list[torch.Tensor | None] = []
    for rows in micros:
        sub = batch.rollouts.select(list(rows))
        if config.old_logprobs == "rollout":
            out.append(_padded(sub.logprobs, policy.device))
            continue
        with torch.no_grad(), autocast():
            routing = sub.routing if config.routing_replay else None
            score = policy.score(sub.prompt_ids, sub.completion_ids, routing, temperature=config.temperature)
        out.append(score.logprobs.float())
    return out


def grpo_update(
    policy: Policy,
    ref: Policy | None,
    batch: RolloutBatch,
    config: GRPOConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    dist: DistInfo,
    autocast: Any,
) -> dict[str, float]:
    """Applies ``num_iterations`` optimiser updates on one rollout batch and returns their metrics.

    Args:
        policy: The policy being trained.
        ref: The frozen reference policy (``beta > 0``) or None.
        batch: This rank's rollouts.
        config: The GRPO config.
        optimizer, scheduler: AdamW and its schedule.
        dist: Rank information.
        autocast: A zero-argument callable returning the mixed-precision context.

    Returns:
        Metrics (``loss/*``, ``policy/*``, ``adv/*``, ``optim/*``, ``train/skipped_updates``).
    """
    rows = len(batch.rollouts)
    if float(reduce_max(torch.tensor(float(rows)))) == 0:
        return {"train/skipped_updates": float(config.num_iterations), "train/empty_batch": 1.0}
    advantages = compute_advantages(batch, config).to(policy.device)  # (N,)
    weights = batch.loss_weight.to(policy.device)  # (N,)
    lengths = torch.tensor([len(c) for c in batch.rollouts.completion_ids], dtype=torch.float32)
    # the step's masked tokens and rows on all ranks: the normalisers of dapo and of grpo / dr_grpo
    totals = torch.stack([(lengths * batch.loss_weight).sum(), torch.tensor(float(rows))])  # (2,)
    num_items, num_rows = reduce_sum(totals)
    micros = _micro_batches(_trained_rows(advantages, weights, config), config.micro_batch_size)
    refs = _reference_logprobs(ref, batch, micros, config, autocast)
    olds = _old_logprobs(policy, batch, micros, config, autocast)
    metrics: dict[str, float] = {"optim/lr": optimizer.param_groups[0]["lr"]}  # before the scheduler steps
    skipped = 0
    for _ in range(config.num_iterations):
        stats, finite = _Stats(), True
        for rows_, ref_lp, old_lp in zip(micros, refs, olds, strict=True):
            finite &= _micro_step(policy, batch, rows_, advantages, weights, ref_lp, old_lp, config,
                                  (num_items, num_rows), len(micros), dist, stats, autocast)
        zero_missing_grads(policy.module.parameters())  # untouched parameters step as on any DDP rank
        all_finite = all_reduce_grads(policy.module.parameters(), sums=(float(not finite),))[0] == 0.0
        result = optimizer_step(
            policy.module, optimizer, scheduler, config.max_grad_norm, loss_finite=all_finite
        )
        skipped += int(result.skipped)
        if not result.skipped:
            metrics.update(policy.after_optimizer_step())
        metrics.update({f"policy/{k}": v for k, v in stats.means().items()})
        metrics.update({"loss/policy": stats.policy_loss, "optim/grad_norm": result.grad_norm})
    metrics["train/skipped_updates"] = float(skipped)
    metrics["loss/kl"] = metrics.get("policy/kl", 0.0)
    adv = advantages.detach().cpu()
    if adv.numel():  # a rank can hold no rows (fewer prompts than ranks, or none kept by dynamic sampling)
        metrics.update({"adv/mean": float(adv.mean()), "adv/std": float(adv.std(unbiased=False)),
                        "adv/abs_max": float(adv.abs().max())})
    return metrics


def _micro_step(
    policy: Policy,
    batch: RolloutBatch,
    rows: Sequence[int],
    advantages: torch.Tensor,
    weights: torch.Tensor,
    ref_lp: torch.Tensor | None,
    old_lp: torch.Tensor | None,
    config: GRPOConfig,
    totals: tuple[torch.Tensor, torch.Tensor],
    accumulation: int,
    dist: DistInfo,
    stats: _Stats,
    autocast: Any,
) -> bool:
    """Forward + backward of one micro-batch; returns False (and does not backpropagate) on a NaN/inf loss."""
    sub = batch.rollouts.select(list(rows))
    index = torch.tensor(list(rows), device=policy.device)
    with autocast():
        routing = sub.routing if config.routing_replay else None
        score = policy.score(sub.prompt_ids, sub.completion_ids, routing, temperature=config.temperature,
                             entropy=True)
    mask = score.mask * weights[index].unsqueeze(1)  # (B, C)
    out = grpo_loss(
        score.logprobs.float(), old_lp, advantages[index], mask,
        loss_type=config.loss_type, epsilon_low=config.epsilon_low, epsilon_high=config.epsilon_high,
        max_completion_length=config.max_new_tokens, beta=config.beta, ref_logprobs=ref_lp,
        num_items_in_batch=totals[0], num_rows_in_batch=totals[1], accumulation_steps=accumulation,
        world_size=dist.world_size,
    )
    loss = out.loss + config.aux_loss_coef * score.aux_loss.float() / accumulation
    if not math.isfinite(float(loss.detach())):
        return False
    loss.backward()
    entropy = 0.0
    if score.entropy is not None:
        entropy = float((score.entropy * mask).sum() / mask.sum().clamp(min=1.0))
    values = {"clip_low": float(out.clip_low), "clip_high": float(out.clip_high),
              "clip_region": float(out.clip_region), "ratio": float(out.ratio_mean), "kl": float(out.kl),
              "entropy": entropy, "aux_loss": float(score.aux_loss.detach())}
    stats.add(values, float(out.tokens), float(out.policy_loss))
    return True
