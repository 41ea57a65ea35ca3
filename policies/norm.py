"""RMSNorm (Zhang & Sennrich, 2019), as used throughout DeepSeek-V3.

Key idea: scale by the reciprocal root-mean-square of the features instead of centring and scaling as
LayerNorm does; computed in (at least) fp32 for stability and cast back. Left out: hand-written fused kernels
(``torch.nn.functional.rms_norm`` dispatches to fused ones on GPU).
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned per-feature gain.

    Example:
        >>> norm = RMSNorm(4)
        >>> y = norm(torch.tensor([[1.0, -1.0, 1.0, -1.0]]))
        >>> torch.allclose(y, torch.tensor([[1.0, -1.0, 1.0, -1.0]]), atol=1e-5)
        True
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == self.weight.dtype and x.dtype in (torch.float32, torch.float64):  # no casts to dispatch
            return torch.nn.functional.rms_norm(x, (self.dim,), self.weight, self.eps)  # (..., dim)
        dtype = torch.promote_types(x.dtype, torch.float32)  # bf16 -> fp32 compute, fp64 stays fp64
        y = torch.nn.functional.rms_norm(
            x.to(dtype), (self.dim,), self.weight.to(dtype), self.eps
        )  # (..., dim)
        return y.to(x.dtype)
