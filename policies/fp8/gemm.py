"""Scaled FP8 GEMM backends: exact CPU emulation, ``torch._scaled_mm``, and cuBLAS blockwise on Hopper.

What: :func:`fp8_matmul` computes ``a @ b.T`` for two :class:`~policies.fp8.quant.QuantizedTensor` operands,
``a`` of shape (M, K) and ``b`` of shape (N, K), both quantised along the contraction dimension K, with
FP32 accumulation. Three backends:

- ``"emulate"``: dequantise both operands to FP32 and run an FP32 matmul. Every FP8 product is exact in
  FP32 (4x4 significant bits), and scales are applied per block before accumulation, so this reproduces a
  blockwise-scaled FP8 GEMM with FP32 accumulation up to summation order. Works for every granularity on
  every device: it is how the 1x128 / 128x128 recipe runs on CPU (where ``_scaled_mm`` rejects it).
- ``"scaled_mm"`` on CPU: ``torch._scaled_mm`` for tensorwise and rowwise scales (it accepts any layout on
  CPU; blockwise scales are rejected there).
- ``"scaled_mm"`` on CUDA: ``torch._scaled_mm`` for tensorwise/rowwise, and on SM90 the DeepSeek-style
  blockwise kernels through ``torch.nn.functional.scaled_mm`` with ``ScalingType.BlockWise1x128`` /
  ``BlockWise128x128``. The CUDA op is far stricter than the CPU one, so :func:`check_cuda_operands`
  asserts its rules here, with messages that say what to change:

  * ``a`` row-major (M, K) and ``b`` passed as a column-major (K, N) view of a row-major (N, K) tensor
    (cuBLASLt on Hopper supports only the "TN" layout);
  * K and N divisible by 16; blockwise additionally K divisible by 128 and block size exactly 128
    (:func:`cuda_scaled_mm` zero-pads M and N to 16 and K to 16 or 128 and slices the output back, so
    any shape runs; :func:`blockwise_scaled_mm` itself only asserts);
  * both operands E4M3 for blockwise (the cuBLAS recipe check rejects E5M2) and, conservatively, for rowwise
    (CUTLASS' rowwise kernel is built for E4M3); E5M2 only with tensorwise scales; never E5M2 x E5M2;
  * scale layouts: rowwise ``(M, 1)`` and ``(1, N)`` contiguous; 1x128 scales ``(rows, K/128)`` with strides
    ``(1, rows)`` ("outer-dim-major"); 128x128 scales ``(L4, rows/128)`` with strides ``(1, L4)``, where
    ``L4 = round_up(K/128, 4)`` (the K-block count is zero-padded to a multiple of 4);
  * supported blockwise pairs: (1x128, 128x128), (128x128, 1x128), (1x128, 1x128); compute capability 9.x.

Partial tiles/blocks: a (1, 128) tile or (128, 128) block at the right/bottom edge holds fewer than 128
valid values; its scale comes from those values only (:func:`~policies.fp8.quant.quantize`), exactly what
zero-padding to the full block gives, since zeros do not change amax. Padding the FP8 codes with zeros
therefore changes neither the scales nor the product, which is why :func:`cuda_scaled_mm` can pad freely.

Blockwise outputs are BF16 (the documented cuBLAS output type; accumulation is still FP32 inside the
kernel) and are cast to the requested dtype. ``use_fast_accum`` stays off: on Hopper it skips the periodic
FP32 promotion that :mod:`policies.fp8.accumulate` shows is needed for long K.

References: PyTorch ``aten/src/ATen/native/cuda/ScaledBlas.cpp`` and ``test/test_scaled_matmul_cuda.py``
(layout rules); NVIDIA cuBLAS docs, "1D and 128x128 2D block scaling for FP8 data types".

Left out on purpose: grouped (MoE) scaled GEMMs, FP8 outputs, and MX/NVFP4 block formats.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Literal

import torch

from policies.fp8.quant import QuantizedTensor, quantize

__all__ = [
    "Backend",
    "blockwise_kernel_available",
    "blockwise_scaled_mm",
    "check_cuda_operands",
    "cuda_scaled_mm",
    "fp8_matmul",
    "pad_operand",
    "reference_blockwise_kernel",
    "scale_kind",
]

Backend = Literal["emulate", "scaled_mm"]
ScaleKind = Literal["tensorwise", "rowwise", "1x128", "128x128", "other"]


def scale_kind(q: QuantizedTensor) -> ScaleKind:
    """Classify a quantised GEMM operand (rows, K) by its scale granularity along K.

    Example:
        >>> from policies.fp8.quant import quantize
        >>> scale_kind(quantize(torch.randn(256, 256), (128, 128)))
        '128x128'
    """
    cols = q.data.shape[1]
    br, bc = q.block
    if q.scale.numel() == 1:
        return "tensorwise"
    if br == 1 and bc >= cols:
        return "rowwise"
    if bc == 128 and br in (1, 128):
        return "1x128" if br == 1 else "128x128"
    return "other"


def fp8_matmul(
    a: QuantizedTensor,
    b: QuantizedTensor,
    *,
    backend: Backend = "emulate",
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``dequant(a) @ dequant(b).T`` as an FP8 GEMM with FP32 accumulation.

    Args:
        a: (M, K) operand quantised along K.
        b: (N, K) operand quantised along K.
        backend: ``"emulate"`` (dequantise, FP32 matmul) or ``"scaled_mm"`` (the device's FP8 kernel).
        out_dtype: Output dtype.

    Returns:
        Tensor (M, N) in ``out_dtype``.

    Raises:
        ValueError: for mismatched K, an unknown backend, or a granularity the backend cannot run.

    Example:
        >>> from policies.fp8.quant import quantize
        >>> x, w = torch.randn(8, 64), torch.randn(16, 64)
        >>> y = fp8_matmul(quantize(x, (1, -1)), quantize(w, (1, -1)), backend="scaled_mm")
        >>> y.shape, bool(((y - x @ w.T).norm() / (x @ w.T).norm()) < 0.1)
        (torch.Size([8, 16]), True)
    """
    if a.data.shape[1] != b.data.shape[1]:
        raise ValueError(f"contraction dims differ: a {tuple(a.shape)}, b {tuple(b.shape)}; need (M,K),(N,K)")
    if backend == "emulate":
        return (a.dequantize() @ b.dequantize().t()).to(out_dtype)  # (M, N)
    if backend != "scaled_mm":
        raise ValueError(f"backend must be 'emulate' or 'scaled_mm', got {backend!r}")
    if a.data.is_cuda:
        return cuda_scaled_mm(a, b, out_dtype)
    kinds = (scale_kind(a), scale_kind(b))
    if not set(kinds) <= {"tensorwise", "rowwise"}:
        raise ValueError(
            f"torch._scaled_mm on {a.data.device.type} runs tensorwise/rowwise scales only, got {kinds}; "
            "use backend='emulate' (CPU) or a Hopper GPU for blockwise scales"
        )
    return _scaled_mm_rowwise(a, b, out_dtype)


