"""Hugging Face ``transformers`` wrapper so TRL's ``GRPOTrainer`` (or any HF trainer) can train the policy.

Key idea: a thin ``PreTrainedModel`` (``PolicyForCausalLM``) holding a ``policies.Transformer`` as ``.model``,
with ``PolicyHFConfig`` carrying the ``ModelConfig`` fields under ``policy``; both registered with
``AutoConfig``/``AutoModelForCausalLM`` (model type ``rlenv_policy``) on import, so ``save_pretrained`` /
``AutoModelForCausalLM.from_pretrained`` work. ``generate`` is overridden to use the bundled latent-cache
sampler (``policies.generate``) and returns ``[prompt ; completion]`` ids padded with ``pad_token_id`` like
HF's ``generate``. ``to_hf_tokenizer`` builds a ``PreTrainedTokenizerFast`` with exactly the ids of
``policies.Tokenizer`` (byte-level BPE without merges; tags as single added tokens).

This is the only module in ``policies`` that imports ``transformers``/``tokenizers``.
Left out: HF's ``past_key_values`` cache protocol (our ``generate`` keeps its own latent cache), beam search;
the HF tokenizer parses the literal strings ``<pad>``/``<bos>``/``<eos>`` in text as control tokens, where
``policies.Tokenizer`` keeps them as bytes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as _TkTokenizer
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    TrainerCallback,
)
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from policies.config import ModelConfig
from policies.generate import generate as policy_generate
from policies.model import Transformer
from policies.tokenizer import SPECIAL_TOKENS, TAG_TOKENS, Tokenizer

MODEL_TYPE = "rlenv_policy"


class PolicyHFConfig(PretrainedConfig):
    """``PretrainedConfig`` wrapping a ``ModelConfig`` (as the dict ``policy``)."""

    model_type = MODEL_TYPE

    def __init__(self, policy: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.policy = ModelConfig.from_dict(policy).to_dict() if policy else ModelConfig.small().to_dict()
        self.vocab_size = self.policy["vocab_size"]
        self.hidden_size = self.policy["dim"]
        self.num_hidden_layers = self.policy["n_layers"]
        self.num_attention_heads = self.policy["n_heads"]
        kwargs.setdefault("pad_token_id", 0)
        kwargs.setdefault("bos_token_id", 1)
        kwargs.setdefault("eos_token_id", 2)
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)

    @property
    def model_config(self) -> ModelConfig:
        """The wrapped ``ModelConfig``."""
        return ModelConfig.from_dict(self.policy)


class _Backbone(torch.nn.Module):
    """HF-style backbone view (``last_hidden_state``) of the wrapped Transformer, owning no parameters.

    TRL's fused LM head calls ``model.base_model(input_ids=..., attention_mask=...)`` and projects
    ``last_hidden_state`` through ``get_output_embeddings()`` itself.
    """

    def __init__(self, policy: Transformer) -> None:
        super().__init__()
        object.__setattr__(self, "_policy", policy)  # not registered: parameters live under ``model``

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        routing: list[torch.Tensor] | None = None,
        **_: Any,
    ) -> BaseModelOutputWithPast:
        hidden, _routing = self._policy.features(input_ids, attention_mask=attention_mask, routing=routing)
        return BaseModelOutputWithPast(last_hidden_state=hidden)


class PolicyForCausalLM(PreTrainedModel):
    """Causal-LM wrapper: ``forward(input_ids, attention_mask, labels)`` and a fast ``generate``.

    Example:
        >>> hf = PolicyForCausalLM(PolicyHFConfig(policy=ModelConfig.tiny().to_dict()))
        >>> hf(torch.tensor([[1, 2, 3]])).logits.shape
        torch.Size([1, 3, 263])
    """

    config_class = PolicyHFConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    _no_split_modules = ("Block",)
    supports_gradient_checkpointing = True

    def __init__(self, config: PolicyHFConfig) -> None:
        super().__init__(config)
        self.model = Transformer(config.model_config)
        self.backbone = _Backbone(self.model)
        self.generation_config = GenerationConfig(
            pad_token_id=config.pad_token_id,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
        )
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if module is self.model:  # our own initialisation (also restores the RoPE tables after meta init)
            module.reset_parameters()

    def _set_recompute(self, enabled: bool) -> None:
        for module in self.model.modules():
            if hasattr(module, "recompute"):
                module.recompute = enabled

    def gradient_checkpointing_enable(self, *_: Any, **__: Any) -> None:
        """HF's checkpointing switch maps to DeepSeek-V3's selective recomputation (``recompute``)."""
        self._set_recompute(True)

    def gradient_checkpointing_disable(self) -> None:
        """Turn selective recomputation off."""
        self._set_recompute(False)

    def _activation_checkpointing_enable(self, *_: Any, **__: Any) -> None:
        self._set_recompute(True)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.embed

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.model.head

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        routing: list[torch.Tensor] | None = None,
        **_: Any,
    ) -> CausalLMOutputWithPast:
        """Logits (B, T, V) (last ``logits_to_keep`` if > 0); ``loss`` = shifted CE + balance loss."""
        out = self.model(
            input_ids, attention_mask=attention_mask, routing=routing, return_aux=True, with_mtp=False
        )
        logits = out.logits[:, -logits_to_keep:] if logits_to_keep else out.logits  # (B, T', V)
        loss = None
        if labels is not None:
            shifted = out.logits[:, :-1].flatten(0, 1).float()  # (B*(T-1), V)
            loss = F.cross_entropy(shifted, labels[:, 1:].flatten(), ignore_index=-100) + out.aux_loss
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Sample with ``policies.generate``; returns (B, P + N) ids, completions right-padded with pad."""
        cfg = generation_config or self.generation_config
        opts = {**cfg.to_dict(), **kwargs}
        max_new = opts.get("max_new_tokens") or 20
        greedy = not opts.get("do_sample", False)
        eos = opts.get("eos_token_id", self.config.eos_token_id)
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        pad = self.config.pad_token_id if opts.get("pad_token_id") is None else opts["pad_token_id"]
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        prompts = [row[m.bool()].tolist() for row, m in zip(input_ids, mask, strict=True)]
        out = policy_generate(
            self.model,
            prompts,
            max_new_tokens=max_new,
            temperature=0.0 if greedy else float(opts.get("temperature") or 1.0),
            top_p=float(opts.get("top_p") or 1.0),
            top_k=int(opts.get("top_k") or 0),
            stop_token_ids=eos_ids,
            pad_id=pad,
        )
        width = max(len(t) for t in out.tokens)
        completion = torch.full((len(prompts), width), pad, dtype=torch.long)
        for i, toks in enumerate(out.tokens):
            completion[i, : len(toks)] = torch.tensor(toks, dtype=torch.long)
        return torch.cat([input_ids, completion.to(input_ids.device)], dim=1)


class ExpertBiasCallback(TrainerCallback):
    """Applies the auxiliary-loss-free expert-bias update after every optimiser step of an HF/TRL trainer."""

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        policy = getattr(model, "model", None)
        if isinstance(policy, Transformer):
            policy.update_expert_bias()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode map used by byte-level BPE."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


def to_hf_tokenizer(tokenizer: Tokenizer | None = None) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` with the same ids as ``policies.Tokenizer``; no downloads.

    Example:
        >>> hf_tok = to_hf_tokenizer()
        >>> hf_tok("<think>1+1</think>")["input_ids"] == Tokenizer().encode("<think>1+1</think>")
        True
    """
    tokenizer = tokenizer or Tokenizer()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    offset = tokenizer.vocab_size - 256  # byte b has id offset + b
    vocab.update({ch: offset + b for b, ch in _bytes_to_unicode().items()})
    tk = _TkTokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIAL_TOKENS[:3]])
    tk.add_tokens([AddedToken(t, normalized=False, special=False) for t in TAG_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", padding_side="left"
    )


AutoConfig.register(MODEL_TYPE, PolicyHFConfig, exist_ok=True)
AutoModelForCausalLM.register(PolicyHFConfig, PolicyForCausalLM, exist_ok=True)
