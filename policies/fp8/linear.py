"""``FP8Linear``: an ``nn.Linear`` whose three GEMMs run in FP8 with FP32 accumulation.

What: a drop-in subclass of :class:`torch.nn.Linear`. It keeps the FP32 master ``.weight`` and ``.bias``
(so optimisers, checkpoints and code that reads ``module.weight`` directly, like absorbed MLA reading
``wkv_b.weight``, keep working) and routes ``forward`` through a custom :class:`torch.autograd.Function`,
because the FP8 matmul ops have no autograd of their own.

Key idea (DeepSeek-V3 §3.3, Figure 6): with x (M, K), W (N, K), y = x W^T and g = dL/dy (M, N),

- forward ``y = x W^T``: x in 1x128 tiles along K, W in 128x128 blocks (E4M3);
- dgrad ``dx = g W``: g in 1x128 tiles along N, W^T as the *same* 128x128 blocks transposed;
- wgrad ``dW = g^T x``: g^T and x^T in 1x128 tiles along M (i.e. 128x1 tiles of g and x);

every GEMM accumulates in FP32. The activation is saved for the backward pass **in FP8** (the 128x1-tiled
x^T codes plus FP32 scales: about 1/4 of FP32 memory), not in full precision. The rowwise and tensorwise
recipes use the same structure with coarser scales (see :class:`~policies.fp8.config.FP8Config`). The bias
is added in FP32 and its gradient is an FP32 sum.

Any shape works: when K, N or the token count M is not a multiple of 128, the last 1x128 tile / 128x128
block of an operand is partial and its scale comes from its valid values only (the same scale zero-padding
would give). On CUDA, :func:`~policies.fp8.gemm.cuda_scaled_mm` zero-pads the FP8 codes to the kernels'
alignment (16, and 128 along the contraction for blockwise) and slices the result back.

Error: for Gaussian-like data every recipe's forward output, input gradient and weight gradient stay within
about 5% relative (Frobenius) error of FP32, dominated by E4M3's 2^-4 relative rounding of each operand;
``tests/policies/test_fp8_linear.py`` states and checks the bounds (elementwise worst case and relative).

References: DeepSeek-V3 Technical Report (arXiv:2412.19437) §3.3; torchao's Float8Linear (the
subclass-of-Linear design).

Left out on purpose: FP8 outputs / FP8 communication, autocast integration (the GEMMs are FP8 regardless;
the output takes the input's dtype), and grouped expert GEMMs.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.fp8.config import FP8Config
from policies.fp8.gemm import Backend, blockwise_kernel_available, fp8_matmul
from policies.fp8.quant import QuantizedTensor, quantize

__all__ = ["FP8Linear", "fp8_linear", "resolve_backend"]


def resolve_backend(config: FP8Config, device: torch.device) -> Backend:
    """Pick the GEMM backend for ``config`` on ``device`` (see ``FP8Config.backend``).

    Raises:
        ValueError: ``backend="scaled_mm"`` with a recipe the device cannot run.

    Example:
        >>> resolve_backend(FP8Config(recipe="blockwise"), torch.device("cpu"))
        'emulate'
        >>> resolve_backend(FP8Config(recipe="rowwise"), torch.device("cpu"))
        'scaled_mm'
    """
    blockwise = config.recipe == "blockwise"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        supported = major == 9 and config.block_size == 128 if blockwise else (major, minor) >= (8, 9)
        supported = supported and not (config.recipe == "rowwise" and config.grad_format == "e5m2")
        if supported and blockwise and config.backend == "auto":  # SM90 alone is not enough: cuBLASLt >= 12.9
            supported = blockwise_kernel_available(device)
    else:
        supported = device.type == "cpu" and not blockwise
    if config.backend == "auto":
        return "scaled_mm" if supported else "emulate"
    if config.backend == "scaled_mm" and not supported:
        raise ValueError(
            f"backend='scaled_mm' cannot run recipe={config.recipe!r} on {device}: torch._scaled_mm on CPU "
            "takes tensorwise/rowwise scales only and blockwise kernels need SM90; use backend='auto'"
        )
    return config.backend


def _weight_for_dgrad(weight: torch.Tensor, config: FP8Config) -> QuantizedTensor:
    """W^T (K, N) quantised along N: the forward's blocks transposed, or per-column scales for rowwise."""
    blocks = config.blocks()
    if config.recipe == "rowwise":
        return quantize(weight.t(), blocks["weight_dgrad"], pow2_scales=config.pow2_scales)  # (K, N)
    return quantize(weight, blocks["weight"], pow2_scales=config.pow2_scales).t()  # (K, N), exact transpose


