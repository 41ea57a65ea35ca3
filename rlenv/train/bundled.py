"""The bundled DeepSeek-V3-style policy behind the trainer's :class:`rlenv.train.policy.Policy` interface.

Key idea: a thin adapter. Generation is ``policies.generate`` (latent KV cache, batched, stop strings,
per-token log-probs at the rollout temperature, MoE routing when asked); scoring is a forward of
``policies.Transformer`` with, for MoE models, the rollout's routing replayed: on a CPU over whole
right-padded prompt + completion rows in passes of similar lengths (no attention mask, so the fused causal
kernel applies), otherwise, or when the prompts dominate the tokens, with each group's prompt computed once
(:mod:`rlenv.train.prefix`). Multi-token-prediction heads are not used by RL (``with_mtp=False``).

Left out on purpose: the MTP loss (used by pretraining, :mod:`rlenv.train.pretrain`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from rlenv.train.distributed import sum_over_ranks
from rlenv.train.policy import (
    KIND_FILE,
    Packed,
    Policy,
    Rollouts,
    SamplingParams,
    ScoreOutput,
    split_by_length,
    token_logprobs,
)
from rlenv.train.prefix import group_runs, shared_prefix_logits

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


_ROW_TOKEN_WORTH = 2.0
"""On a CPU a token of a right-padded prompt + completion row costs about half a token of the shared-prompt
forward (fused causal attention against attention over the latent cache with autograd: 16 countdown rows,
0.21 s vs 0.25 s for 2.0x the tokens, ``small`` preset), so rows are scored whole unless that means more than
this many times the shared-prompt tokens (long prompts, short completions)."""


class BundledPolicy(Policy):
    """``policies.Transformer`` + ``policies.Tokenizer``.

    Args:
        model: The transformer.
        tokenizer: The bundled tokenizer (``encode``, ``decode``, EOS / pad ids).
    """

    share_prompts: bool = True
    """Compute a group's shared prompt once in generation and scoring (exact; see rlenv.train.prefix)."""

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

    def score(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        routing: Sequence[torch.Tensor | None] | None = None,
        *,
        temperature: float = 1.0,
        entropy: bool = False,
    ) -> ScoreOutput:
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        rows = None if routing is None or any(r is None for r in routing) else list(routing)
        starts, _ = group_runs(prompt_ids)
        row_tokens = sum(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True))
        shared_tokens = sum(len(prompt_ids[s]) for s in starts) + sum(len(c) for c in completion_ids)
        if self.device.type == "cpu" and row_tokens <= _ROW_TOKEN_WORTH * shared_tokens:
            return self._score_rows(prompt_ids, completion_ids, rows, temperature, entropy)
        if not self.share_prompts or len(starts) == len(prompt_ids):
            return super().score(
                prompt_ids, completion_ids, routing, temperature=temperature, entropy=entropy
            )
        logits, targets, aux = shared_prefix_logits(
            self.module, prompt_ids, completion_ids, rows, self.pad_id
        )
        width = targets.shape[1]
        mask = torch.tensor([[1.0] * len(c) + [0.0] * (width - len(c)) for c in completion_ids])  # (B, C)
        mask = mask.to(logits.device)
        logprobs, ent = token_logprobs(logits, targets, mask, temperature, entropy)
        return ScoreOutput(logprobs, mask, ent, aux)

    def _score_rows(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        routing: list[torch.Tensor] | None,
        temperature: float,
        entropy: bool,
    ) -> ScoreOutput:
        """``score`` over right-padded prompt + completion rows, in passes of similar lengths (the CPU path:
        no attention mask, so the fused causal kernel applies, and no padding beyond each pass's longest)."""
        lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
        width_c = max(1, max(len(c) for c in completion_ids))
        order, logits_parts = [], []
        aux = torch.zeros((), device=self.device)
        for part in split_by_length(lengths):
            width = max(lengths[i] for i in part)
            seqs = [[*prompt_ids[i], *completion_ids[i]] for i in part]
            tokens = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in seqs], device=self.device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
            layout = None
            if routing is not None:
                layers, _, k = routing[0].shape
                grid = torch.full((layers, len(part), width, k), -1, dtype=torch.long)  # (L, n, W, k)
                for r, i in enumerate(part):
                    take = min(lengths[i], routing[i].shape[1])
                    grid[:, r, :take] = routing[i][:, :take].cpu()
                layout = list(grid.to(self.device).unbind(0))
            out = self.module(tokens, attention_mask=mask, routing=layout, return_aux=True, with_mtp=False)
            # Row i's completion token j is predicted at position len(prompt_i) - 1 + j (clamped on padding).
            at = torch.tensor([[min(len(prompt_ids[i]) - 1 + j, width - 1) for j in range(width_c)]
                               for i in part], device=self.device)  # fmt: skip  # (n, C)
            logits_parts.append(out.logits.gather(1, at.unsqueeze(-1).expand(-1, -1, out.logits.shape[-1])))
            aux = aux + out.aux_loss * (len(part) / len(lengths))  # the balance loss stays a mean over rows
            order += part
        back = torch.empty(len(order), dtype=torch.long)
        back[torch.tensor(order)] = torch.arange(len(order))
        logits = torch.cat(logits_parts).index_select(0, back.to(self.device))  # (B, C, V)
        targets = torch.tensor([list(c) + [self.pad_id] * (width_c - len(c)) for c in completion_ids],
                               device=self.device)  # fmt: skip  # (B, C)
        mask = torch.tensor([[1.0] * len(c) + [0.0] * (width_c - len(c)) for c in completion_ids],
                            device=self.device)  # fmt: skip  # (B, C)
        logprobs, ent = token_logprobs(logits, targets, mask, temperature, entropy)
        return ScoreOutput(logprobs, mask, ent, aux)

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> Rollouts:
        import policies

        unique_ids = [self.encode(p) for p in prompts]
        prompt_ids = [ids for ids in unique_ids for _ in range(n)]
        generator = None
        if sampling.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(sampling.seed)
        shared = self.share_prompts and n > 1  # each prompt prefilled once, its cache rows copied n times
        out = policies.generate(
            self.module,
            unique_ids if shared else prompt_ids,
            num_samples=n if shared else 1,
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
        """DeepSeek-V3's auxiliary-loss-free expert-bias update (MoE only); returns its load statistics.

        Under data parallelism the update uses the expert loads summed over ranks (the global batch's, as
        in DeepSeek-V3), so every rank moves its biases alike and the replicas stay identical.
        """
        from policies.moe import Gate

        update = getattr(self.module, "update_expert_bias", None)
        if not (self.is_moe and update is not None):
            return {}
        sum_over_ranks([m.load for m in self.module.modules() if isinstance(m, Gate)])
        return update()

    def save(self, directory: str) -> None:
        import policies

        os.makedirs(directory, exist_ok=True)
        policies.save_model(self.module, directory)
        with open(os.path.join(directory, KIND_FILE), "w") as f:
            json.dump({"kind": "bundled"}, f)
