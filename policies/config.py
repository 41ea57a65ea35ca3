"""Model configuration for the bundled DeepSeek-V3-style policy.

Field names follow ``ModelArgs`` in DeepSeek-V3's reference ``inference/model.py`` so a reader can hold the
paper (arXiv:2412.19437) beside the code: MLA (``q_lora_rank``, ``kv_lora_rank``, ``qk_nope_head_dim``,
``qk_rope_head_dim``, ``v_head_dim``), DeepSeekMoE (``n_routed_experts``, ``n_shared_experts``,
``n_activated_experts``, ``route_scale``, ``n_expert_groups``/``n_limited_groups``), and the training-only
knobs the reference code leaves out because it is inference-only: auxiliary-loss-free balancing speed
(``bias_update_speed``, the paper's gamma), the sequence-wise balance loss weight (``seq_aux_loss_alpha``),
the multi-token-prediction depth and loss weight (``n_mtp_modules``, ``mtp_loss_weight``) and selective
recomputation (``recompute``).

Left out on purpose: YaRN context extension (``rope_factor``, ``beta_fast`` ...): the bundled model is trained
at its own context length. ``max_batch_size`` and ``dtype`` are not model properties here: generation sizes
its cache per call and the dtype is the parameters' dtype.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

_SCORE_FUNCS = ("sigmoid", "softmax")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture of a DeepSeek-V3-style decoder (MLA attention, DeepSeekMoE, optional MTP).

    Example:
        >>> cfg = ModelConfig.tiny()
        >>> cfg.qk_head_dim, cfg.n_moe_layers
        (12, 1)
        >>> ModelConfig(n_heads=0)
        Traceback (most recent call last):
        ...
        ValueError: n_heads=0 must be >= 1
    """

    vocab_size: int = 263
    """Number of token ids (the bundled byte-level ``Tokenizer`` has 263)."""
    dim: int = 128
    """Model width (residual stream size)."""
    inter_dim: int = 384
    """Hidden size of the dense SwiGLU MLP used in the first ``n_dense_layers`` layers."""
    moe_inter_dim: int = 96
    """Hidden size of each (fine-grained) routed and shared expert."""
    n_layers: int = 4
    """Number of transformer blocks in the main model."""
    n_dense_layers: int = 1
    """The first this-many blocks use a dense MLP instead of MoE (DeepSeek-V3 uses 3 of 61)."""
    n_heads: int = 4
    """Attention heads."""
    n_routed_experts: int = 8
    """Routed experts per MoE layer (0 makes every layer dense)."""
    n_shared_experts: int = 1
    """Shared experts per MoE layer, always active (implemented as one MLP of width n * moe_inter_dim)."""
    n_activated_experts: int = 2
    """Routed experts chosen per token (top-k)."""
    n_expert_groups: int = 1
    """Expert groups for group-limited routing (1 = plain top-k over all experts)."""
    n_limited_groups: int = 1
    """Groups a token may route to when ``n_expert_groups`` > 1 (node-limited routing)."""
    score_func: Literal["sigmoid", "softmax"] = "sigmoid"
    """Gate affinity function: DeepSeek-V3 uses sigmoid (V2 used softmax)."""
    route_scale: float = 1.0
    """Routed scaling factor multiplying the normalised gate weights (2.5 in DeepSeek-V3)."""
    q_lora_rank: int = 0
    """Rank of the low-rank query compression (0 = no query compression, like DeepSeek-V2-Lite)."""
    kv_lora_rank: int = 32
    """Size of the key/value latent ``c_kv``; with ``qk_rope_head_dim`` it is all the cache holds."""
    qk_nope_head_dim: int = 32
    """Per-head query/key size without positional encoding."""
    qk_rope_head_dim: int = 16
    """Size of the decoupled RoPE query (per head) and shared RoPE key."""
    v_head_dim: int = 32
    """Per-head value size."""
    rope_theta: float = 10000.0
    """RoPE base frequency."""
    max_seq_len: int = 512
    """Longest sequence (prompt + completion) the model is used with; sizes the RoPE table."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    n_mtp_modules: int = 1
    """Sequential multi-token-prediction modules (0 = none); module k predicts token i + k + 1."""
    mtp_loss_weight: float = 0.3
    """Weight (the paper's lambda) of the mean MTP cross-entropy added to the main loss."""
    bias_update_speed: float = 1e-3
    """Auxiliary-loss-free balancing speed gamma: each expert bias moves by +-gamma per update."""
    seq_aux_loss_alpha: float = 1e-4
    """Weight alpha of the complementary sequence-wise balance loss (0 disables it)."""
    recompute: bool = False
    """Selective recomputation: recompute RMSNorm and the MLA up-projections in backward (saves memory)."""
    init_std: float = 0.02
    """Standard deviation of the normal weight initialisation."""

    def __post_init__(self) -> None:
        positive = (
            "vocab_size",
            "dim",
            "inter_dim",
            "moe_inter_dim",
            "n_layers",
            "n_heads",
            "kv_lora_rank",
            "qk_nope_head_dim",
            "qk_rope_head_dim",
            "v_head_dim",
            "max_seq_len",
            "n_expert_groups",
            "n_limited_groups",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        non_negative = (
            "n_dense_layers",
            "n_routed_experts",
            "n_shared_experts",
            "q_lora_rank",
            "n_mtp_modules",
            "mtp_loss_weight",
            "bias_update_speed",
            "seq_aux_loss_alpha",
            "route_scale",
            "norm_eps",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if self.qk_rope_head_dim % 2:
            raise ValueError(f"qk_rope_head_dim={self.qk_rope_head_dim} must be even (RoPE rotates pairs)")
        if self.n_dense_layers > self.n_layers:
            raise ValueError(f"n_dense_layers={self.n_dense_layers} must be <= n_layers={self.n_layers}")
        if self.score_func not in _SCORE_FUNCS:
            raise ValueError(f"score_func={self.score_func!r} must be one of {_SCORE_FUNCS}")
        if self.n_routed_experts:
            self._check_routing()

    def _check_routing(self) -> None:
        if not 1 <= self.n_activated_experts <= self.n_routed_experts:
            raise ValueError(
                f"n_activated_experts={self.n_activated_experts} must be in "
                f"[1, n_routed_experts={self.n_routed_experts}]"
            )
        if self.n_routed_experts % self.n_expert_groups:
            raise ValueError(
                f"n_expert_groups={self.n_expert_groups} must divide n_routed_experts={self.n_routed_experts}"
            )
        if self.n_limited_groups > self.n_expert_groups:
            raise ValueError(
                f"n_limited_groups={self.n_limited_groups} must be <= n_expert_groups={self.n_expert_groups}"
            )
        per_group = self.n_routed_experts // self.n_expert_groups
        if self.n_limited_groups * per_group < self.n_activated_experts:
            raise ValueError(
                f"n_limited_groups={self.n_limited_groups} groups of {per_group} experts cannot "
                f"hold n_activated_experts={self.n_activated_experts}"
            )

    # Derived sizes --------------------
    @property
    def qk_head_dim(self) -> int:
        """Per-head query/key size: ``qk_nope_head_dim + qk_rope_head_dim``."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def n_moe_layers(self) -> int:
        """Number of main-model blocks with an MoE feed-forward."""
        return self.n_layers - self.n_dense_layers if self.n_routed_experts else 0

    @property
    def kv_cache_dim(self) -> int:
        """Floats cached per token per layer by MLA: ``kv_lora_rank + qk_rope_head_dim``."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    def is_moe_layer(self, layer_id: int) -> bool:
        """Whether block ``layer_id`` uses MoE (MTP blocks use ``layer_id >= n_layers``)."""
        return self.n_routed_experts > 0 and layer_id >= self.n_dense_layers

    # Presets --------------------
    @classmethod
    def tiny(cls, **overrides: Any) -> ModelConfig:
        """A few-thousand-parameter config exercising MLA (with query compression), MoE and MTP; for tests."""
        base = dict(
            dim=32,
            inter_dim=64,
            moe_inter_dim=16,
            n_layers=2,
            n_dense_layers=1,
            n_heads=2,
            n_routed_experts=4,
            n_shared_experts=1,
            n_activated_experts=2,
            q_lora_rank=16,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=4,
            v_head_dim=8,
            max_seq_len=128,
            n_mtp_modules=1,
            route_scale=1.0,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> ModelConfig:
        """About 2M parameters (about 1M active per token): the CPU default for countdown/arithmetic runs."""
        return cls(**overrides)

    # Serialisation --------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from ``to_dict`` output; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; allowed: {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        """JSON text of ``to_dict``."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
