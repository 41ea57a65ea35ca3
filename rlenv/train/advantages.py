"""Group-relative advantages of GRPO and their variants.

Key idea: a prompt's G completions form a group; each completion's advantage is its reward minus the group
mean, divided by a standard deviation (``(r - mean) / (std + eps)``) so no value network is needed.

Variants (TRL's ``scale_rewards``): ``"group"`` divides by the group's std (GRPO, DeepSeekMath), ``"batch"``
by the std of the whole batch (Lite PPO), ``"none"`` does not divide (Dr. GRPO argues the std division biases
towards too easy / too hard prompts). The std is the unbiased (Bessel) one, ``eps = 1e-4`` by default, as TRL.
A reward of NaN (the completion could not be judged, or its reward worker failed) is left out of the mean and
std and gets advantage 0, as TRL does.

References: DeepSeekMath (Shao et al. 2024, arXiv:2402.03300) eq. 3; Dr. GRPO (Liu et al. 2025,
arXiv:2503.20783); TRL ``GRPOTrainer._generate_and_score_completions``.

Left out on purpose: process supervision (per-step advantages) and "normalize then sum" multi-objective
aggregation; rewards arrive already summed by the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["Advantages", "group_advantages", "nanstd"]


def nanstd(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Unbiased standard deviation ignoring NaNs (NaN when fewer than two values).

    Example:
        >>> round(nanstd(torch.tensor([1.0, float("nan"), 3.0])).item(), 4)
        1.4142
    """
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    valid = ~torch.isnan(x)
    count = valid.sum(dim=dim, keepdim=True) if dim is not None else valid.sum().reshape([1] * x.dim())
    sq = torch.where(valid, (x - mean) ** 2, torch.zeros_like(x))
    total = sq.sum(dim=dim, keepdim=True) if dim is not None else sq.sum().reshape([1] * x.dim())
    var = total / (count - 1).clamp(min=1)
    var = torch.where(count > 1, var, torch.full_like(var, float("nan")))
    std = var.sqrt()
    return std.squeeze(dim) if dim is not None else std.reshape(())


@dataclass(frozen=True)
class Advantages:
    """Advantages of a batch of groups.

    Attributes:
        advantages: One value per completion, group-major, shape (N,).
        group_mean: Mean reward of each completion's group, shape (N,).
        group_std: Std of each completion's group, shape (N,) (NaN for an unjudgeable group).
        zero_std: Per group, True when its rewards all agree (no learning signal), shape (N // G,).
    """

    advantages: torch.Tensor
    group_mean: torch.Tensor
    group_std: torch.Tensor
    zero_std: torch.Tensor


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    *,
    scale: Literal["group", "batch", "none"] = "group",
    eps: float = 1e-4,
    batch_std: torch.Tensor | None = None,
) -> Advantages:
    """Computes group-relative advantages.

    Args:
        rewards: Rewards, shape (N,), group-major (completions of one prompt are adjacent). NaN = unjudged.
        group_size: G, completions per prompt; must divide N.
        scale: ``"group"``, ``"batch"`` or ``"none"`` (see the module docstring).
        eps: Added to the std before dividing.
        batch_std: With ``scale="batch"``, the std of the *global* batch (data-parallel ranks pass the
            all-reduced value); computed from ``rewards`` when None.

    Returns:
        The :class:`Advantages`.

    Raises:
        ValueError: If ``group_size`` does not divide the number of rewards or ``scale`` is unknown.

    Example:
        >>> a = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4)
        >>> [round(v, 3) for v in a.advantages.tolist()]
        [1.5, -0.5, -0.5, -0.5]
        >>> group_advantages(torch.tensor([1.0, 0.0]), 2, scale="none").advantages.tolist()
        [0.5, -0.5]
    """
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale={scale!r} is not one of ('group', 'batch', 'none')")
    n = rewards.numel()
    if group_size < 1 or n % group_size:
        raise ValueError(f"group_size={group_size} must divide the number of rewards {n}")
    rewards = rewards.to(torch.float32)
    grouped = rewards.view(-1, group_size)  # (groups, G)
    mean = torch.nanmean(grouped, dim=1)  # (groups,)
    std = nanstd(grouped, dim=1) if group_size > 1 else torch.zeros_like(mean)  # (groups,)
    zero_std = torch.nan_to_num(std, nan=0.0) <= 1e-8  # (groups,)
    mean_rows = mean.repeat_interleave(group_size)  # (N,)
    std_rows = std.repeat_interleave(group_size)  # (N,)
    advantages = rewards - mean_rows  # (N,)
    if scale == "group":
        advantages = advantages / (std_rows + eps)
    elif scale == "batch":
        if batch_std is None:
            batch_std = nanstd(rewards) if n > 1 else torch.zeros(())
        advantages = advantages / (batch_std + eps)
    # Unjudged completions (NaN) and groups with a single judged completion carry no signal.
    advantages = torch.nan_to_num(advantages, nan=0.0)
    return Advantages(advantages=advantages, group_mean=mean_rows, group_std=std_rows, zero_std=zero_std)
