"""``convert_to_fp8``: swap a model's eligible linear layers for FP8 ones, keep the sensitive ones.

What: walks a model (the bundled :class:`policies.Transformer` or any ``nn.Module``), replaces each eligible
``nn.Linear`` with an :class:`~policies.fp8.linear.FP8Linear` and the stacked routed experts
(``policies.moe.Experts``) with :class:`FP8Experts`, sharing the existing parameters (optimiser state and
checkpoints stay valid), and returns the model with an :class:`FP8Report` of what changed attached as
``model.fp8_report``.

Key idea (DeepSeek-V3 §3.3.1, "Mixed precision framework"): the bulk of the FLOPs (attention projections,
MLPs, experts) runs in FP8, while the components that are cheap but sensitive stay in high precision:
the embedding (``embed``), the output head (``head``), the MoE gate/router (``gate``), every norm, and the
attention core (softmax(QK^T)V, which is no ``nn.Linear`` and is never touched). Shapes never exclude a
linear: a dimension that is not a multiple of the 128 tile/block gets a partial last tile/block on every
backend (CPU emulation natively; CUDA by zero-padding the FP8 codes to the kernels' alignment, see
:func:`policies.fp8.gemm.cuda_scaled_mm`). Absorbed MLA decoding reads ``wkv_b.weight`` directly and so
still uses the FP32 master weight.

References: DeepSeek-V3 Technical Report (arXiv:2412.19437) §3.3.1 and Figure 6.

Left out on purpose: converting back (rebuild the model and load its ``state_dict``: parameter names are
unchanged), and FP8 grouped expert GEMMs (experts run one FP8 GEMM per expert).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from policies.fp8.config import FP8Config
from policies.fp8.linear import FP8Linear, fp8_linear
from policies.moe import Experts

__all__ = ["FP8Experts", "FP8Report", "convert_to_fp8", "plan_fp8"]


class FP8Experts(Experts):
    """Routed experts (stacked SwiGLU weights) with every expert GEMM in FP8; same parameters, same API.

    Example:
        >>> experts = Experts(2, 32, 16)
        >>> _ = [nn.init.normal_(p, std=0.1) for p in experts.parameters()]
        >>> fp8 = FP8Experts.from_experts(experts, FP8Config(recipe="rowwise"))
        >>> fp8(torch.randn(5, 32), torch.tensor([3, 2])).shape
        torch.Size([5, 32])
    """

    fp8_config: FP8Config

    @classmethod
    def from_experts(cls, experts: Experts, config: FP8Config) -> FP8Experts:
        """Wrap ``experts``, sharing its ``w1``/``w2``/``w3`` parameters."""
        n, inter, dim = experts.w1.shape
        with torch.device("meta"):
            new = cls(n, dim, inter)
        new.w1, new.w2, new.w3 = experts.w1, experts.w2, experts.w3
        new.fp8_config = config
        new.train(experts.training)
        return new

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Expert e on rows ``offs[e-1]:offs[e]`` of ``x`` (M, dim) sorted by expert; ``counts`` (E,)."""
        cfg, out = self.fp8_config, []
        for e, seg in enumerate(x.split(counts.tolist())):
            gate = F.silu(fp8_linear(seg, self.w1[e], None, cfg))  # (m, inter)
            h = gate * fp8_linear(seg, self.w3[e], None, cfg)  # (m, inter)
            out.append(fp8_linear(h, self.w2[e], None, cfg))  # (m, dim)
        return torch.cat(out)  # (M, dim)

    def extra_repr(self) -> str:
        return f"recipe={self.fp8_config.recipe}, backend={self.fp8_config.backend}"


@dataclass(frozen=True)
class FP8Report:
    """What :func:`convert_to_fp8` converted and what it kept in high precision, with reasons.

    Attributes:
        recipe: The FP8 recipe used.
        converted: Dotted names of the modules now running in FP8.
        kept: ``(name, reason)`` for every parameter-holding module left in high precision.
    """

    recipe: str
    converted: tuple[str, ...]
    kept: tuple[tuple[str, str], ...] = field(default=())

    @property
    def kept_names(self) -> set[str]:
        """Names of the modules kept in high precision."""
        return {name for name, _ in self.kept}

    def summary(self) -> str:
        """Human-readable listing (one line per module)."""
        lines = [f"FP8 recipe {self.recipe}: {len(self.converted)} modules in FP8, {len(self.kept)} kept"]
        lines += [f"  fp8   {name}" for name in self.converted]
        lines += [f"  keep  {name}: {reason}" for name, reason in self.kept]
        lines.append("  keep  attention core (softmax(QK^T)V): not a linear layer, always high precision")
        return "\n".join(lines)


