"""Optimiser, schedule, precision and seeding shared by every training stage.

Key idea: AdamW with decoupled weight decay on matrices only, linear warmup then cosine decay to
``min_lr_ratio * lr``, global-norm gradient clipping, and a guard that skips the update (and says so) when the
loss or the gradient norm is NaN/inf instead of corrupting the weights. Mixed precision is bf16 autocast where
the device supports it (fp32 master weights, no loss scaling needed for bf16); FP8 goes through
``policies.fp8.convert_to_fp8`` when asked.

References: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019);
nanoGPT's ``configure_optimizers``.

Left out on purpose: fp16 with loss scaling, ZeRO / sharded optimisers, fused optimisers (torch's fused AdamW
is ~2% of an SFT step faster on a CPU and correct since decode weights stopped being cached across calls; off
so that the recipes' measured figures stand, docs/recipes-history.md sessions 15-16).
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from rlenv.train.config import OptimConfig

__all__ = [
    "StepResult",
    "autocast",
    "build_optimizer",
    "build_scheduler",
    "maybe_fp8",
    "optimizer_step",
    "resolve_device",
    "seed_everything",
]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu.

    Example:
        >>> resolve_device("cpu").type
        'cpu'
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available; use device='auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch (all devices) in one visible place."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``precision`` is "bf16" (or "auto" on a bf16-capable GPU), else a null context."""
    use_bf16 = precision == "bf16" or (
        precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def width_multiple(precision: str, device: torch.device) -> int:
    """Multiple to round padded batch widths up to: 32 under bf16 autocast on a CPU, else 1.

    Why: for bf16 on a CPU, PyTorch's oneDNN backend compiles and caches a kernel per GEMM shape, so batches
    of ever-new widths grow the process without bound and pay a compilation each time (400 SFT steps of
    the small policy, widths 150-384: 3.5 GB resident and no faster than fp32, against 1.1 GB for fp32).
    Rounding to a multiple of 32 leaves at most eight widths in that range; the extra positions are padding
    (masked out of attention and loss).

    Example:
        >>> width_multiple("bf16", torch.device("cpu")), width_multiple("fp32", torch.device("cpu"))
        (32, 1)
    """
    return 32 if precision == "bf16" and device.type == "cpu" else 1


def maybe_fp8(module: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """Converts linear layers to FP8 with ``policies.fp8.convert_to_fp8`` when ``enabled``."""
    if not enabled:
        return module
    try:
        from policies.fp8 import convert_to_fp8
    except ImportError as error:
        raise ValueError(f"fp8=True needs policies.fp8.convert_to_fp8, unavailable: {error}") from None
    return convert_to_fp8(module)


def build_optimizer(module: torch.nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW; weight decay only on parameters with >= 2 dims that are not embeddings."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        is_embedding = "embed" in name or "wte" in name
        (decay if param.dim() >= 2 and not is_embedding else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2), eps=1e-8)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup then cosine decay to ``min_ratio``.

    Example:
        >>> [round(lr_factor(s, 2, 10, 0.1), 3) for s in (0, 1, 2, 10)]
        [0.5, 1.0, 1.0, 0.1]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_updates: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup + cosine schedule over ``total_updates`` optimiser updates."""
    warmup, ratio = config.warmup_steps, config.min_lr_ratio
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total_updates, ratio)
    )


@dataclass(frozen=True)
class StepResult:
    """Outcome of one optimiser step: the gradient norm before clipping and whether it was skipped."""

    grad_norm: float
    skipped: bool


def optimizer_step(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
    *,
    loss_finite: bool = True,
) -> StepResult:
    """Clips, checks and applies the accumulated gradients; skips the update on NaN/inf.

    Args:
        module: The model whose ``.grad`` are accumulated (and already all-reduced).
        optimizer: Its optimiser.
        scheduler: Its schedule (advanced only when the update is applied).
        max_grad_norm: Clip threshold; 0 = measure without clipping.
        loss_finite: False when a micro-batch loss was NaN/inf (the update is skipped).

    Returns:
        The :class:`StepResult`.
    """
    params = [p for p in module.parameters() if p.grad is not None]
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, limit) if params else torch.zeros(())
    norm_value = float(norm)
    skipped = not loss_finite or not math.isfinite(norm_value)
    if not skipped:
        optimizer.step()
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(grad_norm=norm_value, skipped=skipped)
