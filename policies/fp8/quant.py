"""FP8 quantisation with fine-grained, online scales (DeepSeek-V3's 1x128 tiles and 128x128 blocks).

What: turn a 2-D float tensor into FP8 codes plus one FP32 *dequantisation* scale per block, and back.
One function covers every granularity the package uses, named by the block shape ``(rows, cols)`` where
``-1`` means "the whole dimension":

=================  ==============  ===================================================
granularity        block           used for
=================  ==============  ===================================================
tensorwise         ``(-1, -1)``    one scale per tensor (the classic FP8 recipe)
rowwise            ``(1, -1)``     one scale per row (per token / per output channel)
1x128 tiles        ``(1, 128)``    activations and gradients (DeepSeek-V3 §3.3.2)
128x128 blocks     ``(128, 128)``  weights (DeepSeek-V3 §3.3.2)
=================  ==============  ===================================================

Key idea: the scale of each block is computed *online* from that block's amax, ``s = amax / fp8_max``, so
one outlier only coarsens its own 128 values instead of the whole tensor. Values are divided by ``s`` and
**clamped to ``±fp8_max`` before the cast** (``x / s`` can land a hair above the maximum through FP32
rounding, and an out-of-range cast is format- and device-dependent: NaN on some paths, saturation on
others). ``amax`` is floored at :data:`AMAX_FLOOR` so an all-zero block gets a finite scale and exact zeros,
and ``fp8_max / amax`` never overflows FP32 for tiny blocks.

Round-trip error bounds (round-to-nearest-even; ``m`` mantissa bits, ``emin`` the smallest normal exponent,
``s`` the block scale; see :func:`quantization_error_bound`)::

    |x - dequant(quant(x))| <= max(2^-(m+1) * |x|,  2^(emin-m-1) * s)     (+ FP32 rounding, ~2^-23 |x|)

i.e. a relative error of at most 1/16 for E4M3 (m=3) and 1/8 for E5M2 (m=2) for every value within
``2^emin * fp8_max`` of its block's amax (2^-6*448 = 7 for E4M3, so values down to amax/64 are "normal"),
and an absolute error of half a subnormal step below that. Stochastic rounding doubles both terms (one
full step) but is unbiased: ``E[dequant(quant(x))] = x``.

Formats: E4M3 (4 exponent, 3 mantissa bits, max 448) is used for every GEMM operand, forward and backward,
as in DeepSeek-V3. E5M2 (max 57344, min subnormal 2^-16) is offered for gradients: its extra exponent bit
buys 2^7 more dynamic range at the cost of one mantissa bit. That trade is worth it only when one scale must
cover a wide range of values, i.e. with the tensorwise recipe where a single gradient outlier sets the scale
for millions of values and small gradients would otherwise flush to zero. With 1x128 tiles each tile's range
is narrow, so E4M3's precision wins (DeepSeek-V3's argument), and cuBLAS' blockwise kernels accept only
E4M3 anyway; :class:`policies.fp8.FP8Config` therefore rejects E5M2 with the blockwise recipe on real
hardware.

References: DeepSeek-V3 Technical Report (arXiv:2412.19437) §3.3; Micikevicius et al., "FP8 Formats for
Deep Learning" (arXiv:2209.05433); Gupta et al. 2015 (stochastic rounding).

Left out on purpose: delayed (history-based) scaling, which the fine-grained recipe makes unnecessary;
power-of-two (UE8M0) scales are an option (``pow2_scales``), not the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = [
    "AMAX_FLOOR",
    "ROWWISE",
    "TENSORWISE",
    "BLOCK_128x128",
    "FP8Format",
    "QuantizedTensor",
    "TILE_1x128",
    "dequantize",
    "fp8_dtype",
    "fp8_max",
    "quantization_error_bound",
    "quantize",
    "stochastic_round",
]

FP8Format = Literal["e4m3", "e5m2"]

TENSORWISE = (-1, -1)
ROWWISE = (1, -1)
TILE_1x128 = (1, 128)
BLOCK_128x128 = (128, 128)

AMAX_FLOOR = 1e-30
"""Smallest amax used to build a scale: keeps ``fp8_max / amax`` finite and zero blocks exactly zero."""


@dataclass(frozen=True)
class _Format:
    dtype: torch.dtype
    max: float
    mantissa_bits: int
    min_exponent: int  # exponent of the smallest normal number


_FORMATS = {
    "e4m3": _Format(torch.float8_e4m3fn, 448.0, 3, -6),
    "e5m2": _Format(torch.float8_e5m2, 57344.0, 2, -14),
}


def _format(fmt: str) -> _Format:
    if fmt not in _FORMATS:
        raise ValueError(f"fp8 format must be one of {sorted(_FORMATS)}, got {fmt!r}")
    return _FORMATS[fmt]


def fp8_dtype(fmt: FP8Format) -> torch.dtype:
    """The torch dtype of an FP8 format name.

    Args:
        fmt: ``"e4m3"`` or ``"e5m2"``.

    Returns:
        ``torch.float8_e4m3fn`` or ``torch.float8_e5m2``.

    Raises:
        ValueError: for an unknown format name.

    Example:
        >>> fp8_dtype("e4m3")
        torch.float8_e4m3fn
    """
    return _format(fmt).dtype


def fp8_max(fmt: FP8Format) -> float:
    """The largest finite value of an FP8 format (448 for E4M3, 57344 for E5M2).

    Example:
        >>> fp8_max("e4m3"), fp8_max("e5m2")
        (448.0, 57344.0)
    """
    return _format(fmt).max


@dataclass(frozen=True)
class QuantizedTensor:
    """FP8 codes of a 2-D tensor with one FP32 dequantisation scale per block.

    ``dequantize()`` returns ``data * scale`` broadcast over blocks. Blocks at the right/bottom edge may be
    partial (the scale grid is ``ceil(rows / block_rows) x ceil(cols / block_cols)``).

    Attributes:
        data: FP8 codes, shape ``(R, C)``.
        scale: FP32 dequantisation scales, shape ``(ceil(R / br), ceil(C / bc))``.
        block: The resolved block shape ``(br, bc)`` (no ``-1``).
    """

    data: torch.Tensor
    scale: torch.Tensor
    block: tuple[int, int]

    @property
    def shape(self) -> torch.Size:
        """Shape of the quantised tensor."""
        return self.data.shape

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``data * scale`` in ``dtype`` (FP32 by default)."""
        return dequantize(self, dtype)

    def t(self) -> QuantizedTensor:
        """The transpose: codes, scale grid and block shape all transposed; no requantisation."""
        return QuantizedTensor(self.data.t(), self.scale.t(), (self.block[1], self.block[0]))


