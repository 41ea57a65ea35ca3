"""The bundled policy: a DeepSeek-V3-style decoder-only transformer (MLA + DeepSeekMoE + MTP).

Key idea: the reference DeepSeek-V3 ``Transformer`` (``embed`` -> ``layers`` -> ``norm`` -> ``head``) made
trainable: left-padding masks with RoPE positions counting real tokens only, MoE routing returned and replayed
(GRPO needs the rollout's expert choices in the training forward, otherwise the log-probs of the same tokens
disagree), the sequence-wise balance loss and multi-token-prediction logits returned as auxiliaries, the
auxiliary-loss-free expert bias updated by ``update_expert_bias()`` after each optimiser step, and selective
recomputation. A latent ``KVCache`` turns the same forward into prefill/decode steps for
``policies.generate``.

References: DeepSeek-V3 technical report (arXiv:2412.19437) and its ``inference/model.py``.
Left out: tensor/expert parallelism, FP8 (``policies.fp8`` converts linears), YaRN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from policies.block import Block
from policies.cache import KVCache
from policies.config import ModelConfig
from policies.moe import MoE
from policies.mtp import MTPModule
from policies.norm import RMSNorm
from policies.rope import rope_at


@dataclass
class TransformerOutput:
    """What ``Transformer.forward(..., return_aux=True)`` returns."""

    logits: torch.Tensor
    """(B, T, V) next-token logits."""
    routing: list[torch.Tensor] | None
    """Per MoE layer of the main model, (B, T, top_k) long expert indices; None without MoE layers."""
    aux_loss: torch.Tensor
    """Scalar sequence-wise balance loss (summed over MoE layers; 0 when not training or alpha = 0)."""
    mtp_logits: list[torch.Tensor] | None
    """Per MTP depth k (1-based), (B, T - k, V): position i predicts token i + k + 1. None if not computed."""
    hidden: torch.Tensor
    """(B, T, dim) final hidden states before the output norm (input of the MTP modules)."""


class Transformer(nn.Module):
    """DeepSeek-V3-style decoder. ``model(tokens)`` -> logits (B, T, V).

    Example:
        >>> torch.manual_seed(0) and None
        >>> model = Transformer(ModelConfig.tiny())
        >>> tokens = torch.tensor([[0, 0, 5, 6], [1, 2, 3, 4]])
        >>> model(tokens).shape
        torch.Size([2, 4, 263])
        >>> out = model(tokens, attention_mask=(tokens > 0).long(), return_aux=True)
        >>> [r.shape for r in out.routing], out.mtp_logits[0].shape
        ([torch.Size([2, 4, 2])], torch.Size([2, 3, 263]))
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList([Block(i, config) for i in range(config.n_layers)])
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.head = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.mtp = nn.ModuleList([MTPModule(k, config) for k in range(1, config.n_mtp_modules + 1)])
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, init_std) weights, output projections scaled by 1/sqrt(2 n_layers), unit norm gains."""
        std = self.config.init_std
        for name, p in self.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)  # RMSNorm gains
            elif name.endswith(("wo.weight", "w2.weight", "w2")):
                nn.init.normal_(p, std=std / (2 * self.config.n_layers) ** 0.5)
            else:
                nn.init.normal_(p, std=std)
        for module in self.modules():
            if isinstance(module, MoE):
                module.gate.bias.zero_()

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin (B, T, qk_rope_head_dim / 2) at ``positions`` (B, T)."""
        return rope_at(positions, self.config.qk_rope_head_dim, self.config.rope_theta)

    @property
    def moe_layers(self) -> list[MoE]:
        """The MoE feed-forwards of the main model, in layer order."""
        return [layer.ffn for layer in self.layers if isinstance(layer.ffn, MoE)]

    # Forward --------------------
    def forward(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        routing: list[torch.Tensor] | None = None,
        return_aux: bool = False,
        *,
        cache: KVCache | None = None,
        with_mtp: bool = True,
        absorb: bool | None = None,
    ) -> torch.Tensor | TransformerOutput:
        """Run the decoder.

        Args:
            tokens: (B, T) ids.
            attention_mask: (B, T) 1 = real token, 0 = padding, left (generation) or right (training batches,
                which then need no attention mask). Positions count real tokens only.
            routing: Per MoE layer, (B, T, top_k) expert indices to replay (entries < 0 are routed normally).
            return_aux: Return a ``TransformerOutput`` instead of bare logits.
            cache: Latent KV cache; ``tokens`` are then the new tokens appended after the cached ones.
            with_mtp: Compute MTP logits when ``return_aux`` (and the model has MTP modules, no cache).
            absorb: Force the absorbed MLA core (True) or the expanded one (False); default: absorbed only for
                cached decoding.

        Returns:
            logits (B, T, V), or a ``TransformerOutput`` when ``return_aux``.
        """
        mask, token_mask, positions = self._masks(tokens, attention_mask, cache)
        cos, sin = self.rope(positions)  # (B, T, dr/2)
        h, moe_routing, aux = self._trunk(
            self.embed(tokens), cos, sin, mask, token_mask, routing, cache, absorb
        )
        logits = self.head(self.norm(h))  # (B, T, V)
        if not return_aux:
            return logits
        mtp_logits = None
        if with_mtp and len(self.mtp) and cache is None:
            mtp_logits, mtp_aux = self._mtp_forward(h, tokens, cos, sin, mask, token_mask)
            aux = aux + mtp_aux
        return TransformerOutput(
            logits=logits, routing=moe_routing or None, aux_loss=aux, mtp_logits=mtp_logits, hidden=h
        )

    def features(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        routing: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Final normalised hidden states (B, T, dim), i.e. the head's input, and the MoE routing."""
        mask, token_mask, positions = self._masks(tokens, attention_mask, None)
        cos, sin = self.rope(positions)  # (B, T, dr/2)
        h, moe_routing, _ = self._trunk(self.embed(tokens), cos, sin, mask, token_mask, routing, None, None)
        return self.norm(h), moe_routing

    def _masks(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None, cache: KVCache | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """Key-visibility mask (B, T, S) or None, token mask (B, T) or None, and positions (B, T)."""
        bsz, seqlen = tokens.shape
        if cache is not None:
            real = (
                torch.ones_like(tokens, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
            )
            positions, visible = cache.prepare(real)
            return visible, real, positions
        if attention_mask is None or bool(attention_mask.all()):
            positions = torch.arange(seqlen, device=tokens.device).expand(bsz, -1)  # (B, T)
            return None, attention_mask, positions
        real = attention_mask.bool()  # (B, T)
        if not bool((real[:, 1:] & ~real[:, :-1]).any()):
            # Right padding only (pretraining and SFT batches): plain causal attention is exact for every
            # real token, and without a (B, T, T) mask SDPA takes its fused kernel (SFT steps 20-35% faster
            # on a CPU).
            positions = torch.arange(seqlen, device=tokens.device).expand(bsz, -1)  # (B, T)
            return None, real, positions
        positions = (real.long().cumsum(1) - 1).clamp(min=0)  # (B, T)
        causal = torch.ones(seqlen, seqlen, dtype=torch.bool, device=tokens.device).tril()  # (T, T)
        eye = torch.eye(seqlen, dtype=torch.bool, device=tokens.device)  # (T, T) pads see themselves
        visible = causal[None] & (real[:, None, :] | eye[None])  # (B, T, T)
        return visible, real, positions

    def _trunk(
        self,
        h: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        token_mask: torch.Tensor | None,
        routing: list[torch.Tensor] | None,
        cache: KVCache | None,
        absorb: bool | None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        n_moe = sum(layer.is_moe for layer in self.layers)
        if routing is not None and len(routing) != n_moe:
            raise ValueError(f"routing has {len(routing)} entries; the model has {n_moe} MoE layers")
        moe_routing: list[torch.Tensor] = []
        aux = h.new_zeros((), dtype=torch.float32)
        for i, layer in enumerate(self.layers):
            replay = routing[len(moe_routing)] if (routing is not None and layer.is_moe) else None
            h, indices, layer_aux = layer(
                h,
                cos,
                sin,
                mask=mask,
                token_mask=token_mask,
                routing=replay,
                cache=cache,
                cache_layer=i,
                absorb=absorb,
            )
            aux = aux + layer_aux
            if indices is not None:
                moe_routing.append(indices)
        return h, moe_routing, aux

    def _mtp_forward(
        self,
        h: torch.Tensor,
        tokens: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        token_mask: torch.Tensor | None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        logits, aux = [], h.new_zeros((), dtype=torch.float32)
        for k, module in enumerate(self.mtp, start=1):
            n = tokens.shape[1] - k
            if n <= 0:
                break
            x = module.combine(h[:, :n], self.embed(tokens[:, k:]))  # (B, T - k, dim)
            sub_mask = None if mask is None else mask[:, :n, :n]
            sub_tokens = None if token_mask is None else token_mask[:, :n]
            h, _, layer_aux = module.block(x, cos[:, :n], sin[:, :n], mask=sub_mask, token_mask=sub_tokens)
            logits.append(self.head(module.norm(h)))  # (B, T - k, V)
            aux = aux + layer_aux
        return logits, aux

    # Training utilities --------------------
    def update_expert_bias(self, speed: float | None = None) -> dict[str, float]:
        """Apply the auxiliary-loss-free bias update to every gate (call after each optimiser step).

        Args:
            speed: gamma; defaults to ``config.bias_update_speed``.

        Returns:
            MaxVio statistics (``moe/max_violation``...) of the loads the update used (empty without MoE).

        Example:
            >>> model = Transformer(ModelConfig.tiny()).train()
            >>> _ = model(torch.randint(0, 263, (2, 8)))  # logits only: the MTP block does not run
            >>> sorted(model.update_expert_bias())
            ['moe/max_violation', 'moe/max_violation/0']
        """
        speed = self.config.bias_update_speed if speed is None else speed
        loads = [m.ffn.gate.update_bias(speed) for m in self._moe_blocks()]
        return _load_stats(loads)

    def expert_load(self) -> dict[str, float]:
        """Load statistics since the last bias update (``moe/max_violation`` etc.), for logging."""
        loads = [m.ffn.gate.load / m.ffn.gate.load.sum().clamp(min=1) for m in self._moe_blocks()]
        return _load_stats(loads)

    def _moe_blocks(self) -> list[Block]:
        blocks = [layer for layer in self.layers if layer.is_moe]
        return blocks + [m.block for m in self.mtp if m.block.is_moe]


def _load_stats(loads: list[torch.Tensor]) -> dict[str, float]:
    """MaxVio (max load / mean load - 1, the paper's balance metric) per layer and overall."""
    stats: dict[str, float] = {}
    for i, load in enumerate(loads):
        if float(load.sum()) > 0:
            stats[f"moe/max_violation/{i}"] = float(load.max() / load.mean() - 1)
    if stats:
        stats["moe/max_violation"] = max(stats.values())
    return stats
