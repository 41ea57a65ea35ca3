"""Any Hugging Face causal LM + tokenizer behind the trainer's :class:`~rlenv.train.policy.Policy` interface.

Key idea: generation is ``model.generate`` with ``output_logits=True`` (log-probs recomputed from the raw
logits at the rollout temperature, as the trainer's forward computes them), seeded per call without touching
the global RNG; scoring is one forward with explicit ``position_ids`` so left padding does not shift
positions.
Tests use a tiny randomly initialised Llama and a tokenizer built locally (no downloads).

Left out on purpose: chat-template heuristics beyond ``apply_chat_template``, PEFT adapters, quantisation.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from rlenv.train.policy import KIND_FILE, Packed, Policy, Rollouts, SamplingParams

__all__ = ["HFPolicy", "seeded"]


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device):
    """Runs a block under ``torch.manual_seed(seed)`` without disturbing the global RNG streams."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        yield


def _cut(ids: list[int], stops: set[int]) -> tuple[list[int], bool]:
    """Completion ids up to and including the first stop id, and whether one was found."""
    for i, tok in enumerate(ids):
        if tok in stops:
            return ids[: i + 1], True
    return ids, False


class HFPolicy(Policy):
    """Any Hugging Face causal LM plus its tokenizer.

    Args:
        model: A ``transformers`` causal LM.
        tokenizer: Its tokenizer (needs ``eos_token_id``; the pad id falls back to EOS).
    """

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.module = model
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.eos_id if self.eos_id is not None else 0))

    @classmethod
    def from_pretrained(cls, path: str, device: str | torch.device = "cpu") -> HFPolicy:
        """Loads a causal LM and tokenizer saved with ``save_pretrained`` (local files only)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model.to(device), tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def render_chat(self, messages: Any) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            template = self.tokenizer.apply_chat_template
            text = template(list(messages), tokenize=False, add_generation_prompt=True)
            return str(text)
        return super().render_chat(messages)

    def forward_logits(
        self, packed: Packed, routing: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = packed.tokens.to(self.device)  # (B, P + C)
        mask = packed.attention_mask.to(self.device)  # (B, P + C)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, P + C): left padding does not shift positions
        out = self.module(input_ids=tokens, attention_mask=mask, position_ids=positions, use_cache=False)
        aux = getattr(out, "aux_loss", None)
        return out.logits, aux if aux is not None else torch.zeros((), device=self.device)

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> Rollouts:
        from transformers import GenerationConfig

        prompt_ids = [self.encode(p) for p in prompts for _ in range(n)]
        width = max(len(p) for p in prompt_ids)
        tokens = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompt_ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=self.device)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sampling.temperature > 0,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
        if sampling.temperature > 0:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        if sampling.stop_strings:
            kwargs.update(stop_strings=list(sampling.stop_strings), tokenizer=self.tokenizer)
        was_training, defaults = self.module.training, self.module.generation_config
        self.module.eval()
        # The model's own generation defaults (a repetition penalty, min_p, ...) fill every field not passed
        # here and would reshape the distribution the tokens are drawn from, while the log-probs below (and
        # the training forward) are those of plain softmax(logits / T): sample from that alone.
        self.module.generation_config = GenerationConfig()
        try:
            with seeded(sampling.seed, self.device):
                out = self.module.generate(input_ids=tokens, attention_mask=mask, **kwargs)
        finally:
            self.module.generation_config = defaults
            self.module.train(was_training)
        new = out.sequences[:, width:]  # (B, C)
        logits = torch.stack(out.logits, dim=1).float()  # (B, C, V)
        temperature = sampling.temperature if sampling.temperature > 0 else 1.0
        logp = torch.log_softmax(logits / temperature, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        return self._rollouts(prompt_ids, new.tolist(), logp.tolist(), sampling)

    def _rollouts(
        self,
        prompt_ids: list[list[int]],
        new: list[list[int]],
        logp: list[list[float]],
        sampling: SamplingParams,
    ) -> Rollouts:
        stops = {self.eos_id} if self.eos_id is not None else set()
        completions, logprobs, finished, texts = [], [], [], []
        for ids, lps in zip(new, logp, strict=True):
            ids, done = _cut(ids, stops)
            text = self.decode(ids)
            if sampling.stop_strings:
                # HF stops a row at a stop string but keeps generating the other rows, padding it: cut it
                # here. The search runs before the EOS, since with pad == EOS (a tokenizer without a pad
                # token) the padding after a stop string looks like an EOS the model never sampled.
                body = self.decode(ids[:-1]) if done else text
                ends = [body.find(s) + len(s) for s in sampling.stop_strings if s in body]
                if ends:
                    end = min(ends)
                    ids, text, done = self._cut_text(ids, end), body[:end], True
            completions.append(ids)
            logprobs.append(lps[: len(ids)])
            finished.append(done)
            texts.append(text)
        return Rollouts(prompt_ids, completions, logprobs, finished, texts)

    def _cut_text(self, ids: list[int], chars: int) -> list[int]:
        for i in range(1, len(ids) + 1):
            if len(self.decode(ids[:i])) >= chars:
                return ids[:i]
        return ids

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.module.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        with open(os.path.join(directory, KIND_FILE), "w") as f:
            json.dump({"kind": "hf"}, f)
