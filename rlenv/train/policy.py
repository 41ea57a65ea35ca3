"""One small interface over the bundled policy and any Hugging Face causal LM: generate with log-probs, score.

Key idea: the trainer needs only four things from a policy: ``generate(prompts, n, sampling)`` returning the
completion token ids, their log-probs under the sampling policy and whether each finished; ``score(prompt_ids,
completion_ids, routing)`` returning per-token log-probs (with grad), entropies and the MoE balance loss;
the ``module`` to optimise; and ``save(dir)``. Both back-ends pack a batch the same way: prompts left-padded,
completions right-padded, so the completion logits are one slice ``logits[:, P-1 : P+C-1]``.

Log-probs are taken at the sampling temperature (``log_softmax(logits / T)``), as TRL does, so that rollout
log-probs and training log-probs are the same quantity and can be used as the PPO "old" policy. Top-p / top-k
truncation is not reflected in them (also as TRL).

MoE routing replay: the bundled MoE policy returns the experts each token was routed to during generation;
``score`` feeds them back so training sees the same experts as sampling (otherwise the importance ratio of MoE
models is dominated by routing flips).

References: TRL ``GRPOTrainer._get_per_token_logps_and_entropies``; routing replay as in "Stabilizing MoE RL"
(Ma et al. 2025, arXiv:2510.11370, "R3").

Left out on purpose: vLLM / paged KV caches, chat templates (prompts are plain text rendered by the env).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlenv.train.losses import entropy_from_logits

__all__ = ["Policy", "Rollouts", "SamplingParams", "ScoreOutput", "load_policy", "pack", "split_by_length",
           "token_logprobs"]

KIND_FILE = "rlenv_policy.json"


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """How to sample completions.

    Attributes:
        max_new_tokens: Completion length cap.
        temperature: Sampling temperature (0 = greedy).
        top_p: Nucleus threshold (1.0 = off).
        top_k: Top-k (0 = off).
        seed: Seed of this call's sampling (None = the global torch RNG).
        stop_strings: Strings that end a completion (besides EOS).
        return_routing: Also return MoE routing (bundled MoE policy only).
    """

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop_strings: tuple[str, ...] = ()
    return_routing: bool = False


@dataclass
class Rollouts:
    """Flat rollouts: ``n`` completions of each prompt, adjacent (row ``i * n + j``).

    Attributes:
        prompt_ids: Prompt token ids per row.
        completion_ids: Completion token ids per row (stop / EOS token included).
        logprobs: Log-prob of each completion token under the sampling policy at the sampling temperature.
        finished: False when the completion was cut at ``max_new_tokens``.
        texts: Decoded completions (EOS removed).
        routing: Per row, (MoE layers, prompt + completion tokens, top_k) expert ids (-1 = route normally),
            or None.
    """

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    logprobs: list[list[float]]
    finished: list[bool]
    texts: list[str]
    routing: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.completion_ids)

    def select(self, rows: Sequence[int]) -> Rollouts:
        """The rollouts of the given rows, in that order."""
        routing = [self.routing[i] for i in rows] if self.routing is not None else None
        return Rollouts(
            prompt_ids=[self.prompt_ids[i] for i in rows],
            completion_ids=[self.completion_ids[i] for i in rows],
            logprobs=[self.logprobs[i] for i in rows],
            finished=[self.finished[i] for i in rows],
            texts=[self.texts[i] for i in rows],
            routing=routing,
        )

    @staticmethod
    def concat(parts: Sequence[Rollouts]) -> Rollouts:
        """Concatenates rollouts row-wise."""
        has_routing = bool(parts) and all(p.routing is not None for p in parts)
        return Rollouts(
            prompt_ids=[r for p in parts for r in p.prompt_ids],
            completion_ids=[r for p in parts for r in p.completion_ids],
            logprobs=[r for p in parts for r in p.logprobs],
            finished=[r for p in parts for r in p.finished],
            texts=[r for p in parts for r in p.texts],
            routing=[r for p in parts for r in p.routing] if has_routing else None,  # type: ignore[union-attr]
        )


@dataclass(frozen=True)
class ScoreOutput:
    """Per-token log-probs of completions.

    Attributes:
        logprobs: (B, C), right-padded with zeros; carries grad when computed with grad.
        mask: (B, C) float, 1 = real completion token.
        entropy: (B, C) entropies (detached), or None when not requested.
        aux_loss: Scalar MoE balance loss (0 for dense models).
    """

    logprobs: torch.Tensor
    mask: torch.Tensor
    entropy: torch.Tensor | None
    aux_loss: torch.Tensor


@dataclass(frozen=True)
class Packed:
    """A packed batch: ``tokens``, ``attention_mask`` (B, P + C); ``completion_mask`` (B, C)."""

    tokens: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    prompt_len: int


def pack(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], pad_id: int) -> Packed:
    """Left-pads prompts and right-pads completions into one batch.

    Example:
        >>> p = pack([[5, 6], [7]], [[1], [2, 3]], pad_id=0)
        >>> p.tokens.tolist(), p.attention_mask.tolist(), p.prompt_len
        ([[5, 6, 1, 0], [0, 7, 2, 3]], [[1, 1, 1, 0], [0, 1, 1, 1]], 2)
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    width_p = max((len(p) for p in prompt_ids), default=0)
    width_c = max(1, max((len(c) for c in completion_ids), default=1))
    rows, masks, cmasks = [], [], []
    for p, c in zip(prompt_ids, completion_ids, strict=True):
        lead, tail = width_p - len(p), width_c - len(c)
        rows.append([pad_id] * lead + list(p) + list(c) + [pad_id] * tail)
        masks.append([0] * lead + [1] * (len(p) + len(c)) + [0] * tail)
        cmasks.append([1] * len(c) + [0] * tail)
    return Packed(
        tokens=torch.tensor(rows, dtype=torch.long),  # (B, P + C)
        attention_mask=torch.tensor(masks, dtype=torch.long),  # (B, P + C)
        completion_mask=torch.tensor(cmasks, dtype=torch.float32),  # (B, C)
        prompt_len=width_p,
    )


