"""Emulating Hopper's limited-precision FP8 accumulation, and the chunked FP32 promotion that fixes it.

What: :func:`emulated_dot` computes ``a @ b.T`` for FP8-representable operands the way an FP8 tensor core
would if its running sum kept only ``acc_bits`` significant bits, either as one long accumulation over all
of K or with the partial sum promoted to an FP32 accumulator every ``chunk`` elements of K.
:func:`accumulation_error_table` measures both against an FP64 reference as K grows.

Key idea (DeepSeek-V3 §3.3.2, "Increasing Accumulation Precision"): NVIDIA H800's FP8 GEMMs keep only about
14 bits of the running sum, so the rounding error of each addition is relative to the *whole* partial sum;
over K additions it grows roughly linearly in K (DeepSeek measured ~2% maximum relative error at K=4096).
Copying the partial sum into FP32 registers every 128 elements (N_C = 128, four WGMMAs) bounds each
low-precision run to 128 terms, so the error stays roughly flat as K grows. FP8 x FP8 products have at most
8 significant bits and are exact in FP32, so only the accumulation is emulated.

The running sum is rounded after every addition by clearing (``"truncate"``, how aligned-mantissa adders
drop shifted-out bits; the default) or rounding (``"nearest"``) the low FP32 mantissa bits, which is exact
bit manipulation, not a model of it.

References: DeepSeek-V3 Technical Report (arXiv:2412.19437) §3.3.2 and Figure 7(b).

Left out on purpose: the exact alignment/normalisation behaviour of the undocumented hardware adder tree;
this emulates "a running sum with ~14 significant bits", which is what the report describes.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["accumulation_error_table", "emulated_dot", "round_significand"]

_FP32_SIGNIFICAND = 24


def round_significand(
    x: torch.Tensor, bits: int, mode: Literal["truncate", "nearest"] = "truncate"
) -> torch.Tensor:
    """Keep ``bits`` significant bits of FP32 values (truncating toward zero or rounding to nearest).

    Args:
        x: FP32 tensor.
        bits: Significant bits to keep, 1..24 (24 is a no-op).
        mode: ``"truncate"`` (toward zero) or ``"nearest"`` (ties away from zero).

    Returns:
        FP32 tensor with the low ``24 - bits`` mantissa bits cleared.

    Raises:
        ValueError: for ``bits`` outside 1..24, a non-FP32 tensor, or an unknown mode.

    Example:
        >>> round_significand(torch.tensor([1.0 + 2**-10, -3.75]), 2)
        tensor([ 1., -3.])
        >>> round_significand(torch.tensor([-3.75]), 2, "nearest")
        tensor([-4.])
    """
    if not 1 <= bits <= _FP32_SIGNIFICAND:
        raise ValueError(f"bits={bits} must be in 1..{_FP32_SIGNIFICAND}")
    if x.dtype != torch.float32:
        raise ValueError(f"round_significand works on float32, got {x.dtype}")
    if mode not in ("truncate", "nearest"):
        raise ValueError(f"mode={mode!r} must be 'truncate' or 'nearest'")
    drop = _FP32_SIGNIFICAND - bits
    if drop == 0:
        return x
    bits_i = x.view(torch.int32)
    if mode == "nearest":
        bits_i = bits_i + (1 << (drop - 1))  # sign-magnitude: adding rounds the magnitude half-up
    return (bits_i & ~((1 << drop) - 1)).view(torch.float32)


def emulated_dot(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    acc_bits: int = 14,
    chunk: int | None = None,
    mode: Literal["truncate", "nearest"] = "truncate",
) -> torch.Tensor:
    """``a @ b.T`` with a running sum of ``acc_bits`` significant bits, optionally promoted every ``chunk``.

    Args:
        a: (M, K) FP32 tensor of FP8-representable values (products must be exact in FP32).
        b: (N, K) FP32 tensor of FP8-representable values.
        acc_bits: Significant bits of the low-precision running sum (~14 on Hopper FP8 tensor cores).
        chunk: Promote the partial sum to an FP32 accumulator every ``chunk`` elements of K (DeepSeek-V3:
            128); ``None`` keeps one long low-precision accumulation.
        mode: Rounding of the running sum, ``"truncate"`` or ``"nearest"``.

    Returns:
        (M, N) FP32 tensor.

    Raises:
        ValueError: for mismatched shapes or a non-positive ``chunk``.

    Example:
        >>> a = torch.ones(1, 4096)
        >>> emulated_dot(a, a, acc_bits=8).item(), emulated_dot(a, a, acc_bits=8, chunk=128).item()
        (256.0, 4096.0)
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need a (M, K) and b (N, K), got {tuple(a.shape)} and {tuple(b.shape)}")
    if chunk is not None and chunk <= 0:
        raise ValueError(f"chunk={chunk} must be positive or None")
    a, b = a.float(), b.float()
    total = torch.zeros(a.shape[0], b.shape[0])  # (M, N) FP32 accumulator
    partial = torch.zeros_like(total)  # (M, N) low-precision running sum
    for k in range(a.shape[1]):
        product = a[:, k, None] * b[None, :, k]  # (M, N), exact
        partial = round_significand(partial + product, acc_bits, mode)
        if chunk is not None and (k + 1) % chunk == 0:
            total += partial
            partial = torch.zeros_like(total)
    return total + partial


def accumulation_error_table(
    ks: tuple[int, ...] = (256, 1024, 4096, 16384),
    *,
    m: int = 8,
    n: int = 8,
    acc_bits: int = 14,
    chunk: int = 128,
    mode: Literal["truncate", "nearest"] = "truncate",
    positive: bool = False,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Relative error of long vs chunked low-precision accumulation as K grows.

    Operands are E4M3-quantised Gaussians (``positive=True`` takes absolute values: every product adds
    with the same sign, the worst case for a shrinking relative precision). Error is
    ``||emulated - exact||_F / ||exact||_F`` against an FP64 matmul of the same FP8 values.

    Args:
        ks: Contraction lengths to measure.
        m: Rows of ``a``.
        n: Rows of ``b``.
        acc_bits: Significant bits of the running sum.
        chunk: Promotion interval for the chunked variant.
        mode: Running-sum rounding mode.
        positive: Use non-negative operands.
        seed: Seed of the operand generator.

    Returns:
        One dict per K with keys ``k``, ``long``, ``chunked`` (relative errors) and ``ratio``
        (long / chunked).

    Example:
        >>> rows = accumulation_error_table((256, 2048), m=2, n=2, positive=True)
        >>> rows[1]["long"] > rows[1]["chunked"]
        True
    """
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for k in ks:
        a = torch.randn(m, k, generator=gen)  # (M, K)
        b = torch.randn(n, k, generator=gen)  # (N, K)
        if positive:
            a, b = a.abs(), b.abs()
        a = a.to(torch.float8_e4m3fn).float()
        b = b.to(torch.float8_e4m3fn).float()
        exact = a.double() @ b.double().t()  # (M, N)

        def rel(y: torch.Tensor, exact: torch.Tensor = exact) -> float:
            return float((y.double() - exact).norm() / exact.norm())

        long = rel(emulated_dot(a, b, acc_bits=acc_bits, mode=mode))
        chunked = rel(emulated_dot(a, b, acc_bits=acc_bits, chunk=chunk, mode=mode))
        rows.append({"k": float(k), "long": long, "chunked": chunked, "ratio": long / max(chunked, 1e-300)})
    return rows
