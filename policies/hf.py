"""Hugging Face ``transformers`` wrapper so TRL's ``GRPOTrainer`` (or any HF trainer) can train the policy.

Key idea: a thin ``PreTrainedModel`` (``PolicyForCausalLM``) holding a ``policies.Transformer`` as ``.model``,
with ``PolicyHFConfig`` carrying the ``ModelConfig`` fields under ``policy``; both registered with
``AutoConfig``/``AutoModelForCausalLM`` (model type ``rlenv_policy``) on import, so ``save_pretrained`` /
``AutoModelForCausalLM.from_pretrained`` work. ``generate`` is overridden to use the bundled latent-cache
sampler (``policies.generate``) and returns ``[prompt ; completion]`` ids padded with ``pad_token_id`` like
HF's ``generate``. ``to_hf_tokenizer`` builds a ``PreTrainedTokenizerFast`` with exactly the ids of
``policies.Tokenizer`` (byte-level BPE without merges; tags as single added tokens).

This is the only module in ``policies`` that imports ``transformers``/``tokenizers``.
``generate`` resolves options as HF does (kwargs > ``generation_config`` > the model's ``generation_config`` >
HF's defaults) and raises ``ValueError`` for those it cannot honour rather than ignoring them.
Left out: HF's ``past_key_values`` cache protocol (our ``generate`` keeps its own latent cache), beam search;
the HF tokenizer parses the literal strings ``<pad>``/``<bos>``/``<eos>`` in text as control tokens, where
``policies.Tokenizer`` keeps them as bytes.
"""

from __future__ import annotations

