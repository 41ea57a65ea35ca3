"""Configuration of FP8 training: recipe, backend, gradient format, rounding.

What: one frozen :class:`FP8Config` shared by :class:`~policies.fp8.linear.FP8Linear` and
:func:`~policies.fp8.convert.convert_to_fp8`, plus the recipe table mapping each GEMM operand to its
quantisation block (:meth:`FP8Config.blocks`).

Key idea: a recipe is just a choice of block shape per operand. For ``y = x W^T`` with x (M, K), W (N, K)
and upstream gradient g (M, N), each GEMM quantises both operands along its own contraction dimension:

============  =====================  ================  ======================  =======================
recipe        x along K (forward)    W (fwd and dgrad)  g along N (dgrad)       g^T, x^T along M (wgrad)
============  =====================  ================  ======================  =======================
blockwise     1x128 tiles            128x128 blocks     1x128 tiles             1x128 tiles (128x1 of g, x)
rowwise       per row                per row / column   per row                 per column of g and x
tensorwise    one scale              one scale          one scale               one scale
============  =====================  ================  ======================  =======================

References: DeepSeek-V3 Technical Report §3.3 (fine-grained quantisation, Figure 7).

Left out on purpose: per-layer recipe overrides (convert different modules with different configs instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_KEEP", "FP8Config"]

DEFAULT_KEEP = ("embed", "head", "gate", "router", "norm")
"""Module-name components kept in high precision (DeepSeek-V3: embedding, output head, MoE gate, norms)."""

_RECIPES = ("blockwise", "rowwise", "tensorwise")
_BACKENDS = ("auto", "emulate", "scaled_mm")
_FORMATS = ("e4m3", "e5m2")


@dataclass(frozen=True, kw_only=True)
class FP8Config:
    """How eligible linear layers run in FP8.

    Example:
        >>> FP8Config(recipe="rowwise").blocks()["weight_dgrad"]
        (1, -1)
    """

    recipe: Literal["blockwise", "rowwise", "tensorwise"] = "blockwise"
    """Scale granularity: DeepSeek-V3's 1x128 tiles / 128x128 blocks, per row, or one per tensor."""
    backend: Literal["auto", "emulate", "scaled_mm"] = "auto"
    """GEMM backend: "emulate" (dequantise + FP32 matmul, any device), "scaled_mm" (the device's FP8 kernel),
    or "auto" (scaled_mm where the device supports the recipe, i.e. tensorwise/rowwise on CPU and CUDA
    SM89+, blockwise on SM90; emulation otherwise)."""
    grad_format: Literal["e4m3", "e5m2"] = "e4m3"
    """FP8 format of output gradients in the two backward GEMMs (DeepSeek-V3 uses E4M3 everywhere)."""
    stochastic_rounding: bool = False
    """Round gradients stochastically (unbiased in expectation) instead of to nearest even."""
    block_size: int = 128
    """Tile/block edge for the blockwise recipe (128 in DeepSeek-V3 and the only size CUDA kernels accept).
    Any layer shape works with any block size: edge tiles/blocks may be partial (scale over their valid
    values), so 128 converts every eligible linear even of the tiny model; smaller sizes are for studies."""
    pow2_scales: bool = False
    """Round every scale up to a power of two (exact scaling, UE8M0-compatible), at up to 2x coarser codes."""
    keep_high_precision: tuple[str, ...] = DEFAULT_KEEP
    """Module-name components whose linears stay in high precision (matched against each dotted part)."""

    def __post_init__(self) -> None:
        if self.recipe not in _RECIPES:
            raise ValueError(f"recipe={self.recipe!r} is not one of {_RECIPES}")
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not one of {_BACKENDS}")
        if self.grad_format not in _FORMATS:
            raise ValueError(f"grad_format={self.grad_format!r} is not one of {_FORMATS}")
        if not (isinstance(self.block_size, int) and self.block_size >= 8 and self.block_size % 8 == 0):
            raise ValueError(f"block_size={self.block_size!r} must be a positive multiple of 8 (128 on GPUs)")
        if self.recipe == "blockwise" and self.backend == "scaled_mm" and self.block_size != 128:
            raise ValueError(f"block_size={self.block_size} with backend='scaled_mm': cuBLAS needs 128")
        if self.recipe == "blockwise" and self.grad_format == "e5m2" and self.backend != "emulate":
            raise ValueError(
                "grad_format='e5m2' with recipe='blockwise' needs backend='emulate': cuBLAS blockwise FP8 "
                "accepts E4M3 only (and 1x128 tiles leave E5M2's extra range unused)"
            )
        if isinstance(self.keep_high_precision, str):
            raise ValueError("keep_high_precision must be a tuple of names, got a single string")

    def blocks(self) -> dict[str, tuple[int, int]]:
        """Quantisation block of each GEMM operand, each operand viewed as (rows, contraction)."""
        operands = ("act", "weight", "weight_dgrad", "grad", "grad_wgrad", "act_wgrad")
        if self.recipe == "tensorwise":
            return dict.fromkeys(operands, (-1, -1))
        if self.recipe == "rowwise":
            return dict.fromkeys(operands, (1, -1))
        tile, block = (1, self.block_size), (self.block_size, self.block_size)
        return {
            "act": tile,
            "weight": block,
            "weight_dgrad": block,
            "grad": tile,
            "grad_wgrad": tile,
            "act_wgrad": tile,
        }