_PASS_COST = 192
"""Fixed cost of one more forward/backward pass of a micro-batch, in padded tokens (about 12 ms on a CPU at
the ``small`` preset's ~60 us per token, i.e. its ~1,500 dispatched ops)."""


def split_by_length(
    lengths: Sequence[int], multiple: int = 1, pass_cost: int | None = None
) -> list[list[int]]:
    """Cuts a right-padded micro-batch into passes of similar lengths when that saves compute.

    A pass over ``n`` rows costs ``pass_cost`` (default ``_PASS_COST``) ``+ n * width`` padded tokens,
    ``width`` being its longest row rounded up to ``multiple``; the rows are sorted by length and cut where
    the summed cost is least (dynamic programming over the cut points: the best partition is contiguous in
    sorted order). The gradient is the same: the caller sums every pass's token losses and divides by the
    micro-batch's token count.

    Returns:
        Lists of indices into ``lengths``, longest pass first.

    Example:
        >>> split_by_length([180, 250, 178, 260, 182, 255, 179, 251], pass_cost=100)
        [[1, 7, 5, 3], [2, 6, 0, 4]]
        >>> split_by_length([200, 210, 205, 220], pass_cost=100)  # not worth a second pass
        [[0, 2, 1, 3]]
    """
    if not lengths:
        return []
    pass_cost = _PASS_COST if pass_cost is None else pass_cost
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    width = [-(-lengths[i] // multiple) * multiple for i in order]
    best = [0] + [0] * len(order)  # best[j]: least cost of the first j sorted rows
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        best[j], cut[j] = min((best[i] + pass_cost + (j - i) * width[j - 1], i) for i in range(j))
    parts, j = [], len(order)
    while j:
        parts.append(order[cut[j] : j])
        j = cut[j]
    return parts


def completion_logprobs(
    logits: torch.Tensor, packed: Packed, temperature: float, want_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (and entropies) of the completion tokens from full-sequence logits (B, P + C, V)."""
    width_c = packed.completion_mask.size(1)
    start = packed.prompt_len - 1
    logits = logits[:, start : start + width_c]  # (B, C, V)
    targets = packed.tokens[:, packed.prompt_len :].to(logits.device)  # (B, C)
    mask = packed.completion_mask.to(logits.device)  # (B, C)
    return token_logprobs(logits, targets, mask, temperature, want_entropy)


def token_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, temperature: float, want_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Masked log-probs (and detached entropies) of ``targets`` (B, C) under ``logits`` (B, C, V) at
    ``temperature``, computed in fp32."""
    logits = logits.float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, C)
    logprobs = picked - torch.logsumexp(logits, dim=-1)  # (B, C)
    entropy = None
    if want_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits) * mask  # (B, C)
    return logprobs * mask, entropy


class Policy:
    """Base class of the trainer's policies (see the module docstring).

    Subclasses set ``module`` (the ``torch.nn.Module`` to optimise), ``pad_id``, ``eos_id`` and implement
    ``encode``, ``decode``, ``generate``, ``forward_logits`` and ``save``.
    """

    module: torch.nn.Module
    pad_id: int
    eos_id: int | None
    is_moe: bool = False
    num_experts: int = 0

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> Rollouts:
        raise NotImplementedError

    def forward_logits(
        self, packed: Packed, routing: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-sequence logits (B, P + C, V) and the MoE balance loss (scalar)."""
        raise NotImplementedError

    def save(self, directory: str) -> None:
        raise NotImplementedError

    def after_optimizer_step(self) -> dict[str, float]:
        """Hook run after each applied optimiser step (the bundled MoE updates its expert biases here)."""
        return {}

    def frozen_copy(self) -> Policy:
        """A copy with its own weights, in eval mode and without gradients (the KL reference)."""
        clone = copy.copy(self)
        clone.module = copy.deepcopy(self.module).eval().requires_grad_(False)
        return clone

    def render_chat(self, messages: Any) -> str:
        """Chat messages as one prompt string ("role: content" lines ending with an open assistant turn)."""
        lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def pack_routing(self, rows: Sequence[torch.Tensor | None], packed: Packed) -> list[torch.Tensor] | None:
        """Lays per-row routing (layers, len_p + len_c, k) out like ``packed`` as a list per layer of
        (B, P + C, k), -1 where the model should route itself; None if any row lacks routing."""
        if not rows or any(r is None for r in rows):
            return None
        batch, width = packed.tokens.shape
        layers, _, k = rows[0].shape
        out = torch.full((layers, batch, width, k), -1, dtype=torch.long)  # (layers, B, P + C, k)
        starts = packed.attention_mask.argmax(dim=1).tolist()
        lengths = packed.attention_mask.sum(dim=1).tolist()
        for b, experts in enumerate(rows):
            take = min(int(lengths[b]), experts.size(1))
            out[:, b, starts[b] : starts[b] + take] = experts[:, :take].cpu()
        return list(out.to(self.device).unbind(0))

    def score(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        routing: Sequence[torch.Tensor | None] | None = None,
        *,
        temperature: float = 1.0,
        entropy: bool = False,
    ) -> ScoreOutput:
        """Per-token log-probs of ``completion_ids`` given ``prompt_ids`` (grad flows when enabled)."""
        packed = pack(prompt_ids, completion_ids, self.pad_id)
        layout = self.pack_routing(routing, packed) if routing is not None else None
        logits, aux = self.forward_logits(packed, layout)  # (B, P + C, V)
        logprobs, ent = completion_logprobs(logits, packed, temperature, entropy)
        return ScoreOutput(logprobs, packed.completion_mask.to(logprobs.device), ent, aux)

    def logprobs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        routing: Sequence[torch.Tensor | None] | None = None,
        *,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Per-token log-probs (B, C), right-padded with zeros."""
        return self.score(prompt_ids, completion_ids, routing, temperature=temperature).logprobs


def resolve_directory(path: str) -> str:
    """A checkpoint directory holds the policy in ``model/``; a model directory is used as is."""
    inner = os.path.join(path, "model")
    return inner if os.path.isdir(inner) else path


def load_policy(spec: str, *, device: str | torch.device = "cpu", seed: int = 0) -> Policy:
    """Builds a policy from a spec: a bundled preset name, a directory, or ``"hf:PATH"``.

    Args:
        spec: ``"tiny"`` / ``"small"`` (a freshly initialised bundled model, seeded by ``seed``; overrides as
            ``"tiny:max_seq_len=1024"``), a directory
            written by :meth:`Policy.save` or a stage's checkpoint, or ``"hf:PATH"`` for any local Hugging
            Face causal LM directory.
        device: Where to put the model.
        seed: Initialisation seed of preset models.

    Returns:
        The policy.

    Raises:
        ValueError: If ``spec`` is neither a preset nor an existing directory.
    """
    from rlenv.train.hf_policy import HFPolicy

    if spec.startswith("hf:"):
        return HFPolicy.from_pretrained(resolve_directory(spec[3:]), device)
    if os.path.isdir(spec):
        directory = resolve_directory(spec)
        kind_path = os.path.join(directory, KIND_FILE)
        kind = None
        if os.path.exists(kind_path):
            with open(kind_path) as f:
                kind = json.load(f).get("kind")
        if kind == "bundled":
            from rlenv.train.bundled import BundledPolicy

            return BundledPolicy.from_directory(directory, device)
        return HFPolicy.from_pretrained(directory, device)
    from rlenv.train.bundled import PRESETS, BundledPolicy, is_preset

    if is_preset(spec):
        return BundledPolicy.from_preset(spec, device=device, seed=seed)
    raise ValueError(f"policy={spec!r} is neither a preset {PRESETS} nor a directory; or use 'hf:PATH'")


def __getattr__(name: str) -> Any:
    # HFPolicy lives in rlenv.train.hf_policy (it imports this module); keep the old import path working.
    if name == "HFPolicy":
        from rlenv.train.hf_policy import HFPolicy

        return HFPolicy
    raise AttributeError(f"module 'rlenv.train.policy' has no attribute {name!r}")