import copy
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
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Sample with ``policies.generate``; returns (B * n, P + N) ids, completions right-padded with pad.

        Options resolve as in ``transformers``' own ``generate``: keyword arguments, then
        ``generation_config``, then the model's ``generation_config`` for fields left unset, then HF's global
        defaults (so sampling without ``top_k`` uses HF's ``top_k=50``; with neither ``max_new_tokens`` nor
        ``max_length``, 20 new tokens, capped by ``max_seq_len``). ``num_return_sequences=n`` gives ``n``
        consecutive rows per prompt (HF's order; each prompt is prefilled once). ``max_new_tokens`` wins over
        ``max_length`` (total length, prompt width included); ``max_new_tokens=0`` returns the prompts.
        Greedy unless ``do_sample``.

        Raises:
            ValueError: An option the bundled sampler cannot honour (beam search, logits processors, stopping
                criteria, streamers, repetition/n-gram penalties, ``min_p``, ``return_dict_in_generate``, ...)
                or ``do_sample`` with ``temperature <= 0``.
        """
        if input_ids is None:
            input_ids = kwargs.pop("inputs", None)
        if input_ids is None:
            raise ValueError("generate needs input_ids")
        max_new_kw = kwargs.pop("max_new_tokens", None)  # popped: HF's config rejects 0, which we honour
        _reject_hf_extras(kwargs)
        cfg, has_default_max_length = self._resolve_generation_config(generation_config, kwargs)
        width = input_ids.shape[1]
        _reject_unsupported(cfg, width)
        max_new = max_new_kw if max_new_kw is not None else cfg.max_new_tokens
        if max_new is None and has_default_max_length:  # HF: max_length counts new tokens only, capped
            max_new = max(0, min(int(cfg.max_length), self.config.model_config.max_seq_len - width))
        elif max_new is None:  # a max_length someone set counts the prompt width too
            max_new = max(0, int(cfg.max_length) - width)
        n = 1 if cfg.num_return_sequences is None else int(cfg.num_return_sequences)
        if n > 1 and not cfg.do_sample:
            raise ValueError(f"num_return_sequences={n} needs do_sample=True (greedy rows are identical)")
        if cfg.do_sample and (cfg.temperature is None or cfg.temperature <= 0):
            raise ValueError(
                f"temperature={cfg.temperature} must be > 0 with do_sample=True (greedy: do_sample=False)"
            )
        eos = cfg.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        pad = self.config.pad_token_id if cfg.pad_token_id is None else cfg.pad_token_id
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        prompts = [row[m.bool()].tolist() for row, m in zip(input_ids, mask, strict=True)]
        out = policy_generate(
            self.model,
            prompts,
            max_new_tokens=int(max_new),
            temperature=float(cfg.temperature) if cfg.do_sample else 0.0,
            top_p=1.0 if cfg.top_p is None else float(cfg.top_p),
            top_k=int(cfg.top_k or 0),
            stop_token_ids=eos_ids,
            pad_id=pad,
            num_samples=n,
        )
        width_c = max(len(t) for t in out.tokens)
        completion = torch.full((len(out.tokens), width_c), pad, dtype=torch.long)
        for i, toks in enumerate(out.tokens):
            completion[i, : len(toks)] = torch.tensor(toks, dtype=torch.long)
        inputs = input_ids.repeat_interleave(n, dim=0) if n > 1 else input_ids
        return torch.cat([inputs, completion.to(input_ids.device)], dim=1)

    def _resolve_generation_config(
        self, generation_config: GenerationConfig | None, kwargs: dict[str, Any]
    ) -> tuple[GenerationConfig, bool]:
        """HF's precedence (``_prepare_generation_config``): kwargs > ``generation_config`` > the model's
        ``generation_config`` for unset fields > HF's global defaults. Also returns whether ``max_length``
        was left at its default (then HF generates 20 new tokens). Unknown kwargs raise ``ValueError``."""
        cfg = copy.deepcopy(generation_config) if generation_config is not None else GenerationConfig()
        fresh = GenerationConfig()  # "unset": None on transformers 5, the global default value on 4.x
        for key, value in self.generation_config.to_dict().items():
            if key.startswith("_") or key == "transformers_version":
                continue
            if getattr(cfg, key, None) == getattr(fresh, key, None) and value != getattr(fresh, key, None):
                setattr(cfg, key, value)
        has_default_max_length = kwargs.get("max_length") is None and cfg.max_length == fresh.max_length
        defaults = getattr(GenerationConfig, "_get_default_generation_params", None)
        for key, value in (defaults() if defaults is not None else {}).items():
            if getattr(cfg, key, None) is None:
                setattr(cfg, key, value)
        unused = cfg.update(**kwargs)
        unused.pop("token_type_ids", None)  # tokenizer output the model ignores (as HF's forward would)
        if unused:
            raise ValueError(f"generate got arguments it cannot use: {sorted(unused)}")
        return cfg, has_default_max_length


# HF generate arguments the bundled sampler cannot honour: accepted only when unset (None, False, empty).
_HF_EXTRAS = (
    "logits_processor",
    "stopping_criteria",
    "prefix_allowed_tokens_fn",
    "synced_gpus",
    "assistant_model",
    "assistant_tokenizer",
    "streamer",
    "negative_prompt_ids",
    "negative_prompt_attention_mask",
    "custom_generate",
    "past_key_values",
    "inputs_embeds",
)
# GenerationConfig fields and the values under which they change nothing here (None is always fine).
_HF_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "num_beams": (1,),
    "num_beam_groups": (1,),
    "penalty_alpha": (),
    "dola_layers": (),
    "repetition_penalty": (1.0,),
    "encoder_repetition_penalty": (1.0,),
    "no_repeat_ngram_size": (0,),
    "encoder_no_repeat_ngram_size": (0,),
    "bad_words_ids": (),
    "force_words_ids": (),
    "constraints": (),
    "sequence_bias": (),
    "suppress_tokens": (),
    "begin_suppress_tokens": (),
    "forced_bos_token_id": (),
    "forced_eos_token_id": (),
    "exponential_decay_length_penalty": (),
    "typical_p": (1.0,),
    "epsilon_cutoff": (0.0,),
    "eta_cutoff": (0.0,),
    "min_p": (0.0,),
    "top_h": (),
    "min_new_tokens": (0,),
    "guidance_scale": (1.0,),
    "watermarking_config": (),
    "max_time": (),
    "stop_strings": (),
    "token_healing": (False,),
    "return_dict_in_generate": (False,),
    "prompt_lookup_num_tokens": (),
    "assistant_early_exit": (),
    "use_mtp": (False,),
    "speculation_type": (),
}


def _reject_hf_extras(kwargs: dict[str, Any]) -> None:
    """Pop HF's non-config ``generate`` arguments; raise ``ValueError`` for any that is set."""
    kwargs.pop("tokenizer", None)  # HF takes it for stop_strings, which are rejected below
    for name in _HF_EXTRAS:
        value = kwargs.pop(name, None)
        if value is not None and value is not False and not (isinstance(value, (list, tuple)) and not value):
            raise ValueError(
                f"PolicyForCausalLM.generate cannot honour {name}={value!r} (bundled sampler: greedy or "
                "temperature/top-k/top-p sampling, eos stop ids); use policies.generate or leave it unset"
            )


def _reject_unsupported(cfg: GenerationConfig, width: int) -> None:
    """Raise ``ValueError`` for ``GenerationConfig`` settings the bundled sampler would silently ignore."""
    bad = [
        f"{key}={getattr(cfg, key)!r}"
        for key, neutral in _HF_NEUTRAL.items()
        if getattr(cfg, key, None) is not None and getattr(cfg, key) not in neutral
    ]
    if cfg.min_length is not None and cfg.min_length > width:  # at most the prompt width: no constraint
        bad.append(f"min_length={cfg.min_length!r}")
    if bad:
        raise ValueError(
            f"PolicyForCausalLM.generate cannot honour {', '.join(bad)} (bundled sampler: greedy or "
            "temperature/top-k/top-p sampling, eos stop ids); use policies.generate or leave them unset"
        )


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
