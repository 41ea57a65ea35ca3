"""The bundled DeepSeek-V3-style policy behind the trainer's :class:`rlenv.train.policy.Policy` interface.

Key idea: a thin adapter. Generation is ``policies.generate`` (latent KV cache, batched, stop strings,
per-token log-probs at the rollout temperature, MoE routing when asked); scoring is one forward of
``policies.Transformer`` with ``attention_mask`` (left padding, positions count real tokens) and, for MoE
models, the rollout's routing replayed. Multi-token-prediction heads are not used by RL (``with_mtp=False``).

Left out on purpose: the MTP loss (used by pretraining, :mod:`rlenv.train.pretrain`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from rlenv.train.policy import KIND_FILE, Packed, Policy, Rollouts, SamplingParams

__all__ = ["PRESETS", "BundledPolicy"]

PRESETS = ("tiny", "small")


def is_preset(spec: str) -> bool:
    """Whether ``spec`` names a bundled preset (optionally with overrides).

    Example:
        >>> is_preset("tiny"), is_preset("small:max_seq_len=1024"), is_preset("runs/x")
        (True, True, False)
    """
    return spec.split(":", 1)[0] in PRESETS


def preset_config(spec: str, config_class: Any) -> Any:
    """The ``ModelConfig`` of ``"preset"`` or ``"preset:field=value,..."`` (values cast to field types)."""
    name, _, overrides = spec.partition(":")
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is not one of {PRESETS}")
    config = getattr(config_class, name)()
    changes: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in overrides.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not hasattr(config, key):
            hint = "use field=value with a ModelConfig field"
            raise ValueError(f"bad preset override {item!r} in {spec!r}; {hint}")
        current = getattr(config, key)
        if isinstance(current, bool):
            changes[key] = value.lower() in ("1", "true", "yes")
        else:
            changes[key] = type(current)(value)
    return dataclasses.replace(config, **changes)


def _tokenizer() -> Any:
    import policies

    return policies.Tokenizer()


def _eos_id(tokenizer: Any) -> int | None:
    for name in ("eos_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return None


def _pad_id(tokenizer: Any) -> int:
    for name in ("pad_id", "pad_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


class BundledPolicy(Policy):
    """``policies.Transformer`` + ``policies.Tokenizer``.

    Args:
        model: The transformer.
        tokenizer: The bundled tokenizer (``encode``, ``decode``, EOS / pad ids).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any) -> None:
        self.module = model
        self.tokenizer = tokenizer
        self.eos_id = _eos_id(tokenizer)
        self.pad_id = _pad_id(tokenizer)
        self.is_moe = bool(getattr(model, "moe_layers", []))
        self.num_experts = int(getattr(model.config, "n_routed_experts", 0)) if self.is_moe else 0

    @classmethod
    def from_preset(cls, spec: str, *, device: str | torch.device = "cpu", seed: int = 0) -> BundledPolicy:
        """A freshly initialised model of a preset, seeded by ``seed``; ``spec`` is ``"tiny"``, ``"small"`` or
        a preset with ``ModelConfig`` overrides, e.g. ``"tiny:max_seq_len=1024,n_layers=4"``."""
        import policies

        config = preset_config(spec, policies.ModelConfig)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = policies.Transformer(config)
        return cls(model.to(device), _tokenizer())

    @classmethod
    def from_directory(cls, directory: str, device: str | torch.device = "cpu") -> BundledPolicy:
        """Loads a model written by :meth:`save` (``policies.save_model``)."""
        import policies

        return cls(policies.load_model(directory).to(device), _tokenizer())

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def forward_logits(
        self, packed: Packed, routing: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = packed.tokens.to(self.device)  # (B, P + C)
        mask = packed.attention_mask.to(self.device)  # (B, P + C)
        out = self.module(tokens, attention_mask=mask, routing=routing, return_aux=True, with_mtp=False)
        return out.logits, out.aux_loss

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> Rollouts:
        import policies

        prompt_ids = [self.encode(p) for p in prompts for _ in range(n)]
        generator = None
        if sampling.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(sampling.seed)
        out = policies.generate(
            self.module,
            prompt_ids,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            stop_token_ids=(self.eos_id,) if self.eos_id is not None else (),
            stop_strings=sampling.stop_strings,
            tokenizer=self.tokenizer,
            return_routing=sampling.return_routing and self.is_moe,
            generator=generator,
            pad_id=self.pad_id,
        )
        texts = out.texts if out.texts is not None else [self.decode(t) for t in out.tokens]
        return Rollouts(
            prompt_ids=prompt_ids,
            completion_ids=[list(t) for t in out.tokens],
            logprobs=[list(lp) for lp in out.logprobs],
            finished=list(out.finished),
            texts=list(texts),
            routing=[r.cpu() for r in out.routing] if out.routing is not None else None,
        )

    def after_optimizer_step(self) -> dict[str, float]:
        """DeepSeek-V3's auxiliary-loss-free expert-bias update (MoE only); returns its load statistics."""
        update = getattr(self.module, "update_expert_bias", None)
        return update() if (self.is_moe and update is not None) else {}

    def save(self, directory: str) -> None:
        import policies

        os.makedirs(directory, exist_ok=True)
        policies.save_model(self.module, directory)
        with open(os.path.join(directory, KIND_FILE), "w") as f:
            json.dump({"kind": "bundled"}, f)