def _padded_block(size: int, new_size: int, block: int) -> tuple[int, int]:
    """(block, grid) along one axis after zero-padding ``size`` to ``new_size``."""
    grid = -(-size // block)
    if -(-new_size // block) == grid:
        return block, grid
    if grid == 1 and block >= size:  # a whole-dimension block (rowwise/tensorwise) keeps spanning it
        return new_size, 1
    return block, -(-new_size // block)  # e.g. one scale per row: the new rows get scale 1


def pad_operand(q: QuantizedTensor, row_multiple: int, col_multiple: int) -> QuantizedTensor:
    """Zero-pad an operand's FP8 codes to multiples of ``(row_multiple, col_multiple)``.

    The product is unchanged (padded codes are exactly zero; new blocks get scale 1) and so are the
    existing scales: a partial edge block's scale already equals that of its zero-padded full block.

    Example:
        >>> from policies.fp8.quant import quantize
        >>> q = pad_operand(quantize(torch.randn(100, 200), (1, 128)), 16, 128)
        >>> tuple(q.shape), tuple(q.scale.shape), q.block
        ((112, 256), (112, 2), (1, 128))
    """
    rows, cols = q.data.shape
    new_rows, new_cols = rows + (-rows % row_multiple), cols + (-cols % col_multiple)
    if (new_rows, new_cols) == (rows, cols):
        return q
    br, grid_r = _padded_block(rows, new_rows, q.block[0])
    bc, grid_c = _padded_block(cols, new_cols, q.block[1])
    codes = torch.zeros(new_rows, new_cols, dtype=torch.uint8, device=q.data.device)  # 0x00 is +0.0
    codes[:rows, :cols] = q.data.view(torch.uint8)  # (R, C) into (Rp, Cp)
    pad = (0, grid_c - q.scale.shape[1], 0, grid_r - q.scale.shape[0])
    scale = torch.nn.functional.pad(q.scale, pad, value=1.0)  # (grid_r, grid_c)
    return QuantizedTensor(codes.view(q.data.dtype), scale, (br, bc))


def cuda_scaled_mm(
    a: QuantizedTensor,
    b: QuantizedTensor,
    out_dtype: torch.dtype = torch.float32,
    *,
    blockwise_kernel: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """The CUDA ``scaled_mm`` path of :func:`fp8_matmul`, for any shape: pad, lay out, assert, call, slice.

    M and N are zero-padded to multiples of 16 and K to 16 (tensorwise/rowwise) or 128 (blockwise), the
    scales are laid out as cuBLAS wants, every rule is asserted (:func:`check_cuda_operands`), and the output
    is sliced back to (M, N). Nothing falls back to another kernel silently.

    Args:
        a: (M, K) operand quantised along K.
        b: (N, K) operand quantised along K.
        out_dtype: Output dtype.
        blockwise_kernel: Stand-in for ``torch.nn.functional.scaled_mm`` (same signature), e.g.
            :func:`reference_blockwise_kernel` to run this path on CPU tensors; default the real kernel.

    Returns:
        (M, N) tensor in ``out_dtype``.

    Raises:
        ValueError: for scales that are neither tensorwise/rowwise nor 1x128/128x128.
        AssertionError: from :func:`check_cuda_operands`, if a layout rule is still violated.

    Example:
        >>> from policies.fp8.quant import quantize
        >>> x, w = torch.randn(100, 200), torch.randn(72, 200)
        >>> a, b = quantize(x, (1, 128)), quantize(w, (128, 128))
        >>> y = cuda_scaled_mm(a, b, blockwise_kernel=reference_blockwise_kernel)
        >>> y.shape, bool((y - fp8_matmul(a, b)).abs().max() < 0.05 * y.abs().max())
        (torch.Size([100, 72]), True)
    """
    m, n = a.data.shape[0], b.data.shape[0]
    kinds = (scale_kind(a), scale_kind(b))
    blockwise = any(kind in ("1x128", "128x128") for kind in kinds)
    if not blockwise and not set(kinds) <= {"tensorwise", "rowwise"}:
        raise ValueError(f"CUDA FP8 GEMMs take tensorwise, rowwise, 1x128 or 128x128 scales, got {kinds}")
    k_multiple = 128 if blockwise else 16
    a, b = pad_operand(a, 16, k_multiple), pad_operand(b, 16, k_multiple)
    if blockwise:
        out = blockwise_scaled_mm(a, b, kernel=blockwise_kernel)  # (Mp, Np) bf16
    else:
        out = _scaled_mm_rowwise(a, b, out_dtype, check=True)  # (Mp, Np)
    return out[:m, :n].to(out_dtype)  # (M, N)


def _rowwise_scale(q: QuantizedTensor) -> torch.Tensor:
    """The operand's scale as one FP32 value per row, shape (rows, 1) (tensorwise scales broadcast)."""
    rows = q.data.shape[0]
    return q.scale.reshape(-1, 1).expand(rows, 1).float().contiguous() if q.scale.numel() == 1 else (
        q.scale.reshape(rows, 1).float().contiguous()
    )


def _scaled_mm_rowwise(
    a: QuantizedTensor, b: QuantizedTensor, out_dtype: torch.dtype, *, check: bool = False
) -> torch.Tensor:
    """Tensorwise x tensorwise or rowwise x rowwise ``torch._scaled_mm`` (mixed: both promoted to rowwise)."""
    b_data = b.data.contiguous().t()  # (K, N) column-major view, as cuBLASLt requires
    a_data = a.data.contiguous()  # (M, K) row-major
    if a.scale.numel() == 1 and b.scale.numel() == 1:
        scale_a, scale_b = a.scale.reshape(()).float(), b.scale.reshape(()).float()
    else:
        scale_a, scale_b = _rowwise_scale(a), _rowwise_scale(b).t().contiguous()  # (M, 1), (1, N)
    cuda_out = out_dtype
    if check or a_data.is_cuda:
        check_cuda_operands(a_data, b_data, scale_a, scale_b, blockwise=False)
        if scale_a.numel() > 1:
            cuda_out = torch.bfloat16 if out_dtype == torch.float32 else out_dtype
    out = torch._scaled_mm(a_data, b_data, scale_a=scale_a, scale_b=scale_b, out_dtype=cuda_out)  # (M, N)
    return out.to(out_dtype)


def _pad_k_blocks(scale: torch.Tensor) -> torch.Tensor:
    """(rows/128, L) -> (L4, rows/128) with strides (1, L4): cuBLAS' 128x128 scale layout."""
    pad = -scale.shape[1] % 4
    if pad:
        scale = torch.nn.functional.pad(scale, (0, pad), value=1.0)
    return scale.float().contiguous().t()  # (L4, rows/128)


def _blockwise_scale(q: QuantizedTensor, kind: str) -> tuple[torch.Tensor, object]:
    from torch.nn.functional import ScalingType

    if kind == "1x128":
        return q.scale.float().t().contiguous().t(), ScalingType.BlockWise1x128  # (rows, L) strides (1, rows)
    return _pad_k_blocks(q.scale), ScalingType.BlockWise128x128


def blockwise_scaled_mm(
    a: QuantizedTensor, b: QuantizedTensor, *, kernel: Callable[..., torch.Tensor] | None = None
) -> torch.Tensor:
    """DeepSeek-style blockwise FP8 GEMM ``a @ b.T`` via ``torch.nn.functional.scaled_mm`` (SM90 only).

    Lays the scales out as cuBLAS requires (module docstring), asserts every rule with
    :func:`check_cuda_operands` (no padding here: :func:`cuda_scaled_mm` pads), and returns BF16 (FP32
    accumulation inside the kernel).

    Args:
        a: (M, K) operand with 1x128 or 128x128 scales along K.
        b: (N, K) operand with 1x128 or 128x128 scales along K.
        kernel: Stand-in for ``torch.nn.functional.scaled_mm`` (default: the real one).

    Returns:
        (M, N) BF16 tensor.

    Example:
        >>> from policies.fp8.quant import quantize
        >>> x, w = torch.randn(256, 512).cuda(), torch.randn(384, 512).cuda()  # doctest: +SKIP
        >>> blockwise_scaled_mm(quantize(x, (1, 128)), quantize(w, (128, 128))).shape  # doctest: +SKIP
        torch.Size([256, 384])
    """
    from torch.nn.functional import scaled_mm

    kernel = kernel or scaled_mm
    k = a.data.shape[1]
    # with K == 128 a 1x128 tiling is one scale per row, which scale_kind reports as "rowwise"
    kinds = (scale_kind(a), scale_kind(b))
    pair = tuple("1x128" if kind == "rowwise" and k == 128 else kind for kind in kinds)
    assert pair in {("1x128", "128x128"), ("128x128", "1x128"), ("1x128", "1x128")}, (
        f"cuBLAS blockwise FP8 supports (1x128,128x128), (128x128,1x128), (1x128,1x128); got {pair}"
    )
    scale_a, recipe_a = _blockwise_scale(a, pair[0])
    scale_b, recipe_b = _blockwise_scale(b, pair[1])
    a_data, b_data = a.data.contiguous(), b.data.contiguous().t()  # (M, K) row-major, (K, N) column-major
    check_cuda_operands(a_data, b_data, scale_a, scale_b, blockwise=True, kinds=pair)
    out = kernel(a_data, b_data, scale_a, recipe_a, scale_b, recipe_b, output_dtype=torch.bfloat16)
    return out  # (M, N); use_fast_accum defaults to False: keep the FP32 promotion


@functools.cache
def _probe_blockwise(device_index: int) -> str | None:
    device = torch.device("cuda", device_index)
    if torch.cuda.get_device_capability(device)[0] != 9:
        return f"SM{''.join(map(str, torch.cuda.get_device_capability(device)))} is not SM90"
    with torch.no_grad(), torch.autocast("cuda", enabled=False):  # callers may be under autocast
        g = torch.Generator(device).manual_seed(0)
        x, w = (torch.randn(rows, 256, device=device, generator=g) for rows in (16, 32))
        a, b = quantize(x, (1, 128)), quantize(w, (128, 128))
        try:
            out = blockwise_scaled_mm(a, b).float()  # (16, 32)
            torch.cuda.synchronize(device)
        except Exception as err:  # any failure means "not runnable here"; the reason is reported
            return f"{type(err).__name__}: {err}".splitlines()[0][:300]
        ref = a.dequantize() @ b.dequantize().t()  # (16, 32)
        if not bool(((out - ref).norm() / ref.norm()) < 1e-2):
            return "the kernel ran but disagrees with the emulation"
    return None


def blockwise_kernel_available(device: torch.device) -> bool:
    """Whether the cuBLAS 1x128/128x128 FP8 kernel runs (and is right) on ``device``; probed once per GPU.

    It needs SM90 and cuBLASLt >= 12.9 (PyTorch builds for older CUDA raise ``NotImplementedError``).
    A failed probe is reported once with ``warnings.warn``, naming the error.

    Example:
        >>> blockwise_kernel_available(torch.device("cpu"))
        False
    """
    if device.type != "cuda":
        return False
    reason = _probe_blockwise(device.index if device.index is not None else torch.cuda.current_device())
    if reason is not None:
        warnings.warn(f"blockwise FP8 kernel unavailable on {device} ({reason}); emulating", stacklevel=2)
    return reason is None


def _expected_scale(kind: str, rows: int, k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(shape, strides) cuBLAS expects for one operand's scale, operand being (rows, K)."""
    blocks_k = -(-k // 128)
    if kind == "1x128":
        return (rows, blocks_k), (1, rows)
    l4 = -(-blocks_k // 4) * 4
    return (l4, -(-rows // 128)), (1, l4)


def check_cuda_operands(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    *,
    blockwise: bool,
    kinds: tuple[str, str] = ("rowwise", "rowwise"),
) -> None:
    """Assert CUDA's ``_scaled_mm`` / blockwise ``scaled_mm`` layout and alignment rules (module docstring).

    The CPU kernel accepts layouts CUDA rejects, so these checks run on the operands as they will be
    handed to the CUDA kernel (``a`` (M, K), ``b`` (K, N)); CPU tests call this function directly.

    Raises:
        AssertionError: naming the violated rule and the offending shape/stride/dtype.

    Example:
        >>> a = torch.zeros(16, 128, dtype=torch.float8_e4m3fn)
        >>> b = torch.zeros(32, 128, dtype=torch.float8_e4m3fn).t()
        >>> check_cuda_operands(a, b, torch.ones(16, 1), torch.ones(1, 32), blockwise=False)
    """
    (m, k), (k2, n) = a.shape, b.shape
    assert k == k2, f"a is {tuple(a.shape)} but b is {tuple(b.shape)}: b must be (K, N)"
    assert a.stride(1) == 1 and a.stride(0) >= k, f"a must be row-major (M, K); strides {a.stride()}"
    assert b.stride(0) == 1 and b.stride(1) >= k, (
        f"b must be column-major (K, N), i.e. a row-major (N, K) tensor transposed; strides {b.stride()}"
    )
    assert k % 16 == 0 and n % 16 == 0, f"K={k} and N={n} must be divisible by 16 for FP8 GEMMs on CUDA"
    f8 = (torch.float8_e4m3fn, torch.float8_e5m2)
    assert a.dtype in f8 and b.dtype in f8, f"operands must be FP8, got {a.dtype}, {b.dtype}"
    assert not (a.dtype == b.dtype == torch.float8_e5m2), "cuBLASLt cannot multiply two E5M2 matrices"
    assert scale_a.dtype == scale_b.dtype == torch.float32, "scales must be float32"
    if not blockwise:
        if scale_a.numel() == 1 and scale_b.numel() == 1:
            return
        assert tuple(scale_a.shape) == (m, 1) and scale_a.is_contiguous(), (
            f"rowwise scale_a must be contiguous ({m}, 1); got {tuple(scale_a.shape)}, {scale_a.stride()}"
        )
        assert tuple(scale_b.shape) == (1, n) and scale_b.is_contiguous(), (
            f"rowwise scale_b must be contiguous (1, {n}); got {tuple(scale_b.shape)}, {scale_b.stride()}"
        )
        assert a.dtype == b.dtype == torch.float8_e4m3fn, (
            f"rowwise FP8 GEMMs on CUDA take E4M3 operands here, got {a.dtype}, {b.dtype}; "
            "E5M2 gradients run with recipe='tensorwise' (or backend='emulate')"
        )
        return
    assert k % 128 == 0, f"blockwise FP8 GEMMs need K divisible by 128, got K={k}"
    assert a.dtype == b.dtype == torch.float8_e4m3fn, (
        f"cuBLAS blockwise FP8 needs E4M3 operands, got {a.dtype}, {b.dtype}; use grad_format='e4m3'"
    )
    if a.is_cuda:
        major = torch.cuda.get_device_capability(a.device)[0]
        assert major == 9, f"blockwise (1x128/128x128) FP8 GEMMs run on SM90 only, this GPU is SM{major}x"
    for name, scale, kind, rows in (("scale_a", scale_a, kinds[0], m), ("scale_b", scale_b, kinds[1], n)):
        shape, strides = _expected_scale(kind, rows, k)
        ok = tuple(scale.shape) == shape and all(
            st == want or size == 1 for st, want, size in zip(scale.stride(), strides, shape, strict=True)
        )
        assert ok, (
            f"{kind} {name} must have shape {shape} and strides {strides}, "
            f"got {tuple(scale.shape)} strides {scale.stride()}"
        )


def _expand_scale(scale: torch.Tensor, recipe: object, rows: int, k: int) -> torch.Tensor:
    """Per-element (rows, K) scale of a (rows, K) operand from its cuBLAS-layout scale tensor."""
    from torch.nn.functional import ScalingType

    blocks_k = -(-k // 128)
    if recipe == ScalingType.BlockWise1x128:  # (rows, L), strides (1, rows)
        assert scale.shape == (rows, blocks_k) and (blocks_k == 1 or scale.stride() == (1, rows)), (
            f"1x128 scale must be ({rows}, {blocks_k}) with strides (1, {rows}); got "
            f"{tuple(scale.shape)} {scale.stride()}"
        )
        return scale.repeat_interleave(128, 1)[:, :k]
    assert recipe == ScalingType.BlockWise128x128, f"unsupported recipe {recipe}"
    l4, row_blocks = -(-blocks_k // 4) * 4, -(-rows // 128)
    strided = scale.stride(0) == 1 and (row_blocks == 1 or scale.stride(1) == l4)
    assert scale.shape == (l4, row_blocks) and strided, (
        f"128x128 scale must be ({l4}, {row_blocks}) with strides (1, {l4}); got {tuple(scale.shape)} "
        f"{scale.stride()}"
    )
    per_block = scale[:blocks_k].t()  # (rows/128, L)
    return per_block.repeat_interleave(128, 0)[:rows].repeat_interleave(128, 1)[:, :k]  # (rows, K)


def reference_blockwise_kernel(
    mat_a: torch.Tensor,
    mat_b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_recipe_a: object,
    scale_b: torch.Tensor,
    scale_recipe_b: object,
    output_dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """A CPU stand-in for ``torch.nn.functional.scaled_mm`` with 1x128 / 128x128 scales in cuBLAS layout.

    Re-checks the scale shapes and strides PyTorch's CUDA op checks (``ScaledBlas.cpp``), expands each scale
    to its block and multiplies in FP32. It lets the CUDA wrapper (:func:`cuda_scaled_mm`) run end to end on
    CPU, so the kernel call itself is the only part left untested without a GPU.

    Example:
        >>> from policies.fp8.quant import quantize
        >>> a, b = quantize(torch.randn(16, 256), (1, 128)), quantize(torch.randn(32, 256), (128, 128))
        >>> blockwise_scaled_mm(a, b, kernel=reference_blockwise_kernel).shape
        torch.Size([16, 32])
    """
    (m, k), n = mat_a.shape, mat_b.shape[1]
    a = mat_a.float() * _expand_scale(scale_a, scale_recipe_a, m, k)  # (M, K)
    b = mat_b.t().float() * _expand_scale(scale_b, scale_recipe_b, n, k)  # (N, K)
    return (a @ b.t()).to(output_dtype)  # (M, N)
