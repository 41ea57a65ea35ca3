"""FP8 quantisation: stated round-trip bounds, outlier and zero tiles, stochastic rounding, accumulation."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from policies.fp8 import (
    ROWWISE,
    TENSORWISE,
    BLOCK_128x128,
    TILE_1x128,
    accumulation_error_table,
    dequantize,
    emulated_dot,
    fp8_max,
    quantization_error_bound,
    quantize,
    round_significand,
    stochastic_round,
)

BLOCKS = [TENSORWISE, ROWWISE, TILE_1x128, BLOCK_128x128, (32, 32)]


def _heavy_tailed(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=g) * torch.exp(2 * torch.randn(rows, cols, generator=g))
    return x  # log-normal magnitudes: ~7 decades, exercising normal and subnormal FP8 codes


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
@pytest.mark.parametrize("stochastic", [False, True])
def test_round_trip_within_stated_bound(block, fmt, stochastic):
    x = _heavy_tailed(136, 260, seed=1)  # partial edge tiles on both axes
    g = torch.Generator().manual_seed(2)
    q = quantize(x, block, fmt, stochastic=stochastic, generator=g)
    err = (q.dequantize() - x).abs()
    bound = quantization_error_bound(x, block, fmt, stochastic=stochastic)
    assert bool((err <= bound).all()), float((err - bound).max())
    # the bound is not vacuous: the relative part is 2^-(m+1) (nearest) of |x|
    m = 3 if fmt == "e4m3" else 2
    big = x.abs() > 0.5 * x.abs().max()
    assert float((bound[big] / x.abs()[big]).max()) <= 2.0**-m * (1 if stochastic else 0.5) + 1e-5


@given(
    rows=st.integers(1, 24),
    cols=st.integers(1, 200),
    log_scale=st.floats(-30, 30),
    block=st.sampled_from(BLOCKS),
)
def test_round_trip_bound_property(rows, cols, log_scale, block):
    x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(rows * 1000 + cols)) * 2.0**log_scale
    q = quantize(x, block)
    assert q.data.shape == x.shape
    assert bool(((q.dequantize() - x).abs() <= quantization_error_bound(x, block)).all())


def test_scale_grid_shapes_and_dtypes():
    x = torch.randn(300, 260)
    assert tuple(quantize(x, TILE_1x128).scale.shape) == (300, 3)
    assert tuple(quantize(x, BLOCK_128x128).scale.shape) == (3, 3)
    assert tuple(quantize(x, ROWWISE).scale.shape) == (300, 1)
    assert tuple(quantize(x, TENSORWISE).scale.shape) == (1, 1)
    assert quantize(x, TILE_1x128, "e5m2").data.dtype == torch.float8_e5m2
    assert quantize(x, TILE_1x128).scale.dtype == torch.float32


def test_outlier_tile_is_finite_and_local():
    x = torch.randn(4, 512)
    x[1, 5] = 3e38  # near FP32 max: x / s must not overflow, the cast must not produce NaN
    x[2, 300] = -1e30
    q = quantize(x, TILE_1x128)
    y = q.dequantize()
    assert torch.isfinite(y).all()
    assert torch.isfinite(q.data.float()).all()
    # only the outlier's own tile loses its small values; every other tile keeps E4M3 precision
    others = torch.ones_like(x, dtype=torch.bool)
    others[1, 0:128] = False
    others[2, 256:384] = False
    assert float(((y - x).abs()[others] / x.abs()[others].clamp(min=1e-3)).max()) < 0.07
    assert y[1, 5] == pytest.approx(3e38, rel=0.07) and y[2, 300] == pytest.approx(-1e30, rel=0.07)
    # tensorwise scaling with the same outlier flushes everything else to zero
    flushed = quantize(x, TENSORWISE).dequantize()
    assert float((flushed[0] == 0).float().mean()) > 0.99


def test_values_just_above_fp8_max_after_scaling_are_clamped():
    # x / (amax / 448) can round above 448 in FP32; the clamp keeps the code finite and equal to 448
    for amax in (3.0, 7.0, 0.1, 1e-20, 123.456):
        x = torch.tensor([[amax, -amax, amax / 3]])
        q = quantize(x, ROWWISE)
        assert float(q.data.float().abs().max()) == fp8_max("e4m3")
        assert torch.isfinite(q.dequantize()).all()


def test_zero_and_tiny_tiles():
    x = torch.zeros(3, 256)
    x[1, 200] = 1e-35  # below float32 normal range / 448 would overflow 448/amax without the floor
    q = quantize(x, TILE_1x128)
    y = q.dequantize()
    assert torch.isfinite(q.scale).all() and (q.scale > 0).all()
    assert bool((y[0] == 0).all()) and bool((y[1, :128] == 0).all())
    assert torch.isfinite(y).all()
    assert bool(((y - x).abs() <= quantization_error_bound(x, TILE_1x128)).all())


def test_non_finite_input_propagates_instead_of_hiding():
    x = torch.randn(2, 128)
    x[0, 3] = float("nan")
    y = quantize(x, ROWWISE).dequantize()
    assert torch.isnan(y[0]).any() and torch.isfinite(y[1]).all()


def test_pow2_scales_are_exact_powers_of_two():
    q = quantize(torch.randn(8, 256) * 37, TILE_1x128, pow2_scales=True)
    assert bool((torch.log2(q.scale) == torch.round(torch.log2(q.scale))).all())
    x = torch.randn(8, 256)
    assert bool(
        (
            (quantize(x, TILE_1x128, pow2_scales=True).dequantize() - x).abs()
            <= quantization_error_bound(x, TILE_1x128, pow2_scales=True)
        ).all()
    )


def test_transpose_of_block_quantisation_is_exact():
    w = torch.randn(256, 384)
    q = quantize(w, BLOCK_128x128)
    assert torch.equal(q.t().dequantize(), q.dequantize().t())
    assert torch.equal(dequantize(q.t()), quantize(w.t().contiguous(), BLOCK_128x128).dequantize())


def test_stochastic_rounding_unbiased_where_nearest_is_not():
    # scale fixed at 1 by the 448 entry; 0.3 lies between E4M3 codes 0.28125 and 0.3125
    n = 200_000
    x = torch.full((1, n), 0.3)
    x[0, 0] = 448.0
    nearest = quantize(x, ROWWISE).dequantize()[0, 1:]
    sr = quantize(x, ROWWISE, stochastic=True, generator=torch.Generator().manual_seed(0)).dequantize()[0, 1:]
    assert set(sr.unique().tolist()) == {0.28125, 0.3125}
    sigma = 0.5 * 0.03125 / n**0.5  # std of the mean of a two-point variable with spacing 1/32
    assert abs(float(sr.double().mean()) - 0.3) < 5 * sigma
    assert abs(float(nearest.double().mean()) - 0.3) > 0.012  # RNE: always 0.3125, bias 0.0125


def test_stochastic_rounding_averages_converge_to_input():
    x = torch.randn(16, 128)
    g = torch.Generator().manual_seed(3)
    mean = torch.stack(
        [quantize(x, TILE_1x128, stochastic=True, generator=g).dequantize() for _ in range(100)]
    )
    sr_err = float((mean.mean(0) - x).abs().mean())
    rne_err = float((quantize(x, TILE_1x128).dequantize() - x).abs().mean())
    assert sr_err < rne_err / 3  # averaging removes SR noise (~1/sqrt(100)); RNE's error is systematic


def test_stochastic_round_returns_representable_values():
    y = torch.linspace(-448, 448, 10_001)
    r = stochastic_round(y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(r.to(torch.float8_e4m3fn).float(), r)
    r5 = stochastic_round(y * 100, "e5m2", generator=torch.Generator().manual_seed(0))
    assert torch.equal(r5.to(torch.float8_e5m2).float(), r5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": torch.randn(4), "block": ROWWISE}, "2-D"),
        ({"x": torch.randn(4, 4), "block": (0, 4)}, "block"),
        ({"x": torch.randn(4, 4), "block": ROWWISE, "fmt": "e3m4"}, "format"),
    ],
)
def test_caller_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        quantize(**kwargs)


# -- accumulation precision (DeepSeek-V3 §3.3.2) -----------------------------------------------------------


def test_round_significand_exact():
    x = torch.tensor([1.0 + 2**-5 + 2**-12, -(1.0 + 2**-5 + 2**-12), 3.0e-39, 0.0])
    assert round_significand(x, 24).tolist() == x.tolist()
    assert round_significand(x, 6).tolist()[:2] == [1.0 + 2**-5, -(1.0 + 2**-5)]
    assert round_significand(torch.tensor([1.0 + 2**-6]), 6, "nearest").item() == 1.0 + 2**-5
    with pytest.raises(ValueError, match="bits"):
        round_significand(x, 0)


def test_full_precision_accumulation_matches_fp32():
    a = torch.randn(3, 300).to(torch.float8_e4m3fn).float()
    b = torch.randn(4, 300).to(torch.float8_e4m3fn).float()
    ref = a.double() @ b.double().t()
    for chunk in (None, 128):
        out = emulated_dot(a, b, acc_bits=24, chunk=chunk)
        assert torch.allclose(out.double(), ref, rtol=1e-5, atol=1e-4)


def test_chunked_promotion_error_grows_slower_than_long_accumulation():
    rows = accumulation_error_table((256, 1024, 4096), m=4, n=4, seed=0)
    long = [r["long"] for r in rows]
    chunked = [r["chunked"] for r in rows]
    assert long[2] > 8 * long[0]  # one long 14-bit accumulation: error ~ linear in K
    assert chunked[2] < 2 * chunked[0]  # promotion every 128: error flat in K
    assert all(c < lo for c, lo in zip(chunked, long, strict=True))
    assert long[2] > 10 * chunked[2]
