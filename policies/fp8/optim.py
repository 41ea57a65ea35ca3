"""AdamW with BF16 optimizer moments (DeepSeek-V3 §3.3.4, "Low-Precision Optimizer States").

What: :class:`AdamWBF16`, decoupled-weight-decay Adam whose first and second moments are *stored* in BF16
(half the optimizer memory of FP32 moments) while the parameters stay FP32 masters and every update is
computed in FP32.

Key idea: ``torch.optim.AdamW`` allocates its moments with the parameter's dtype and has no option to
store them in a lower precision (BF16 moments there imply BF16 weights), so this small optimizer keeps
``exp_avg`` / ``exp_avg_sq`` in ``moment_dtype``, upcasts them for the update, and rounds them back
(round-to-nearest) afterwards. DeepSeek-V3 reports no observable degradation from BF16 moments.

References: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (arXiv:1711.05101); DeepSeek-V3
Technical Report (arXiv:2412.19437) §3.3.4.

Left out on purpose: ``amsgrad``, ``foreach``/fused kernels, sparse gradients and complex parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["AdamWBF16"]


class AdamWBF16(torch.optim.Optimizer):
    """AdamW with moments stored in BF16 (or ``moment_dtype``) and FP32 update math.

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate.
        betas: Coefficients of the first and second moment running averages.
        eps: Denominator term for numerical stability.
        weight_decay: Decoupled weight decay coefficient.
        moment_dtype: Storage dtype of the moments (``torch.bfloat16``; ``torch.float32`` gives plain AdamW).

    Raises:
        ValueError: for out-of-range hyper-parameters.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = AdamWBF16([w], lr=0.1, weight_decay=0.0)
        >>> w.sum().backward(); opt.step()
        >>> w.detach(), opt.state[w]["exp_avg"].dtype
        (tensor([0.9000, 0.9000, 0.9000]), torch.bfloat16)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        moment_dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"lr={lr} must be >= 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas={betas} must each be in [0, 1)")
        if not eps >= 0.0:
            raise ValueError(f"eps={eps} must be >= 0")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay={weight_decay} must be >= 0")
        if not moment_dtype.is_floating_point:
            raise ValueError(f"moment_dtype={moment_dtype} must be a floating dtype, e.g. torch.bfloat16")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        defaults["moment_dtype"] = moment_dtype
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One AdamW update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("AdamWBF16 does not support sparse gradients")
                self._update(p, group, beta1, beta2)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any], beta1: float, beta2: float) -> None:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=group["moment_dtype"])
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=group["moment_dtype"])
        state["step"] += 1
        step = state["step"]
        grad = p.grad.float()
        exp_avg = state["exp_avg"].float().lerp_(grad, 1.0 - beta1)
        exp_avg_sq = state["exp_avg_sq"].float().mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        state["exp_avg"].copy_(exp_avg)
        state["exp_avg_sq"].copy_(exp_avg_sq)
        if group["weight_decay"]:
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        denom = (exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2**step)).add_(group["eps"])
        update = exp_avg / denom * (group["lr"] / (1.0 - beta1**step))
        p.sub_(update.to(p.dtype))
