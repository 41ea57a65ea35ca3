"""Rotary position embedding (RoPE, Su et al. 2021) on the decoupled MLA query/key parts.

Key idea: rotate consecutive feature pairs ``(x[2i], x[2i+1])`` by the angle ``pos * theta**(-2i/d)``, so the
dot product of a rotated query and key depends only on their relative position. Pairs are interleaved as in
DeepSeek-V3's reference ``apply_rotary_emb`` (complex view), written here with real cos/sin tables so it runs
in any dtype. Positions are explicit per token (B, T) so left-padded rows count only their real tokens.

Left out: YaRN frequency interpolation for context extension.
"""

from __future__ import annotations

import torch


def rope_tables(dim: int, max_seq_len: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos and sin tables of shape ``(max_seq_len, dim // 2)`` in fp32.

    Example:
        >>> cos, sin = rope_tables(4, 8)
        >>> cos.shape, float(cos[0, 0]), float(sin[0, 1])
        (torch.Size([8, 2]), 1.0, 0.0)
    """
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))  # (dim/2,)
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), freqs)  # (S, dim/2)
    return angles.cos().float(), angles.sin().float()


def rope_at(positions: torch.Tensor, dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos and sin (..., dim // 2) at integer ``positions`` (...), computed on the fly in fp32.

    Computing instead of storing a table keeps the model free of non-persistent buffers (which loaders that
    build models on the meta device leave uninitialised) and costs a few hundred flops per token.

    Example:
        >>> cos, sin = rope_at(torch.tensor([[0, 3]]), 4)
        >>> torch.allclose(cos, rope_tables(4, 8)[0][torch.tensor([[0, 3]])])
        True
    """
    exponent = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) / dim  # (dim/2,)
    freqs = 1.0 / (theta**exponent)  # (dim/2,)
    angles = positions.to(torch.float32).unsqueeze(-1) * freqs  # (..., dim/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of ``x`` (B, T, H, D) by per-token ``cos``/``sin`` of shape (B, T, D/2).

    Example:
        >>> cos, sin = rope_tables(2, 4)
        >>> x = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, 1, 2)
        >>> pos = torch.tensor([[0]])
        >>> apply_rope(x, cos[pos], sin[pos]).tolist()
        [[[[1.0, 0.0]]]]
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    cast = x.dtype != dtype or cos.dtype != dtype  # fp32 tensors skip the (dispatched) no-op casts
    x_pairs = (x.to(dtype) if cast else x).unflatten(-1, (-1, 2))  # (B, T, H, D/2, 2)
    x1, x2 = x_pairs[..., 0], x_pairs[..., 1]  # (B, T, H, D/2)
    c, s = cos.unsqueeze(2), sin.unsqueeze(2)  # (B, T, 1, D/2)
    if cast:
        c, s = c.to(dtype), s.to(dtype)
    out = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)  # (B, T, H, D)
    return out.to(x.dtype) if cast else out