class _FP8LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, config: FP8Config, backend: Backend):  # x (M, K), weight (N, K)
        blocks = config.blocks()
        xq = quantize(x, blocks["act"], pow2_scales=config.pow2_scales)  # partial last tile when K % 128
        wq = quantize(weight, blocks["weight"], pow2_scales=config.pow2_scales)
        y = fp8_matmul(xq, wq, backend=backend)  # (M, N) fp32
        if bias is not None:
            y = y + bias.float()
        ctx.config, ctx.backend, ctx.x_dtype = config, backend, x.dtype
        ctx.xt_block = None
        if ctx.needs_input_grad[1]:
            # x^T in 1x128 tiles along M (128x1 tiles of x), quantised from full precision and kept in FP8.
            xt = xq.t() if config.recipe == "tensorwise" else quantize(
                x.t(), blocks["act_wgrad"], pow2_scales=config.pow2_scales
            )  # (K, M), partial last tile when M % 128
            ctx.xt_block = xt.block
            ctx.save_for_backward(xt.data, xt.scale, weight)
        else:
            ctx.save_for_backward(weight)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, dy):  # dy (M, N)
        with torch.autocast(dy.device.type, enabled=False):
            return _FP8LinearFunction._backward(ctx, dy)

    @staticmethod
    def _backward(ctx, dy):  # dy (M, N)
        config: FP8Config = ctx.config
        blocks = config.blocks()
        weight = ctx.saved_tensors[-1]
        rounding = {"stochastic": config.stochastic_rounding, "pow2_scales": config.pow2_scales}
        g = dy.float()  # (M, N)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            gq = quantize(g, blocks["grad"], config.grad_format, **rounding)  # along N
            dx = fp8_matmul(gq, _weight_for_dgrad(weight, config), backend=ctx.backend)  # (M, K)
            dx = dx.to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            xt_data, xt_scale = ctx.saved_tensors[:2]
            xtq = QuantizedTensor(xt_data, xt_scale, ctx.xt_block)  # (K, M)
            gtq = quantize(g.t(), blocks["grad_wgrad"], config.grad_format, **rounding)  # (N, M) along M
            dw = fp8_matmul(gtq, xtq, backend=ctx.backend).to(weight.dtype)  # (N, K)
        if ctx.needs_input_grad[2]:
            db = dy.float().sum(0).to(weight.dtype)  # (N,)
        return dx, dw, db, None, None


def fp8_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, config: FP8Config | None = None
) -> torch.Tensor:
    """Functional FP8 ``F.linear``: ``x @ weight.T + bias`` with all three GEMMs in FP8.

    Args:
        x: Input (..., K).
        weight: FP32 master weight (N, K).
        bias: Optional bias (N,).
        config: FP8 settings (default: the blockwise recipe).

    Returns:
        Output (..., N) in ``x.dtype``.

    Example:
        >>> x, w = torch.randn(4, 16, requires_grad=True), torch.randn(32, 16, requires_grad=True)
        >>> y = fp8_linear(x, w, config=FP8Config(recipe="blockwise", block_size=16))
        >>> y.sum().backward()
        >>> y.shape, x.grad.shape, w.grad.shape
        (torch.Size([4, 32]), torch.Size([4, 16]), torch.Size([32, 16]))
    """
    config = config or FP8Config()
    if x.numel() == 0:
        return torch.nn.functional.linear(x, weight, bias)
    backend = resolve_backend(config, x.device)
    with torch.autocast(x.device.type, enabled=False):  # FP8 GEMMs must not be recast by autocast
        y = _FP8LinearFunction.apply(x.reshape(-1, x.shape[-1]), weight, bias, config, backend)  # (M, N)
    return y.reshape(*x.shape[:-1], weight.shape[0])  # (..., N)


class FP8Linear(nn.Linear):
    """``nn.Linear`` computing forward, input-gradient and weight-gradient GEMMs in FP8.

    Parameters are the usual FP32 ``weight`` (out, in) and ``bias``; ``fp8_config`` holds the recipe.

    Example:
        >>> layer = FP8Linear(256, 128, config=FP8Config(recipe="blockwise"))
        >>> layer(torch.randn(2, 3, 256)).shape
        torch.Size([2, 3, 128])
        >>> layer.weight.dtype
        torch.float32
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        config: FP8Config | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.fp8_config = config or FP8Config()

    @classmethod
    def from_linear(cls, linear: nn.Linear, config: FP8Config | None = None) -> FP8Linear:
        """Wrap an existing ``nn.Linear``, sharing (not copying) its parameters.

        Sharing keeps optimiser state and any other references to ``linear.weight`` valid.

        Example:
            >>> lin = nn.Linear(32, 16)
            >>> FP8Linear.from_linear(lin).weight is lin.weight
            True
        """
        new = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta",
                  config=config)
        new.weight = linear.weight
        new.bias = linear.bias
        new.train(linear.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp8_linear(x, self.weight, self.bias, self.fp8_config)

    def extra_repr(self) -> str:
        c = self.fp8_config
        return f"{super().extra_repr()}, recipe={c.recipe}, backend={c.backend}, grad_format={c.grad_format}"
