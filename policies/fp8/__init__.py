"""FP8 training for the bundled policy in DeepSeek-V3's fine-grained recipe (opt-in).

What: quantisation helpers (:func:`quantize` with 1x128 tiles, 128x128 blocks, rowwise or tensorwise
scales; E4M3/E5M2; stochastic rounding), an :class:`FP8Linear` doing forward, input-gradient and
weight-gradient GEMMs in FP8 with FP32 accumulation, :func:`convert_to_fp8` for whole models, an emulation of
Hopper's limited-precision accumulation (:func:`emulated_dot`), and :class:`AdamWBF16` (BF16 moments).

Key idea: scale at fine granularity so outliers stay local, keep FP32 masters and the sensitive components
(embedding, head, gate, norms, attention core) in high precision. On CPU the blockwise recipe is emulated
exactly (quantise -> dequantise -> FP32 matmul) and tensorwise/rowwise run through ``torch._scaled_mm``; on
Hopper GPUs the real blockwise cuBLAS kernels run. See ``docs/fp8.md``.

References: DeepSeek-V3 Technical Report (arXiv:2412.19437) §3.3.

Left out on purpose: FP8 communication/all-to-all, FP8 attention, delayed scaling.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = convert_to_fp8(nn.Sequential(nn.Linear(128, 128)), "blockwise")
    >>> net(torch.randn(4, 128)).shape
    torch.Size([4, 128])
"""

from policies.fp8.accumulate import accumulation_error_table, emulated_dot, round_significand
from policies.fp8.config import DEFAULT_KEEP, FP8Config
from policies.fp8.convert import FP8Experts, FP8Report, convert_to_fp8, plan_fp8
from policies.fp8.gemm import (
    blockwise_kernel_available,
    blockwise_scaled_mm,
    check_cuda_operands,
    cuda_scaled_mm,
    fp8_matmul,
    pad_operand,
    reference_blockwise_kernel,
    scale_kind,
)
from policies.fp8.linear import FP8Linear, fp8_linear, resolve_backend
from policies.fp8.optim import AdamWBF16
from policies.fp8.quant import (
    ROWWISE,
    TENSORWISE,
    BLOCK_128x128,
    QuantizedTensor,
    TILE_1x128,
    dequantize,
    fp8_dtype,
    fp8_max,
    quantization_error_bound,
    quantize,
    stochastic_round,
)

__all__ = [
    "DEFAULT_KEEP",
    "ROWWISE",
    "TENSORWISE",
    "AdamWBF16",
    "BLOCK_128x128",
    "FP8Config",
    "FP8Experts",
    "FP8Linear",
    "FP8Report",
    "QuantizedTensor",
    "TILE_1x128",
    "accumulation_error_table",
    "blockwise_kernel_available",
    "blockwise_scaled_mm",
    "check_cuda_operands",
    "convert_to_fp8",
    "cuda_scaled_mm",
    "dequantize",
    "emulated_dot",
    "fp8_dtype",
    "fp8_linear",
    "fp8_matmul",
    "fp8_max",
    "pad_operand",
    "plan_fp8",
    "quantization_error_bound",
    "quantize",
    "reference_blockwise_kernel",
    "resolve_backend",
    "round_significand",
    "scale_kind",
    "stochastic_round",
]
