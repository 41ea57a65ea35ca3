"""Multi-head Latent Attention (MLA), DeepSeek-V2/V3 (arXiv:2405.04434 section 2.1, arXiv:2412.19437 2.1.1).

Key idea: keys and values are reconstructed from a small per-token latent ``c_kv = kv_norm(W_dkv x)`` of
``kv_lora_rank`` floats, plus one RoPE key ``k_rope`` of ``qk_rope_head_dim`` floats shared by all heads; the
query may be low-rank compressed too (``q_lora_rank``). Only ``c_kv`` and ``k_rope`` are cached.

Two mathematically equal forms:

* expanded (training, prefill): ``k_nope, v = W_ukv c_kv`` per head, then ordinary attention over
  ``[k_nope ; k_rope]`` (``torch.nn.functional.scaled_dot_product_attention``);
* absorbed (decoding): ``W_uk`` is folded into the query (``q_nope W_uk`` lives in latent space) and ``W_uv``
  into the output, so attention runs directly over the cached latents without materialising per-head keys.

The reference is ``MLA.forward`` in DeepSeek-V3's ``inference/model.py`` (its ``attn_impl="naive"`` and
``"absorb"`` branches); this module adds padding masks and a training path.
Left out: YaRN ``mscale`` (no context extension), tensor parallelism.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.cache import KVCache, derived
from policies.config import ModelConfig
from policies.norm import RMSNorm
from policies.rope import apply_rope


class MLA(nn.Module):
    """Multi-head latent attention with DeepSeek-V3's module names (``wq``/``wq_a``... ``wo``).

    Example:
        >>> cfg = ModelConfig.tiny()
        >>> attn = MLA(cfg)
        >>> x = torch.randn(2, 5, cfg.dim)
        >>> cos = sin = torch.zeros(2, 5, cfg.qk_rope_head_dim // 2)
        >>> attn(x, cos, sin).shape
        torch.Size([2, 5, 32])
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.q_lora_rank, self.kv_lora_rank = cfg.n_heads, cfg.q_lora_rank, cfg.kv_lora_rank
        self.qk_nope_head_dim, self.qk_rope_head_dim = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim
        self.v_head_dim = cfg.v_head_dim
        q_out = cfg.n_heads * cfg.qk_head_dim
        if cfg.q_lora_rank == 0:
            self.wq = nn.Linear(cfg.dim, q_out, bias=False)
        else:
            self.wq_a = nn.Linear(cfg.dim, cfg.q_lora_rank, bias=False)
            self.q_norm = RMSNorm(cfg.q_lora_rank, cfg.norm_eps)
            self.wq_b = nn.Linear(cfg.q_lora_rank, q_out, bias=False)
        self.wkv_a = nn.Linear(cfg.dim, cfg.kv_lora_rank + cfg.qk_rope_head_dim, bias=False)
        self.kv_norm = RMSNorm(cfg.kv_lora_rank, cfg.norm_eps)
        self.wkv_b = nn.Linear(
            cfg.kv_lora_rank, cfg.n_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim), bias=False
        )
        self.wo = nn.Linear(cfg.n_heads * cfg.v_head_dim, cfg.dim, bias=False)
        self.softmax_scale = cfg.qk_head_dim**-0.5
        # folded decode weights cost (H*R) x (in + dim) floats: worth it while that is small (this project's
        # presets); DeepSeek-V3-sized heads keep the unfolded absorbed form
        q_in = cfg.dim if cfg.q_lora_rank == 0 else cfg.q_lora_rank
        self._foldable = cfg.n_heads * cfg.kv_lora_rank * (q_in + cfg.dim) <= 1 << 24

    # Projections --------------------
    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Down/up query projection and key/value down projection.

        Returns ``q_nope`` (B, T, H, dn), ``q_rope`` (B, T, H, dr), ``c_kv`` (B, T, R) normalised and
        ``k_rope`` (B, T, dr), RoPE already applied.
        """
        bsz, seqlen, _ = x.shape
        q = self.wq(x) if self.q_lora_rank == 0 else self.wq_b(self.q_norm(self.wq_a(x)))  # (B, T, H*dq)
        q = q.view(bsz, seqlen, self.n_heads, -1)  # (B, T, H, dq)
        q_nope, q_rope = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        q_rope = apply_rope(q_rope, cos, sin)  # (B, T, H, dr)
        kv = self.wkv_a(x)  # (B, T, R + dr)
        c_kv, k_rope = kv.split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        k_rope = apply_rope(k_rope.unsqueeze(2), cos, sin).squeeze(2)  # (B, T, dr)
        return q_nope, q_rope, self.kv_norm(c_kv), k_rope

    def expand(
        self, q_nope: torch.Tensor, q_rope: torch.Tensor, c_kv: torch.Tensor, k_rope: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Up-project latents to per-head ``q``, ``k``, ``v`` in (B, H, T, D) layout for SDPA."""
        bsz, seqlen = c_kv.shape[:2]
        kv = self.wkv_b(c_kv).view(bsz, seqlen, self.n_heads, -1)  # (B, S, H, dn + dv)
        k_nope, v = kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_rope.unsqueeze(2).expand(-1, -1, self.n_heads, -1)], dim=-1)  # (B, S, H, dq)
        q = torch.cat([q_nope, q_rope], dim=-1)  # (B, T, H, dq)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    # Decoding with folded weights --------------------
    def _can_fold(self) -> bool:
        """Folded decoding needs plain ``nn.Linear`` query/output projections (not e.g. FP8 ones)."""
        plain = (
            type(self.wo) is nn.Linear and type(self.wq if self.q_lora_rank == 0 else self.wq_b) is nn.Linear
        )
        return self._foldable and plain

    def _wq(self) -> torch.Tensor:
        return self.wq.weight if self.q_lora_rank == 0 else self.wq_b.weight

    def decode_weights(self) -> tuple[torch.Tensor, ...]:
        """Weights with ``W_uk``, ``W_uv`` and the softmax scale folded in, for ``decode`` (cached).

        Returns ``w_in`` mapping the (q_norm'ed, if ``q_lora_rank``) query input to
        ``[q_latent (H*R) ; q_rope (H*dr)]`` (scaled by ``softmax_scale``), where
        ``q_latent_h = W_uk_h^T q_nope_h``, and ``w_out`` (dim, H*R) = ``wo`` times ``W_uv`` per head.
        """
        n_heads, dn, rank = self.n_heads, self.qk_nope_head_dim, self.kv_lora_rank
        wkv_b = self.wkv_b.weight.view(n_heads, -1, rank)  # (H, dn + dv, R)
        wq = self._wq().view(n_heads, dn + self.qk_rope_head_dim, -1)  # (H, dq, in)
        q_latent = torch.einsum("hnr,hni->hri", wkv_b[:, :dn], wq[:, :dn]).flatten(0, 1)  # (H*R, in)
        w_in = torch.cat([q_latent, wq[:, dn:].flatten(0, 1)]) * self.softmax_scale  # (H*(R + dr), in)
        wo = self.wo.weight.view(-1, n_heads, self.v_head_dim)  # (dim, H, dv)
        w_out = torch.einsum("dhv,hvr->dhr", wo, wkv_b[:, dn:]).flatten(1)  # (dim, H*R)
        return w_in, w_out

    def decode(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache,
        layer: int,
    ) -> torch.Tensor:
        """Absorbed attention over ``cache`` with folded weights (``decode_weights``); returns (B, T, dim).

        The same computation as the absorbed ``forward`` in fewer dispatched ops: one matmul gives the latent
        and RoPE queries, one RoPE call rotates the query and key parts together, the output is one matmul.
        """
        bsz, seqlen, _ = x.shape
        n_heads, rank, dr = self.n_heads, self.kv_lora_rank, self.qk_rope_head_dim
        params = [self.wkv_b.weight, self.wo.weight, self._wq()]
        w_in, w_out = derived(self, "decode_weights", params, self.decode_weights)
        kv = self.wkv_a(x)  # (B, T, R + dr)
        c_kv, k_rope = self.kv_norm(kv[..., :rank]), kv[..., rank:]  # (B, T, R), (B, T, dr)
        q = F.linear(x if self.q_lora_rank == 0 else self.q_norm(self.wq_a(x)), w_in)  # (B, T, H*(R + dr))
        q_latent = q[..., : n_heads * rank].reshape(bsz, seqlen * n_heads, rank)  # (B, T*H, R)
        ropes = torch.cat([q[..., n_heads * rank :], k_rope], -1).view(bsz, seqlen, n_heads + 1, dr)
        ropes = apply_rope(ropes, cos, sin)  # (B, T, H + 1, dr)
        all_c_kv, all_k_rope = cache.write(layer, c_kv, ropes[:, :, n_heads])  # (B, S, R), (B, S, dr)
        q_pe = ropes[:, :, :n_heads].reshape(bsz, seqlen * n_heads, dr)  # (B, T*H, dr)
        scores = torch.baddbmm(
            torch.bmm(q_latent, all_c_kv.transpose(1, 2)), q_pe, all_k_rope.transpose(1, 2)
        ).view(bsz, seqlen, n_heads, -1)  # (B, T, H, S)
        if scores.dtype != torch.float32 and scores.dtype != torch.float64:
            scores = scores.float()
        scores = scores.masked_fill(~mask.unsqueeze(2), float("-inf"))
        probs = scores.softmax(dim=-1).to(all_c_kv.dtype).view(bsz, seqlen * n_heads, -1)  # (B, T*H, S)
        out = torch.bmm(probs, all_c_kv).view(bsz, seqlen, n_heads * rank)  # (B, T, H*R)
        return F.linear(out, w_out)  # (B, T, dim)

    # Attention cores --------------------
    def attend_expanded(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """SDPA over expanded heads; ``mask`` (B, T, S) bool or None (causal). Returns (B, T, H*dv)."""
        if mask is None:
            dv, dqk = v.shape[-1], q.shape[-1]
            if q.device.type == "cpu" and dv < dqk:
                # The CPU's fused (flash) kernel needs equal head dims; without it SDPA materialises the
                # (B, H, T, T) scores. Zero value columns add zero output columns, cut off again.
                v = F.pad(v, (0, dqk - dv))
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.softmax_scale)
            out = out[..., :dv]
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask.unsqueeze(1), scale=self.softmax_scale
            )
        return out.transpose(1, 2).flatten(2)  # (B, T, H*dv)

    def attend_absorbed(
        self,
        q_nope: torch.Tensor,
        q_rope: torch.Tensor,
        c_kv: torch.Tensor,
        k_rope: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Attention computed in latent space over cached ``c_kv`` (B, S, R) / ``k_rope`` (B, S, dr).

        Returns (B, T, H*dv), equal to ``attend_expanded`` on the expanded keys/values.
        """
        bsz, seqlen, n_heads, _ = q_nope.shape
        wkv_b = self.wkv_b.weight.view(n_heads, -1, self.kv_lora_rank)  # (H, dn + dv, R)
        w_uk = wkv_b[:, : self.qk_nope_head_dim].to(q_nope.dtype)  # (H, dn, R)
        w_uv = wkv_b[:, self.qk_nope_head_dim :].to(q_nope.dtype)  # (H, dv, R)
        # batched matmuls instead of einsum: decoding is dominated by per-op overhead at this size
        q_heads = q_nope.permute(2, 0, 1, 3).reshape(n_heads, bsz * seqlen, -1)  # (H, B*T, dn)
        q_latent = torch.bmm(q_heads, w_uk)  # (H, B*T, R)
        q_latent = q_latent.view(n_heads, bsz, seqlen, -1).transpose(0, 1).reshape(bsz, n_heads * seqlen, -1)
        q_pe = q_rope.transpose(1, 2).reshape(bsz, n_heads * seqlen, -1)  # (B, H*T, dr)
        scores = torch.bmm(q_latent, c_kv.transpose(1, 2))  # (B, H*T, S)
        scores = torch.baddbmm(scores, q_pe, k_rope.transpose(1, 2)).view(
            bsz, n_heads, seqlen, -1
        )  # (B, H, T, S)
        dtype = torch.promote_types(scores.dtype, torch.float32)
        scores = (scores.to(dtype) * self.softmax_scale).masked_fill(~mask.unsqueeze(1), float("-inf"))
        probs = scores.softmax(dim=-1).to(c_kv.dtype).view(bsz, n_heads * seqlen, -1)  # (B, H*T, S)
        out = torch.bmm(probs, c_kv)  # (B, H*T, R)
        out = (
            out.view(bsz, n_heads, seqlen, -1).transpose(0, 1).reshape(n_heads, bsz * seqlen, -1)
        )  # (H, B*T, R)
        out = torch.bmm(out, w_uv.transpose(1, 2))  # (H, B*T, dv)
        out = out.view(n_heads, bsz, seqlen, -1).permute(1, 2, 0, 3)  # (B, T, H, dv)
        return out.flatten(2)  # (B, T, H*dv)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
        absorb: bool | None = None,
    ) -> torch.Tensor:
        """Attention of ``x`` (B, T, dim); with a ``cache`` the new latents are stored and decode is absorbed.

        Args:
            x: Normalised hidden states (B, T, dim).
            cos, sin: RoPE tables gathered at each token's position (B, T, dr/2).
            mask: (B, T, S) bool key visibility (None = causal without padding).
            cache: Latent cache; when given, ``mask`` covers its visible slots.
            layer: Index of this layer in ``cache``.
            absorb: Force the absorbed (True) or expanded (False) core; default absorbed for cached decode.
        """
        use_absorbed = cache is not None and ((not cache.is_empty) if absorb is None else absorb)
        if use_absorbed and not torch.is_grad_enabled() and mask is not None and self._can_fold():
            return self.decode(x, cos, sin, mask, cache, layer)  # does its own (folded) projections
        q_nope, q_rope, c_kv, k_rope = self.project(x, cos, sin)
        if cache is not None:
            all_c_kv, all_k_rope = cache.write(layer, c_kv, k_rope)  # (B, S, R), (B, S, dr)
            if not use_absorbed:  # prefill: keys are exactly the new tokens
                assert mask is not None and cache.is_empty, "expanded cached attention only for prefill"
                q, k, v = self.expand(q_nope, q_rope, c_kv, k_rope)
                return self.wo(self.attend_expanded(q, k, v, mask[:, :, -x.shape[1] :]))
            return self.wo(self.attend_absorbed(q_nope, q_rope, all_c_kv, all_k_rope, mask))
        if absorb:
            if mask is None:
                mask = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).tril()[None]
            return self.wo(
                self.attend_absorbed(q_nope, q_rope, c_kv, k_rope, mask.expand(x.shape[0], -1, -1))
            )
        q, k, v = self.expand(q_nope, q_rope, c_kv, k_rope)
        return self.wo(self.attend_expanded(q, k, v, mask))
