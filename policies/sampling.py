"""Token sampling shared by ``policies.generate`` and ``policies.speculative``.

Key idea: one function turns raw logits into (a) the distribution actually sampled from -- temperature, then
top-k, then top-p (nucleus, Holtzman et al. 2019) truncation -- and (b) the log-probabilities reported to the
trainer, which are under ``softmax(logits / temperature)`` *before* truncation (the distribution a GRPO
trainer recomputes from its own forward; temperature 0 means greedy and reports ``softmax(logits)``).
Sampling uses the exponential race (``argmax p / E``, E ~ Exp(1)), an exact categorical sample that takes a
``torch.Generator`` and needs no host sync.
"""

from __future__ import annotations

import torch

MIN_TEMPERATURE = 1e-6
"""Smallest positive temperature accepted: below it ``logits / temperature`` can overflow fp32 (NaN
log-probs, e.g. at 1e-45), and sampling at it is greedy unless logits tie within ~1e-5. Use 0 for greedy."""


def check_sampling(temperature: float, top_p: float, top_k: int) -> None:
    """Raise ``ValueError`` for out-of-range sampling parameters (``0 < temperature < 1e-6`` included)."""
    if not temperature >= 0 or temperature == float("inf"):  # also rejects NaN
        raise ValueError(f"temperature={temperature} must be a finite number >= 0 (0 = greedy)")
    if 0 < temperature < MIN_TEMPERATURE:
        raise ValueError(
            f"temperature={temperature} is below {MIN_TEMPERATURE} (logits / temperature can overflow to "
            "NaN); use temperature=0 for greedy decoding"
        )
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1]")
    if top_k < 0:
        raise ValueError(f"top_k={top_k} must be >= 0 (0 = no top-k)")


def sampling_logprobs(
    logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the sampling distribution and of the reported (untruncated) distribution.

    Args:
        logits: (..., V) raw logits.
        temperature: Softmax temperature (0 = greedy: the sampling distribution is one-hot on the argmax).
        top_p: Keep the smallest set of most likely tokens with total probability >= top_p.
        top_k: Keep the k most likely tokens (0 = all).

    Returns:
        ``sample_logp`` (..., V) with -inf outside the kept set, and ``report_logp`` (..., V) =
        ``log_softmax(logits / max(temperature, 1 if 0))``.

    Raises:
        ValueError: ``0 < temperature < MIN_TEMPERATURE`` (see ``check_sampling``).

    Example:
        >>> s, r = sampling_logprobs(torch.tensor([2.0, 1.0, 0.0]), top_k=1)
        >>> s.exp().tolist(), round(float(r.exp().sum()), 4)
        ([1.0, 0.0, 0.0], 1.0)
    """
    if 0 < temperature < MIN_TEMPERATURE:
        check_sampling(temperature, top_p, top_k)  # raises
    logits = logits.float()
    scaled = logits / (temperature if temperature > 0 else 1.0)  # (..., V)
    report = scaled.log_softmax(dim=-1)  # (..., V)
    if temperature == 0:
        top = scaled.argmax(dim=-1, keepdim=True)  # (..., 1)
        return torch.full_like(scaled, float("-inf")).scatter_(-1, top, 0.0), report
    filtered = scaled
    if 0 < top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[..., -1:]  # (..., 1)
        filtered = filtered.masked_fill(filtered < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = filtered.sort(dim=-1, descending=True)  # (..., V)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (..., V)
        drop_sorted = (cum - sorted_logits.softmax(dim=-1)) >= top_p  # mass before this token already enough
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
        filtered = filtered.masked_fill(drop, float("-inf"))
    return filtered.log_softmax(dim=-1), report


def sample_from(logp: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One categorical sample per row of ``logp`` (..., V) by the exponential race; returns (...) long ids.

    Example:
        >>> sample_from(torch.tensor([[0.0, float("-inf")]])).tolist()
        [0]
    """
    race = torch.empty_like(logp).exponential_(generator=generator)  # (..., V)
    return (logp - race.log()).argmax(dim=-1)
