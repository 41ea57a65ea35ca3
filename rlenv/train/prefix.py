"""Shared-prompt scoring for the bundled policy: a GRPO group's prompt is computed once.

Key idea: the G completions of a group share one prompt, and prompts (templates + question) are usually far
longer than completions. Under causal attention the prompt's hidden states do not depend on what follows, so

* generation (``policies.generate(..., num_samples=G)``) prefills each distinct prompt once into the latent
  KV cache and copies the cache rows G times (``KVCache.select`` with repeated indices) before decoding --
  vLLM's prefix caching, in miniature;
* the training forward runs each distinct prompt once *with gradients*, expands its cache rows to the group,
  and runs only the completion tokens on top. Autograd flows through the cache writes and the row
  expansion, so the log-probs and gradients equal those of the full per-row forward (checked in
  ``tests/train/test_prefix.py``), at a cost of ``P + G * C`` tokens instead of ``G * (P + C)``.

The token-level work is the bundled model's own forward with its ``cache`` argument; only the batching
differs. The sequence-wise MoE balance loss is computed per forward call here (prompt and completions
separately), a slight difference from the full forward that only matters with ``aux_loss_coef > 0``.

On a CPU, ``BundledPolicy.score`` prefers whole right-padded rows (fused causal attention) unless they would
be more than twice the tokens of the shared-prompt forward (long prompts, short completions).

References: Kwon et al. 2023 (vLLM, PagedAttention, prefix sharing); DeepSeek-V2/V3 MLA latent cache.

Left out on purpose: sharing across groups (radix trees), the HF back-end (its caches differ per model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["group_runs", "shared_prefix_logits"]


def group_runs(prompt_ids: Sequence[Sequence[int]]) -> tuple[list[int], torch.Tensor]:
    """Starts of runs of identical consecutive prompts, and each row's run index.

    Example:
        >>> starts, expand = group_runs([[1], [1], [2], [1]])
        >>> starts, expand.tolist()
        ([0, 2, 3], [0, 0, 1, 2])
    """
    starts, expand = [], []
    for i, ids in enumerate(prompt_ids):
        if not starts or list(prompt_ids[starts[-1]]) != list(ids):
            starts.append(i)
        expand.append(len(starts) - 1)
    return starts, torch.tensor(expand, dtype=torch.long)


def _split_routing(
    routing: Sequence[torch.Tensor], starts: list[int], prompt_lens: list[int], width_p: int, width_c: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-row routing (L, len_p + len_c, k) -> per layer (U, P, k) for prompts, (B, C, k) for completions."""
    layers, _, k = routing[0].shape
    prompt = torch.full((layers, len(starts), width_p, k), -1, dtype=torch.long)  # (L, U, P, k)
    completion = torch.full((layers, len(routing), width_c, k), -1, dtype=torch.long)  # (L, B, C, k)
    for u, row in enumerate(starts):
        n = prompt_lens[u]
        prompt[:, u, width_p - n :] = routing[row][:, :n].cpu()
    for b, experts in enumerate(routing):
        n = prompt_lens[int(sum(s <= b for s in starts)) - 1]
        tail = experts[:, n : n + width_c].cpu()
        completion[:, b, : tail.shape[1]] = tail
    return list(prompt.unbind(0)), list(completion.unbind(0))


def shared_prefix_logits(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    routing: Sequence[torch.Tensor] | None,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits predicting every completion token, with each distinct prompt run once.

    Args:
        model: A ``policies.Transformer``.
        prompt_ids: Per row; rows of a group are consecutive and identical.
        completion_ids: Per row.
        routing: Per row (L, len_p + len_c, k) expert ids to replay, or None.
        pad_id: Padding id.

    Returns:
        ``logits`` (B, C, V) (row b, position j predicts completion token j), ``targets`` (B, C) and the
        summed MoE balance loss (scalar).
    """
    from policies.generate import left_pad, new_cache

    device = model.embed.weight.device
    starts, expand = group_runs(prompt_ids)
    unique = [list(prompt_ids[s]) for s in starts]
    tokens_p, mask_p = left_pad(unique, pad_id, device)  # (U, P)
    width_c = max(1, max(len(c) for c in completion_ids))
    targets = torch.tensor([list(c) + [pad_id] * (width_c - len(c)) for c in completion_ids], device=device)
    mask_c = torch.tensor([[1] * len(c) + [0] * (width_c - len(c)) for c in completion_ids], device=device)
    route_p = route_c = None
    if routing is not None:
        route_p, route_c = _split_routing(
            routing, starts, [len(u) for u in unique], tokens_p.shape[1], width_c
        )
        route_p, route_c = [r.to(device) for r in route_p], [r.to(device) for r in route_c]
    cache = new_cache(model, len(unique), tokens_p.shape[1] + width_c)
    out_p = model(
        tokens_p, attention_mask=mask_p, routing=route_p, cache=cache, return_aux=True, with_mtp=False
    )
    cache.advance()
    expand = expand.to(device)
    cache.select(expand)
    out_c = model(
        targets, attention_mask=mask_c, routing=route_c, cache=cache, return_aux=True, with_mtp=False
    )
    first = out_p.logits[:, -1:].index_select(0, expand)  # (B, 1, V)
    logits = torch.cat([first, out_c.logits[:, :-1]], dim=1)  # (B, C, V)
    return logits, targets, out_p.aux_loss + out_c.aux_loss
