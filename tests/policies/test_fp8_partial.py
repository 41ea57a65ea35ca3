"""The 1x128 / 128x128 recipe at any shape: partial edge tiles/blocks, on CPU and through the CUDA wrapper.

Stated properties: a partial tile/block is quantised exactly as its zero-padded full tile/block (same codes,
same scale: zeros do not change amax), so it meets the same round-trip bound; an outlier or all-zero partial
tile stays local and finite; FP8Linear at odd shapes (K, N, M not multiples of 128) is within the same
relative errors of FP32 as at aligned shapes (forward <= 5%, gradients <= 6%) and equals the zero-padded
problem up to FP32 summation order; the CUDA path (:func:`cuda_scaled_mm`: pad, lay out, assert) agrees
with the emulation when its kernel is replaced by a CPU stand-in that re-checks cuBLAS' scale layouts.
"""

import pytest
import torch
import torch.nn.functional as F

import policies.fp8.linear as fp8_linear_module
from policies.fp8 import (
    BLOCK_128x128,
    FP8Config,
    TILE_1x128,
    check_cuda_operands,
    cuda_scaled_mm,
    fp8_linear,
    fp8_matmul,
    pad_operand,
    quantization_error_bound,
    quantize,
    reference_blockwise_kernel,
)

ODD_SHAPES = [(37, 200, 72), (5, 48, 20), (130, 300, 129), (1, 24, 16)]  # (M, K, N)


def _rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def _pad(x, rows, cols):
    return F.pad(x, (0, cols - x.shape[1], 0, rows - x.shape[0]))