def _resolve_block(block: tuple[int, int], shape: torch.Size) -> tuple[int, int]:
    if len(block) != 2 or any(b == 0 or b < -1 for b in block):
        raise ValueError(f"block must be (rows, cols) with positive sizes or -1, got {block!r}")
    rows, cols = shape
    return (rows if block[0] == -1 else block[0]) or 1, (cols if block[1] == -1 else block[1]) or 1


def _tiles(x: torch.Tensor, br: int, bc: int) -> torch.Tensor:
    """View ``x`` (R, C) as (R/br, br, C/bc, bc), zero-padding partial edge blocks."""
    rows, cols = x.shape
    pad_r, pad_c = -rows % br, -cols % bc
    if pad_r or pad_c:
        x = torch.nn.functional.pad(x, (0, pad_c, 0, pad_r))
    return x.reshape(x.shape[0] // br, br, x.shape[1] // bc, bc)  # (Rb, br, Cb, bc)


def _untile(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    return t.reshape(t.shape[0] * t.shape[1], t.shape[2] * t.shape[3])[:rows, :cols]


def stochastic_round(
    y: torch.Tensor, fmt: FP8Format = "e4m3", *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Round FP32 values (already within ``±fp8_max``) to a neighbouring FP8 value at random.

    The value rounds up with probability equal to its distance from the lower neighbour divided by the
    spacing, so the result is unbiased: ``E[stochastic_round(y)] = y``. The returned FP32 tensor holds
    values exactly representable in ``fmt``, so the following cast is exact.

    Args:
        y: FP32 tensor with ``|y| <= fp8_max(fmt)``.
        fmt: Target FP8 format.
        generator: Optional random generator (for reproducible draws).

    Returns:
        FP32 tensor of FP8-representable values, same shape as ``y``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> r = stochastic_round(torch.full((20000,), 0.3), generator=g)
        >>> sorted(r.unique().tolist())
        [0.28125, 0.3125]
        >>> abs(r.mean().item() - 0.3) < 1e-3
        True
    """
    f = _format(fmt)
    a = y.abs().float()  # (...)
    _, exp = torch.frexp(a)  # a = mant * 2**exp, mant in [0.5, 1)
    ulp = torch.ldexp(torch.ones_like(a), (exp - 1).clamp(min=f.min_exponent) - f.mantissa_bits)
    lower = torch.floor(a / ulp) * ulp  # exact: ulp is a power of two
    u = torch.rand(a.shape, generator=generator, device=a.device, dtype=torch.float32)
    rounded = lower + ulp * (u < (a - lower) / ulp)
    return torch.copysign(rounded.clamp(max=f.max), y.float())


def quantize(
    x: torch.Tensor,
    block: tuple[int, int],
    fmt: FP8Format = "e4m3",
    *,
    stochastic: bool = False,
    pow2_scales: bool = False,
    generator: torch.Generator | None = None,
) -> QuantizedTensor:
    """Quantise a 2-D tensor to FP8 with one online amax scale per ``block``.

    Args:
        x: Tensor of shape ``(R, C)`` (any float dtype; computed in FP32).
        block: Block shape ``(rows, cols)``; ``-1`` spans the whole dimension (see module docstring).
        fmt: ``"e4m3"`` (forward and default backward) or ``"e5m2"``.
        stochastic: Round stochastically (unbiased) instead of to nearest even.
        pow2_scales: Round each scale up to a power of two, making scaling exact (UE8M0-style).
        generator: Random generator for stochastic rounding.

    Returns:
        A :class:`QuantizedTensor` whose ``dequantize()`` is within :func:`quantization_error_bound`.

    Raises:
        ValueError: if ``x`` is not 2-D, or for a bad ``block`` / ``fmt``.

    Example:
        >>> x = torch.randn(4, 256)
        >>> q = quantize(x, TILE_1x128)
        >>> q.data.dtype, tuple(q.scale.shape)
        (torch.float8_e4m3fn, (4, 2))
        >>> bool(((q.dequantize() - x).abs() <= quantization_error_bound(x, TILE_1x128)).all())
        True
    """
    if x.dim() != 2:
        raise ValueError(f"quantize expects a 2-D tensor, got shape {tuple(x.shape)}; flatten leading dims")
    f = _format(fmt)
    br, bc = _resolve_block(block, x.shape)
    tiles = _tiles(x.float(), br, bc)  # (Rb, br, Cb, bc)
    amax = tiles.abs().amax(dim=(1, 3)).clamp(min=AMAX_FLOOR)  # (Rb, Cb)
    scale = amax / f.max  # (Rb, Cb)
    if pow2_scales:
        scale = torch.exp2(torch.ceil(torch.log2(scale)))
    scaled = (tiles / scale[:, None, :, None]).clamp(-f.max, f.max)  # (Rb, br, Cb, bc)
    if stochastic:
        scaled = stochastic_round(scaled, fmt, generator=generator)
    data = _untile(scaled.to(f.dtype), *x.shape)  # (R, C)
    return QuantizedTensor(data, scale, (br, bc))


def dequantize(q: QuantizedTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Expand FP8 codes back to ``dtype``: ``data * scale`` per block.

    Example:
        >>> x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
        >>> dequantize(quantize(x, ROWWISE, pow2_scales=True))  # power-of-two scales: exact here
        tensor([[ 1.0000, -2.0000,  0.5000,  3.0000]])
        >>> dequantize(quantize(x, ROWWISE))  # scale 3/448: 1.0 -> 149.3 -> 144 (E4M3 step 16 in [128, 256))
        tensor([[ 0.9643, -1.9286,  0.4821,  3.0000]])
    """
    br, bc = q.block
    rows, cols = q.data.shape
    tiles = _tiles(q.data.float(), br, bc)  # (Rb, br, Cb, bc)
    return _untile(tiles * q.scale[:, None, :, None], rows, cols).to(dtype)


def quantization_error_bound(
    x: torch.Tensor,
    block: tuple[int, int],
    fmt: FP8Format = "e4m3",
    *,
    stochastic: bool = False,
    pow2_scales: bool = False,
) -> torch.Tensor:
    """Elementwise worst-case ``|x - dequantize(quantize(x, block, fmt))|`` (see module docstring).

    Round to nearest: ``max(2^-(m+1) |x|, 2^(emin-m-1) s)``; stochastic rounding: twice that (one full
    step). A relative slack of 2^-20 covers the two FP32 roundings in ``x / s`` and ``q * s``.

    Args:
        x: The 2-D tensor that is (or will be) quantised.
        block: Block shape, as for :func:`quantize`.
        fmt: FP8 format.
        stochastic: Bound for stochastic instead of nearest rounding.
        pow2_scales: Whether scales are rounded up to powers of two.

    Returns:
        FP32 tensor of bounds, same shape as ``x``.

    Example:
        >>> x = torch.tensor([[100.0, 1.0, 1e-4, 0.0]])
        >>> [round(v, 6) for v in quantization_error_bound(x, ROWWISE)[0].tolist()]
        [6.250095, 0.062501, 0.000218, 0.000218]
    """
    f = _format(fmt)
    br, bc = _resolve_block(block, x.shape)
    tiles = _tiles(x.float(), br, bc)  # (Rb, br, Cb, bc)
    scale = tiles.abs().amax(dim=(1, 3)).clamp(min=AMAX_FLOOR) / f.max  # (Rb, Cb)
    if pow2_scales:
        scale = torch.exp2(torch.ceil(torch.log2(scale)))
    steps = 1.0 if stochastic else 0.5
    rel = steps * 2.0 ** -f.mantissa_bits * tiles.abs()
    sub = steps * 2.0 ** (f.min_exponent - f.mantissa_bits) * scale[:, None, :, None]
    bound = torch.maximum(rel, sub.expand_as(rel)) + 2.0**-20 * tiles.abs()  # (Rb, br, Cb, bc)
    return _untile(bound, *x.shape)
