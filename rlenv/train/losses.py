"""The GRPO policy loss: PPO-clipped ratio, k3 KL and the four loss aggregations, as TRL defines them.

Key idea: per token ``t`` of completion ``i``, with ratio ``r = exp(logp - logp_old)`` and advantage ``A_i``::

    loss_it = -min(r * A_i, clip(r, 1 - epsilon_low, 1 + epsilon_high) * A_i) + beta * KL3_it
    KL3_it  = exp(logp_ref - logp) - (logp_ref - logp) - 1          (Schulman's k3 estimator, >= 0)

``epsilon_high > epsilon_low`` is DAPO's clip-higher. The per-token losses are then aggregated, exactly as in
TRL 1.16 ``GRPOTrainer._compute_loss`` (``m`` = completion mask, ``B`` = rows in the micro-batch, ``A`` =
gradient accumulation steps of the optimiser step, ``W`` = data-parallel ranks)::

    grpo     sum_i( sum_t loss*m / sum_t m ) / (R / W)     per-sequence mean, then mean over sequences
    bnpo     sum(loss*m) / sum(m) / A                      token mean over the micro-batch
    dr_grpo  sum(loss*m) / (R / W * max_completion_length) constant normaliser (Dr. GRPO)
    dapo     sum(loss*m) / (N / W)                         N = masked tokens of the optimiser step's batch on
                                                          all ranks: a token mean over the global batch

``R`` = rows of the optimiser step's batch on all ranks (``num_rows_in_batch``; without it, the micro-batch's
``B * A``, TRL's form). With gradients averaged over ranks (as DDP does), ``grpo`` is the exact mean of the
sequence means over the global batch, ``dr_grpo`` the sum over the global batch divided by ``R * L`` and
``dapo`` the exact token mean over the global batch, whatever the micro-batches and the rows per rank (DAPO's
dynamic sampling leaves ranks and last micro-batches with fewer rows). TRL's per-micro-batch means are the
same when every micro-batch holds the same number of rows; with a short last micro-batch they weigh its rows
more. ``bnpo`` stays a token mean per micro-batch, as in TRL.

References: PPO (Schulman et al. 2017); DAPO (Yu et al. 2025, arXiv:2503.14476) clip-higher and token-level
loss; Dr. GRPO (Liu et al. 2025, arXiv:2503.20783); k3: J. Schulman, "Approximating KL divergence" (2020);
TRL ``trl/trainer/grpo_trainer.py``.

Left out on purpose: TRL's other loss types (cispo, sapo, vespo, luspo), sequence-level importance sampling,
the two-sided ``delta`` clip and entropy masking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["LossOutput", "aggregate_loss", "clipped_surrogate", "entropy_from_logits", "grpo_loss", "k3_kl"]

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref) under samples of pi: ``exp(d) - d - 1``, ``d = ref - logp``.

    Example:
        >>> round(k3_kl(torch.tensor([0.0]), torch.tensor([-1.0])).item(), 4)
        0.3679
    """
    delta = ref_logprobs - logprobs  # (B, T)
    return torch.exp(delta) - delta - 1.0


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon_low: float,
    epsilon_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO-clipped surrogate loss (to minimise) and the importance ratio.

    Args:
        logprobs: Log-probs under the policy being trained, shape (B, T).
        old_logprobs: Log-probs under the policy that sampled the rollout, shape (B, T).
        advantages: One advantage per sequence, shape (B,), or per token, shape (B, T).
        epsilon_low: Ratios below ``1 - epsilon_low`` are clipped.
        epsilon_high: Ratios above ``1 + epsilon_high`` are clipped.

    Returns:
        ``(per_token_loss, ratio)``, both (B, T).

    Example:
        >>> loss, ratio = clipped_surrogate(torch.tensor([[0.5]]), torch.tensor([[0.0]]), torch.tensor([1.0]),
        ...                                 epsilon_low=0.2, epsilon_high=0.28)
        >>> round(loss.item(), 2), round(ratio.item(), 4)
        (-1.28, 1.6487)
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)  # (B, 1)
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)  # (B, T)
    per_token_loss = -torch.min(ratio * advantages, clipped * advantages)  # (B, T)
    return per_token_loss, ratio


def aggregate_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: LossType,
    *,
    max_completion_length: int,
    num_items_in_batch: float | torch.Tensor | None = None,
    num_rows_in_batch: float | torch.Tensor | None = None,
    accumulation_steps: int = 1,
    world_size: int = 1,
) -> torch.Tensor:
    """Reduces per-token losses of one micro-batch to the scalar to backpropagate (see module docstring).

    Args:
        per_token_loss: Shape (B, T).
        mask: 1 for tokens that count, shape (B, T).
        loss_type: ``"grpo"``, ``"bnpo"``, ``"dr_grpo"`` or ``"dapo"``.
        max_completion_length: The constant ``L`` of ``dr_grpo``.
        num_items_in_batch: For ``dapo``: masked tokens of the optimiser step's whole batch on all ranks
            (defaults to this micro-batch's, i.e. one micro-batch, one rank).
        num_rows_in_batch: For ``grpo`` and ``dr_grpo``: rows of the optimiser step's whole batch on all
            ranks (defaults to ``B * accumulation_steps * world_size``: equal micro-batches and ranks).
        accumulation_steps: Micro-batches accumulated into the optimiser step.
        world_size: Data-parallel ranks.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: For an unknown ``loss_type``.

    Example:
        >>> loss = torch.tensor([[1.0, 3.0], [2.0, 0.0]])
        >>> mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
        >>> [aggregate_loss(loss, mask, t, max_completion_length=4).item()
        ...  for t in ("grpo", "bnpo", "dr_grpo", "dapo")]
        [2.0, 2.0, 0.75, 2.0]
    """
    mask = mask.to(per_token_loss.dtype)
    masked = per_token_loss * mask  # (B, T)
    rows = (
        torch.as_tensor(float(per_token_loss.size(0) * accumulation_steps * world_size))
        if num_rows_in_batch is None
        else torch.as_tensor(num_rows_in_batch)
    ).to(per_token_loss.dtype).clamp(min=1.0) / world_size  # this rank's share of the step's rows
    if loss_type == "grpo":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / rows
    if loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1.0) / accumulation_steps
    if loss_type == "dr_grpo":
        return masked.sum() / (rows * max_completion_length)
    if loss_type == "dapo":
        total = mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
        normaliser = total.to(per_token_loss.dtype).clamp(min=1.0) / world_size
        return masked.sum() / normaliser
    raise ValueError(f"loss_type={loss_type!r} is not one of ('grpo', 'bnpo', 'dr_grpo', 'dapo')")


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position, shape (..., V) -> (...).

    Example:
        >>> round(entropy_from_logits(torch.zeros(4)).item(), 4)  # uniform over 4: log 4
        1.3863
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (..., V)
    return -(logp.exp() * logp).sum(-1)


