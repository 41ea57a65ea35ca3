"""Multi-token prediction (MTP), DeepSeek-V3 section 2.2.

Key idea: D sequential modules extend the main model's prediction depth while keeping the causal chain. Module
k combines the previous depth's hidden state at position i with the embedding of token ``i + k``:
``h'_i = eh_proj([hnorm(h_i^{k-1}) ; enorm(Emb(t_{i+k}))])``, runs one transformer block, and predicts token
``i + k + 1`` through the *shared* output head (and shared embedding). The training loss is the mean
cross-entropy over depths times ``mtp_loss_weight`` (the paper's lambda). At inference the first module
serves as the draft model for self-speculative decoding (``policies.speculative``).

Left out: nothing of the paper's design; DeepSeek-V3 uses D = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.block import Block
from policies.cache import derived
from policies.config import ModelConfig
from policies.norm import RMSNorm


class MTPModule(nn.Module):
    """One MTP depth: ``enorm``, ``hnorm``, ``eh_proj``, a ``block`` and the pre-head ``norm``."""

    def __init__(self, depth: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.depth = depth
        self.enorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.hnorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.eh_proj = nn.Linear(2 * cfg.dim, cfg.dim, bias=False)
        self.block = Block(cfg.n_layers + depth - 1, cfg)
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def combine(self, h: torch.Tensor, emb_next: torch.Tensor) -> torch.Tensor:
        """``eh_proj([hnorm(h) ; enorm(emb)])`` for (B, T, dim) inputs."""
        return self.eh_proj(torch.cat([self.hnorm(h), self.enorm(emb_next)], dim=-1))  # (B, T, dim)

    def combine_tokens(self, h: torch.Tensor, tokens: torch.Tensor, embed: nn.Embedding) -> torch.Tensor:
        """``combine(h, embed(tokens))`` for drafting, without autograd: (B, T, dim), equal up to rounding.

        The token half ``eh_proj_e(enorm(embed(t)))`` depends on the token alone, so it is one table row
        (V, dim) folded once per ``generate`` call; the hidden half is ``hnorm`` then a matmul.
        """
        dim = h.shape[-1]
        if type(self.eh_proj) is not nn.Linear or torch.is_grad_enabled():
            return self.combine(h, embed(tokens))

        def table() -> torch.Tensor:
            return F.linear(self.enorm(embed.weight), self.eh_proj.weight[:, dim:])  # (V, dim)

        rows = derived(self, "token_table", [embed.weight, self.enorm.weight, self.eh_proj.weight], table)
        h_part = F.linear(self.hnorm(h), self.eh_proj.weight[:, :dim])  # (B, T, dim)
        return h_part + F.embedding(tokens, rows)  # (B, T, dim)


def mtp_loss(
    mtp_logits: list[torch.Tensor],
    tokens: torch.Tensor,
    loss_mask: torch.Tensor | None = None,
    weight: float = 1.0,
) -> torch.Tensor:
    """Weighted mean MTP cross-entropy.

    Args:
        mtp_logits: Per depth k (1-based), logits (B, T - k, V); position i predicts token ``i + k + 1``.
        tokens: Input ids (B, T).
        loss_mask: (B, T) 1 where a token counts as a *target* (e.g. completion and not padding); None = all.
        weight: ``mtp_loss_weight`` (lambda).

    Returns:
        ``weight / D * sum_k CE_k`` (scalar); 0 when ``mtp_logits`` is empty.

    Example:
        >>> logits = [torch.zeros(1, 2, 5)]
        >>> round(float(mtp_loss(logits, torch.tensor([[0, 1, 2, 3]]))), 4)  # uniform: log(5)
        1.6094
    """
    if not mtp_logits:
        return tokens.new_zeros((), dtype=torch.float32)
    losses = []
    for k, logits in enumerate(mtp_logits, start=1):
        targets = tokens[:, k + 1 :]  # (B, T - k - 1)
        pred = logits[:, : targets.shape[1]]  # (B, T - k - 1, V)
        ce = F.cross_entropy(pred.flatten(0, 1).float(), targets.flatten(), reduction="none")  # (N,)
        if loss_mask is None:
            losses.append(ce.mean())
        else:
            m = loss_mask[:, k + 1 :].flatten().float()  # (N,)
            losses.append((ce * m).sum() / m.sum().clamp(min=1))
    return weight * torch.stack(losses).mean()
