"""One pre-norm transformer block: ``x + MLA(attn_norm(x))`` then ``x + FFN(ffn_norm(x))``.

The feed-forward is a dense SwiGLU ``MLP`` in the first ``n_dense_layers`` blocks and ``MoE`` after. With
``recompute`` (DeepSeek-V3 section 3.2.3, "recomputation of RMSNorm and MLA up-projection") the attention
norm, the query/key/value down- and up-projections are wrapped in ``torch.utils.checkpoint`` during training,
so only their input is kept and they run again in the backward pass.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from policies.cache import KVCache
from policies.config import ModelConfig
from policies.mla import MLA
from policies.moe import MLP, MoE
from policies.norm import RMSNorm


class Block(nn.Module):
    """Transformer block with DeepSeek names: ``attn_norm``, ``attn``, ``ffn_norm``, ``ffn``."""

    def __init__(self, layer_id: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.layer_id, self.recompute = layer_id, cfg.recompute
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = MLA(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn: MLP | MoE = MoE(cfg) if cfg.is_moe_layer(layer_id) else MLP(cfg.dim, cfg.inter_dim)

    @property
    def is_moe(self) -> bool:
        """Whether the feed-forward is an MoE."""
        return isinstance(self.ffn, MoE)

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v = self.attn.expand(*self.attn.project(self.attn_norm(x), cos, sin))
        return q, k, v.contiguous()  # v alone, not a view keeping the whole wkv_b output alive

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *,
        mask: torch.Tensor | None,
        token_mask: torch.Tensor | None = None,
        routing: torch.Tensor | None = None,
        cache: KVCache | None = None,
        cache_layer: int = 0,
        absorb: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Returns the new residual (B, T, dim), the MoE routing (B, T, k) or None, and the balance loss."""
        if self.recompute and self.training and torch.is_grad_enabled() and cache is None and not absorb:
            q, k, v = checkpoint(self._qkv, x, cos, sin, use_reentrant=False)
            x = x + self.attn.wo(self.attn.attend_expanded(q, k, v, mask))
        else:
            x = x + self.attn(
                self.attn_norm(x), cos, sin, mask, cache=cache, layer=cache_layer, absorb=absorb
            )
        h = self.ffn_norm(x)
        if isinstance(self.ffn, MoE):
            y, indices, aux = self.ffn(h, mask=token_mask, routing=routing)
            return x + y, indices, aux
        return x + self.ffn(h), None, x.new_zeros((), dtype=torch.float32)
