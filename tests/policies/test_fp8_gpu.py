"""FP8 on CUDA: the real kernels agree with the exact CPU emulation. Skipped without CUDA (marker ``gpu``)."""

import pytest
import torch

from policies.fp8 import (
    FP8Config,
    FP8Linear,
    blockwise_kernel_available,
    cuda_scaled_mm,
    fp8_linear,
    fp8_matmul,
    quantize,
    resolve_backend,
)

pytestmark = pytest.mark.gpu


def _capability():
    return torch.cuda.get_device_capability() if torch.cuda.is_available() else (0, 0)


def _rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise"])
def test_cuda_scaled_mm_matches_emulation(recipe):
    if _capability() < (8, 9):
        pytest.skip("FP8 GEMMs need SM89+")
    blocks = FP8Config(recipe=recipe).blocks()
    x, w = torch.randn(256, 512, device="cuda"), torch.randn(384, 512, device="cuda")
    a, b = quantize(x, blocks["act"]), quantize(w, blocks["weight"])
    real = fp8_matmul(a, b, backend="scaled_mm")
    emulated = fp8_matmul(a, b, backend="emulate")
    assert _rel(real, emulated) < 1e-2  # BF16 output rounding (rowwise) is the only difference


@pytest.mark.parametrize(
    ("kind_a", "kind_b"), [((1, 128), (128, 128)), ((128, 128), (1, 128)), ((1, 128), (1, 128))]
)
def test_cuda_blockwise_matches_emulation(kind_a, kind_b):
    if _capability()[0] != 9:
        pytest.skip("DeepSeek-style blockwise FP8 GEMMs run on SM90 only")
    x, w = torch.randn(256, 640, device="cuda"), torch.randn(384, 640, device="cuda")  # K/128 = 5: L4 padding
    a, b = quantize(x, kind_a), quantize(w, kind_b)
    real = fp8_matmul(a, b, backend="scaled_mm")
    assert _rel(real, fp8_matmul(a, b, backend="emulate")) < 1e-2


def test_fp8_linear_on_cuda_all_three_gemms():
    if _capability() < (8, 9):
        pytest.skip("FP8 GEMMs need SM89+")
    recipe = "blockwise" if _capability()[0] == 9 else "rowwise"
    config = FP8Config(recipe=recipe)
    assert resolve_backend(config, torch.device("cuda")) == "scaled_mm"
    x = torch.randn(200, 512, device="cuda", requires_grad=True)  # 200 tokens: wgrad K padded to 256
    w = (torch.randn(384, 512, device="cuda") / 512**0.5).requires_grad_()
    dy = torch.randn(200, 384, device="cuda")
    y = fp8_linear(x, w, None, config)
    y.backward(dy)
    assert _rel(y, x @ w.t()) < 0.05
    assert _rel(x.grad, dy @ w) < 0.06
    assert _rel(w.grad, dy.t() @ x) < 0.06


def test_fp8_linear_cuda_equals_cpu_emulation():
    if _capability()[0] != 9:
        pytest.skip("needs SM90")
    torch.manual_seed(0)
    layer = FP8Linear(256, 256, config=FP8Config(recipe="blockwise"))
    x = torch.randn(128, 256)
    cpu = layer(x)
    gpu = layer.cuda()(x.cuda()).cpu()
    assert _rel(gpu, cpu) < 1e-2


def test_blockwise_kernel_probe_runs_on_hopper():
    if _capability()[0] != 9:
        pytest.skip("needs SM90")
    assert blockwise_kernel_available(torch.device("cuda")), "cuBLASLt >= 12.9 is needed for blockwise FP8"


@pytest.mark.parametrize(("m", "k", "n"), [(37, 200, 72), (5, 48, 20), (130, 300, 129)])
@pytest.mark.parametrize("recipe", ["blockwise", "rowwise", "tensorwise"])
def test_cuda_kernels_at_odd_shapes_match_emulation(m, k, n, recipe):
    if _capability() < (8, 9) or (recipe == "blockwise" and _capability()[0] != 9):
        pytest.skip("FP8 GEMMs need SM89+, blockwise SM90")
    blocks = FP8Config(recipe=recipe).blocks()
    x, w = torch.randn(m, k, device="cuda"), torch.randn(n, k, device="cuda")
    a, b = quantize(x, blocks["act"]), quantize(w, blocks["weight"])
    assert _rel(cuda_scaled_mm(a, b), fp8_matmul(a, b, backend="emulate")) < 1e-2
    layer = FP8Linear(k, n, config=FP8Config(recipe=recipe)).cuda()
    xr = x.clone().requires_grad_()
    y = layer(xr)
    y.backward(torch.ones_like(y))
    assert _rel(y, xr @ layer.weight.t() + layer.bias) < 0.05