@pytest.mark.parametrize("block", [TILE_1x128, BLOCK_128x128])
@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
@pytest.mark.parametrize("shape", [(3, 200), (130, 129), (200, 40), (1, 1)])
def test_partial_tile_equals_zero_padded_full_tile(block, fmt, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 3
    q, full = quantize(x, block, fmt), quantize(_pad(x, 256, 256), block, fmt)
    grid = q.scale.shape
    assert torch.equal(q.scale, full.scale[: grid[0], : grid[1]])
    assert torch.equal(q.data.float(), full.data.float()[: shape[0], : shape[1]])
    assert bool(((q.dequantize() - x).abs() <= quantization_error_bound(x, block, fmt)).all())


def test_outlier_and_zero_partial_tiles_stay_local_and_finite():
    x = torch.randn(130, 300)  # last tile of each row: 44 values; last block row: 2 rows
    x[0, 290] = 1e30  # outlier inside the partial last tile of row 0
    x[129, :] = 0.0  # the partial bottom block row ...
    x[128, 256:] = 0.0  # ... and a partial tile that is all zero
    for block in (TILE_1x128, BLOCK_128x128):
        q = quantize(x, block)
        y = q.dequantize()
        assert torch.isfinite(q.scale).all() and (q.scale > 0).all() and torch.isfinite(y).all()
        assert bool((y[129] == 0).all()) and bool((y[128, 256:] == 0).all())
        assert y[0, 290] == pytest.approx(1e30, rel=0.07)
    tile = quantize(x, TILE_1x128).dequantize()
    ok = torch.ones_like(x, dtype=torch.bool)
    ok[0, 256:] = False  # only the outlier's own (partial) tile is coarsened
    assert float(((tile - x).abs()[ok] / x.abs()[ok].clamp(min=1e-2)).max()) < 0.07
    assert bool((tile[0, :256] != 0).all())


@pytest.mark.parametrize(("m", "k", "n"), ODD_SHAPES)
@pytest.mark.parametrize("stochastic", [False, True])
def test_fp8_linear_at_odd_shapes_matches_fp32_and_the_padded_problem(m, k, n, stochastic):
    g = torch.Generator().manual_seed(m + k + n)
    x, w, dy = (
        torch.randn(m, k, generator=g),
        torch.randn(n, k, generator=g) / k**0.5,
        torch.randn(m, n, generator=g),
    )
    config = FP8Config(recipe="blockwise", block_size=128, stochastic_rounding=stochastic)

    def run(x, w, dy):
        x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
        torch.manual_seed(0)  # same stochastic-rounding draws for both problems
        y = fp8_linear(x, w, None, config)
        y.backward(dy)
        return y.detach(), x.grad, w.grad

    y, dx, dw = run(x, w, dy)
    assert _rel(y, x @ w.t()) < 0.05
    assert _rel(dx, dy @ w) < 0.06 and _rel(dw, dy.t() @ x) < 0.06
    if not stochastic:  # partial tiles == zero-padded full tiles, in all three GEMMs
        mp, kp, np_ = (-(-d // 128) * 128 for d in (m, k, n))
        yp, dxp, dwp = run(_pad(x, mp, kp), _pad(w, np_, kp), _pad(dy, mp, np_))
        torch.testing.assert_close(y, yp[:m, :n], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dx, dxp[:m, :k], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dw, dwp[:n, :k], rtol=1e-5, atol=1e-5)


def test_pad_operand_keeps_the_product_and_the_scale_kinds():
    x, w = torch.randn(100, 200), torch.randn(72, 200)
    for a, b in [
        (quantize(x, TILE_1x128), quantize(w, BLOCK_128x128)),
        (quantize(x, (1, -1)), quantize(w, (1, -1))),
    ]:
        pa, pb = pad_operand(a, 16, 128), pad_operand(b, 16, 128)
        assert pa.shape == (112, 256) and pb.shape == (80, 256)
        assert pa.block[1] in (128, 256) and pb.block[0] in (1, 128)
        torch.testing.assert_close(fp8_matmul(pa, pb)[:100, :72], fp8_matmul(a, b), rtol=1e-5, atol=1e-4)
    assert pad_operand(a, 1, 1) is a


@pytest.mark.parametrize(("m", "k", "n"), ODD_SHAPES)
@pytest.mark.parametrize(
    "pair", [(TILE_1x128, BLOCK_128x128), (BLOCK_128x128, TILE_1x128), (TILE_1x128, TILE_1x128)]
)
def test_cuda_wrapper_pads_odd_shapes_for_the_blockwise_kernel(m, k, n, pair):
    g = torch.Generator().manual_seed(k)
    a, b = (
        quantize(torch.randn(m, k, generator=g), pair[0]),
        quantize(torch.randn(n, k, generator=g), pair[1]),
    )
    calls = []

    def kernel(mat_a, mat_b, scale_a, recipe_a, scale_b, recipe_b, output_dtype):
        calls.append((mat_a.shape, mat_b.shape))
        return reference_blockwise_kernel(mat_a, mat_b, scale_a, recipe_a, scale_b, recipe_b, output_dtype)

    out = cuda_scaled_mm(a, b, blockwise_kernel=kernel)
    assert out.shape == (m, n) and out.dtype == torch.float32
    assert _rel(out, fp8_matmul(a, b)) < 5e-3  # BF16 output rounding only
    if calls:  # K <= 128 with a single weight block is a plain rowwise GEMM (same scales, other kernel)
        (mp, kp), (kp2, np_) = calls[0]
        assert mp % 16 == 0 and kp % 128 == 0 and kp == kp2 and np_ % 16 == 0


@pytest.mark.parametrize("recipe", ["rowwise", "tensorwise"])
def test_cuda_wrapper_pads_odd_shapes_for_scaled_mm(recipe):
    blocks = FP8Config(recipe=recipe).blocks()
    x, w = torch.randn(37, 200), torch.randn(20, 200)
    a, b = quantize(x, blocks["act"]), quantize(w, blocks["weight"])
    out = cuda_scaled_mm(a, b)  # CUDA rules asserted on CPU tensors; the CPU torch._scaled_mm computes
    assert out.shape == (37, 20)
    assert _rel(out, fp8_matmul(a, b)) < 5e-3
    with pytest.raises(
        AssertionError, match="divisible by 16"
    ):  # unpadded, the same operands break the rules
        check_cuda_operands(a.data, b.data.t(), a.scale, b.scale.t(), blockwise=False)


def test_all_three_linear_gemms_through_the_cuda_wrapper_at_odd_shapes(monkeypatch):
    def cuda_like(a, b, *, backend="emulate", out_dtype=torch.float32):
        if backend == "emulate":
            return fp8_matmul(a, b, out_dtype=out_dtype)
        return cuda_scaled_mm(a, b, out_dtype, blockwise_kernel=reference_blockwise_kernel)

    config = FP8Config(recipe="blockwise")
    g = torch.Generator().manual_seed(9)
    x, w, dy = (
        torch.randn(200, 300, generator=g),
        torch.randn(72, 300, generator=g) / 17,
        torch.randn(200, 72, generator=g),
    )
    results = []
    for backend in ("emulate", "scaled_mm"):
        monkeypatch.setattr(fp8_linear_module, "fp8_matmul", cuda_like)
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = fp8_linear_module._FP8LinearFunction.apply(xr, wr, None, config, backend)
        y.backward(dy)
        results.append((y.detach(), xr.grad, wr.grad))
    for emulated, wrapped in zip(*results, strict=True):
        assert _rel(wrapped, emulated) < 5e-3  # BF16 kernel output is the only difference