@dataclass(frozen=True)
class LossOutput:
    """The loss of one micro-batch and its statistics (all detached except ``loss``).

    Attributes:
        loss: Scalar to backpropagate.
        policy_loss: The aggregated loss without the KL term.
        kl: Masked mean k3 KL (0 when ``beta == 0`` and no reference is given).
        clip_low: Fraction of masked tokens whose ratio hit the lower clip with a negative advantage.
        clip_high: Fraction hitting the upper clip with a positive advantage.
        clip_region: ``clip_low + clip_high``.
        ratio_mean: Masked mean importance ratio.
        tokens: Number of masked tokens.
    """

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_low: torch.Tensor
    clip_high: torch.Tensor
    clip_region: torch.Tensor
    ratio_mean: torch.Tensor
    tokens: torch.Tensor


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: LossType,
    epsilon_low: float,
    epsilon_high: float,
    max_completion_length: int,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
    num_rows_in_batch: float | torch.Tensor | None = None,
    accumulation_steps: int = 1,
    world_size: int = 1,
) -> LossOutput:
    """The full GRPO / DAPO / Dr. GRPO loss of one micro-batch.

    Args:
        logprobs: Per-token log-probs under the current policy, shape (B, T), with grad.
        old_logprobs: Per-token log-probs of the sampling policy, (B, T); None = ``logprobs.detach()``
            (ratio 1, the on-policy case ``num_iterations == 1``).
        advantages: Shape (B,).
        mask: Completion mask (B, T), 1 = token counts.
        loss_type, epsilon_low, epsilon_high, max_completion_length, num_items_in_batch, num_rows_in_batch,
            accumulation_steps, world_size: See :func:`clipped_surrogate` and :func:`aggregate_loss`.
        beta: KL coefficient; the KL term is added per token before aggregation (as TRL).
        ref_logprobs: Reference log-probs (B, T); required when ``beta > 0``.

    Returns:
        The :class:`LossOutput`.

    Raises:
        ValueError: If ``beta > 0`` and no ``ref_logprobs`` are given.

    Example:
        >>> lp = torch.zeros(2, 3, requires_grad=True)
        >>> out = grpo_loss(lp, None, torch.tensor([1.0, -1.0]), torch.ones(2, 3), loss_type="dapo",
        ...                 epsilon_low=0.2, epsilon_high=0.2, max_completion_length=3)
        >>> out.loss.item(), out.clip_region.item()
        (0.0, 0.0)
    """
    if beta > 0 and ref_logprobs is None:
        raise ValueError(f"beta={beta} > 0 needs ref_logprobs (a frozen reference policy)")
    mask = mask.to(logprobs.dtype)
    old = logprobs.detach() if old_logprobs is None else old_logprobs
    per_token_loss, ratio = clipped_surrogate(
        logprobs, old, advantages, epsilon_low=epsilon_low, epsilon_high=epsilon_high
    )  # (B, T)
    aggregate = dict(
        max_completion_length=max_completion_length,
        num_items_in_batch=num_items_in_batch,
        num_rows_in_batch=num_rows_in_batch,
        accumulation_steps=accumulation_steps,
        world_size=world_size,
    )
    policy_loss = aggregate_loss(per_token_loss, mask, loss_type, **aggregate)
    kl = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    loss = policy_loss
    if ref_logprobs is not None:
        per_token_kl = k3_kl(logprobs, ref_logprobs)  # (B, T)
        kl = _masked_mean(per_token_kl.detach(), mask)
        if beta > 0:
            loss = aggregate_loss(per_token_loss + beta * per_token_kl, mask, loss_type, **aggregate)
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # (B, 1)
    with torch.no_grad():
        low = ((ratio < 1.0 - epsilon_low) & (adv < 0)).to(mask.dtype)  # (B, T)
        high = ((ratio > 1.0 + epsilon_high) & (adv > 0)).to(mask.dtype)  # (B, T)
        stats = dict(
            clip_low=_masked_mean(low, mask),
            clip_high=_masked_mean(high, mask),
            clip_region=_masked_mean(low + high, mask),
            ratio_mean=_masked_mean(ratio.detach(), mask),
        )
    return LossOutput(
        loss=loss, policy_loss=policy_loss.detach(), kl=kl, tokens=mask.sum().detach(), **stats
    )
