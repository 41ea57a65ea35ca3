"""DAPO's sampling-side tricks: dynamic sampling, overlong filtering and the soft overlong punishment.

Key ideas (DAPO, Yu et al. 2025, arXiv:2503.14476, sections 3.2 and 3.4):

* Dynamic sampling: a group whose G rewards all agree (all right or all wrong) has zero advantage everywhere
  and contributes no gradient, yet it still dilutes the batch. Such groups are dropped and more prompts are
  sampled until the batch holds ``prompts_per_step`` informative groups (here: up to a cap of rounds, after
  which the step trains on what it has).
* Overlong filtering: completions cut at the length limit are masked out of the loss (their reward says
  nothing about the reasoning, only that it ran long).
* Soft overlong punishment: a length-aware penalty over the last ``buffer`` tokens before ``max_len``::

      0                                   if L <= max_len - buffer
      (max_len - buffer - L) / buffer     if max_len - buffer < L <= max_len   (times ``penalty``)
      -1                                  if L > max_len                        (times ``penalty``)

Also here: the seeds of generate calls, derived from the run seed and the first prompt index of the call, so
that rollouts do not depend on how prompts are split across data-parallel ranks or on a resume.

Left out on purpose: DAPO's "token-level loss" is a loss aggregation (:mod:`rlenv.train.losses`).
"""

from __future__ import annotations

import torch

__all__ = ["generation_seed", "informative_groups", "soft_overlong_penalty", "truncation_mask"]


def soft_overlong_penalty(length: int, max_len: int, buffer: int, penalty: float = 1.0) -> float:
    """DAPO's soft overlong punishment of a completion of ``length`` tokens (<= 0).

    Args:
        length: Completion length in tokens.
        max_len: The length limit (``max_new_tokens``).
        buffer: Width of the linear ramp before ``max_len``; 0 disables the penalty.
        penalty: The penalty at ``max_len`` and beyond.

    Returns:
        The (non-positive) reward to add.

    Example:
        >>> [soft_overlong_penalty(n, 10, 4) for n in (6, 8, 10, 11)]
        [0.0, -0.5, -1.0, -1.0]
    """
    if buffer <= 0 or length <= max_len - buffer:
        return 0.0
    if length > max_len:
        return -float(penalty)
    return (max_len - buffer - length) / buffer * penalty


def informative_groups(rewards: torch.Tensor, group_size: int, tol: float = 1e-8) -> torch.Tensor:
    """Which groups carry learning signal: their judged rewards are not all equal.

    Args:
        rewards: Group-major rewards, shape (N,), NaN = unjudged.
        group_size: G.
        tol: Spread (max - min) at or below which rewards count as equal.

    Returns:
        Boolean mask over groups, shape (N // G,).

    Example:
        >>> informative_groups(torch.tensor([1.0, 1.0, 0.0, 1.0, float("nan"), 0.0]), 2).tolist()
        [False, True, False]
    """
    grouped = rewards.view(-1, group_size)  # (groups, G)
    valid = ~torch.isnan(grouped)  # (groups, G)
    high = torch.where(valid, grouped, torch.full_like(grouped, -torch.inf)).max(dim=1).values  # (groups,)
    low = torch.where(valid, grouped, torch.full_like(grouped, torch.inf)).min(dim=1).values  # (groups,)
    return (valid.sum(dim=1) >= 2) & (high - low > tol)


def truncation_mask(finished: list[bool], mask_truncated: bool) -> torch.Tensor:
    """Per-row loss weight: 0 for truncated completions when overlong filtering is on, else 1.

    Example:
        >>> truncation_mask([True, False], True).tolist()
        [1.0, 0.0]
    """
    if not mask_truncated:
        return torch.ones(len(finished))
    return torch.tensor([1.0 if done else 0.0 for done in finished])


def generation_seed(seed: int, prompt_index: int, round_: int = 0) -> int:
    """Seed of the generate call whose first prompt has index ``prompt_index`` (stable across ranks/resumes).

    Example:
        >>> generation_seed(0, 5) != generation_seed(1, 5)
        True
    """
    return (seed * 1_000_003 + prompt_index * 7_919 + round_) % (2**63 - 1)