def _name_reason(name: str, config: FP8Config) -> str | None:
    hits = [part for part in name.split(".") if part in config.keep_high_precision]
    return f"kept by name ({hits[0]})" if hits else None


def _other_reason(module: nn.Module) -> str:
    kind = type(module).__name__
    if isinstance(module, nn.Embedding):
        return "embedding"
    if "norm" in kind.lower():
        return "norm"
    if kind == "Gate":
        return "router/gate"
    return f"{kind}: not a linear layer"


def _decide(name: str, module: nn.Module, config: FP8Config) -> tuple[bool, str]:
    """(convert?, reason-if-kept) for one module holding parameters."""
    if isinstance(module, (FP8Linear, FP8Experts)):
        return False, "already FP8"
    if not isinstance(module, (nn.Linear, Experts)):
        return False, _other_reason(module)
    reason = _name_reason(name, config)
    return reason is None, reason or ""


def plan_fp8(model: nn.Module, config: FP8Config | None = None) -> FP8Report:
    """Dry run of :func:`convert_to_fp8`: which modules would run in FP8 and which stay, and why.

    Args:
        model: Any module.
        config: FP8 settings (default blockwise).

    Returns:
        An :class:`FP8Report` (the model is not modified).

    Example:
        >>> net = nn.Sequential(nn.Linear(100, 256), nn.LayerNorm(256), nn.Linear(256, 10))
        >>> plan_fp8(net).converted, sorted(plan_fp8(net).kept_names)  # any shape: partial 128-tiles
        (('0', '2'), ['1'])
    """
    config = config or FP8Config()
    converted, kept = [], []
    for name, module in model.named_modules():
        is_target = isinstance(module, (nn.Linear, Experts))
        if not is_target and not any(True for _ in module.parameters(recurse=False)):
            continue
        convert, reason = _decide(name, module, config)
        if convert:
            converted.append(name)
        else:
            kept.append((name, reason))
    return FP8Report(config.recipe, tuple(converted), tuple(kept))


def convert_to_fp8(
    model: nn.Module, recipe: Literal["blockwise", "rowwise", "tensorwise"] = "blockwise", **options: Any
) -> nn.Module:
    """Swap eligible linears (and stacked experts) for FP8 versions in place; return the model.

    Args:
        model: The model to convert (modified in place; parameters are shared, not copied).
        recipe: ``"blockwise"`` (DeepSeek-V3: 1x128 tiles, 128x128 blocks), ``"rowwise"`` or ``"tensorwise"``.
        **options: Any other :class:`FP8Config` field (``backend``, ``grad_format``, ``stochastic_rounding``,
            ``block_size``, ``pow2_scales``, ``keep_high_precision``).

    Returns:
        The same model; ``model.fp8_report`` holds the :class:`FP8Report`.

    Raises:
        ValueError: for an invalid recipe or option (from :class:`FP8Config`).

    Example:
        >>> net = nn.ModuleDict({"proj": nn.Linear(100, 256), "head": nn.Linear(256, 10)})
        >>> net = convert_to_fp8(net, "blockwise")
        >>> type(net["proj"]).__name__, type(net["head"]).__name__, net.fp8_report.converted
        ('FP8Linear', 'Linear', ('proj',))
    """
    config = FP8Config(recipe=recipe, **options)
    report = plan_fp8(model, config)
    modules = dict(model.named_modules())
    for name in report.converted:
        old = modules[name]
        new = FP8Linear.from_linear(old, config) if isinstance(old, nn.Linear) else FP8Experts.from_experts(
            old, config
        )
        parent_name, _, child = name.rpartition(".")
        if not name:
            raise ValueError("convert_to_fp8 got a bare nn.Linear; use FP8Linear.from_linear(linear) instead")
        setattr(modules[parent_name] if parent_name else model, child, new)
    model.fp8_report = report
    return model
