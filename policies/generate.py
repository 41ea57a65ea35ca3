"""Batched sampling from the bundled policy with the MLA latent KV cache.

Key idea: left-pad the prompts, prefill them once (expanded MLA, every prompt token's ``c_kv``/``k_rope``
written to the cache), then decode one token per step with the absorbed MLA form over the cache. The hot loop
has no per-row Python: sampling, stop-token checks and bookkeeping are tensor ops; finished rows are dropped
from the batch (cache rows compacted) once enough of them have stopped. Stop *strings* need text, so they are
checked every ``stop_check_interval`` steps on a short decoded tail per active row and the completion is then
cut exactly at the token that completes the string. ``cached_forward`` is the one decode forward (new tokens
on top of the cache, without the training forward's auxiliary-loss bookkeeping) that both ``generate`` and
``policies.speculative`` use, so the two are timed on equal terms.

Log-probs: each reported value is ``log softmax(logits / temperature)[token]`` -- the policy at the rollout
temperature *before* top-k/top-p truncation (temperature 0 = greedy reports ``log softmax(logits)``). This is
what a GRPO trainer recomputes from its own forward with the same temperature; with truncation the sampling
distribution differs from it by the renormalisation over the kept set (see ``policies.sampling``).

Samples per prompt (``num_samples=n``): the output has ``n`` consecutive rows per prompt; each prompt is
prefilled once and its cache rows are copied ``n`` times before decoding (a GRPO group shares its prompt;
under causal attention the prompt's latents do not depend on what follows -- vLLM's prefix caching, in
miniature).

Routing (``return_routing=True``): per row a (n_moe_layers, len(prompt) + len(completion), top_k) long tensor
of the experts each token used. The last completion token holds -1 ("route normally" for
``Transformer.forward(routing=...)``) when it was never fed to the model, and the experts it was routed to
when decoding went on past it (a row cut back to a stop string at a later check, or a finished row still in
the batch): the same experts a forward over prompt + completion picks for it. Either way replay gives the
same completion log-probs (the last token's position predicts nothing); only the balance loss sees that
entry. ``stack_routing`` lays rows out for a training batch.

Left out: continuous batching (new prompts joining mid-flight), beam search, repetition penalties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from policies.cache import KVCache, constant_weights
from policies.model import Transformer
from policies.sampling import check_sampling, sample_from, sampling_logprobs


@dataclass
class GenerationOutput:
    """Result of ``generate``: one entry per prompt, in prompt order."""

    tokens: list[list[int]]
    """Completion ids (the stop token, or the tokens completing a stop string, included)."""
    logprobs: list[list[float]]
    """Per completion token, ``log softmax(logits / temperature)`` before top-k/top-p (see module doc)."""
    finished: list[bool]
    """True if a stop token/string ended the row, False if cut at ``max_new_tokens``."""
    texts: list[str] | None = None
    """``tokenizer.decode(tokens)`` when a tokenizer was given."""
    routing: list[torch.Tensor] | None = None
    """Per row (n_moe_layers, prompt + completion length, top_k) expert ids; the last completion token holds
    -1 if it was never fed, else the experts it used (rows cut by a stop string, see the module doc)."""


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int = 0, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists into ``tokens`` (B, P) and ``attention_mask`` (B, P) (1 = real).

    Example:
        >>> t, m = left_pad([[5, 6], [7]])
        >>> t.tolist(), m.tolist()
        ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty id lists")
    width = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        tokens[i, width - len(p) :] = torch.as_tensor(list(p), dtype=torch.long)
        mask[i, width - len(p) :] = 1
    return tokens.to(device), mask.to(device)


def new_cache(model: Transformer, batch: int, max_len: int, n_layers: int | None = None) -> KVCache:
    """An empty latent cache sized for ``model`` (``n_layers`` defaults to the main model's).

    Example:
        >>> from policies.config import ModelConfig
        >>> cache = new_cache(Transformer(ModelConfig.tiny()), batch=2, max_len=16)
        >>> len(cache.c_kv), tuple(cache.c_kv[0].shape)
        (2, (2, 16, 16))
    """
    cfg, weight = model.config, model.embed.weight
    return KVCache(
        n_layers=cfg.n_layers if n_layers is None else n_layers,
        batch=batch,
        max_len=max_len,
        kv_lora_rank=cfg.kv_lora_rank,
        rope_dim=cfg.qk_rope_head_dim,
        dtype=weight.dtype,
        device=weight.device,
    )


def check_request(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_strings: Sequence[str],
    tokenizer: Any,
    *,
    extra_slots: int = 0,
) -> None:
    """Validate a generation request (caller mistakes raise ``ValueError``).

    ``extra_slots``: cache slots needed beyond ``max_new_tokens`` (speculative decoding's draft slots).
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 0")
    if stop_strings and tokenizer is None:
        raise ValueError("stop_strings need a tokenizer (pass tokenizer=...)")
    if any(not isinstance(s, str) or not s for s in stop_strings):
        raise ValueError(f"stop_strings must be non-empty strings, got {list(stop_strings)!r}")
    for s in stop_strings:
        try:
            s.encode()
        except UnicodeEncodeError:
            raise ValueError(f"stop string {s!r} has a lone surrogate: not valid unicode") from None
    longest = max((len(p) for p in prompts), default=0)
    if longest + max_new_tokens + extra_slots > model.config.max_seq_len:
        extra = f" + {extra_slots} draft slots" if extra_slots else ""
        raise ValueError(
            f"longest prompt {longest} + max_new_tokens {max_new_tokens}{extra} exceeds "
            f"max_seq_len={model.config.max_seq_len}; shorten the prompt or raise max_seq_len"
        )
    vocab = model.config.vocab_size
    if any(not 0 <= t < vocab for p in prompts for t in p):
        raise ValueError(f"prompt ids must be in [0, vocab_size={vocab})")


@dataclass
class CachedStep:
    """One forward over new tokens appended to a ``KVCache`` (see ``cached_forward``)."""

    hidden: torch.Tensor
    """(B, n, dim) final hidden states before the output norm (the MTP modules' input)."""
    logits: torch.Tensor
    """(B, n, V) next-token logits."""
    cos: torch.Tensor
    """(B, n, dr/2) RoPE table at the new tokens' positions."""
    sin: torch.Tensor
    """(B, n, dr/2)."""
    visible: torch.Tensor
    """(B, n, S) key visibility of the new tokens over the cache slots."""
    routing: list[torch.Tensor]
    """Per MoE layer (B, n, top_k) expert ids (empty without MoE layers)."""


def cached_forward(
    model: Transformer, tokens: torch.Tensor, cache: KVCache, real: torch.Tensor
) -> CachedStep:
    """Run ``tokens`` (B, n) through the main model on top of ``cache``; the new slots stay *prepared*.

    The same computation as ``model(tokens, attention_mask=real, cache=cache)`` minus the auxiliary-loss
    bookkeeping (a decoding step is dominated by per-op overhead at this model size), and the caller calls
    ``cache.advance`` itself: self-speculative decoding first writes the MTP module's latents into the same
    slots (an extra cache layer) with the positions and mask returned here, then commits each row's accepted
    count.

    Args:
        model: The policy (in eval mode).
        tokens: (B, n) new token ids.
        cache: The latent cache (``model.config.n_layers`` layers, or more).
        real: (B, n) bool, False for left padding.

    Returns:
        A ``CachedStep``.

    Example:
        >>> from policies.config import ModelConfig
        >>> model = Transformer(ModelConfig.tiny()).eval()
        >>> cache = new_cache(model, batch=1, max_len=8)
        >>> step = cached_forward(model, torch.tensor([[1, 5]]), cache, torch.ones(1, 2, dtype=torch.bool))
        >>> cache.advance()
        >>> torch.allclose(step.logits, model(torch.tensor([[1, 5]])), atol=1e-5)
        True
    """
    positions, visible = cache.prepare(real)  # (B, n), (B, n, S)
    cos, sin = model.rope(positions)  # (B, n, dr/2)
    h = model.embed(tokens)  # (B, n, dim)
    routing = []
    for i, layer in enumerate(model.layers):
        h, indices, _ = layer(h, cos, sin, mask=visible, token_mask=real, cache=cache, cache_layer=i)
        if indices is not None:
            routing.append(indices)
    return CachedStep(h, model.head(model.norm(h)), cos, sin, visible, routing)  # logits (B, n, V)


class _StopStrings:
    """Finds, every few steps, the first token at which a row's completion text contains a stop string."""

    def __init__(self, stop_strings: Sequence[str], tokenizer: Any, interval: int) -> None:
        self.strings, self.tokenizer, self.interval = tuple(stop_strings), tokenizer, max(1, interval)
        # Text-bearing tokens to look back past ``checked``: a stop string of n UTF-8 bytes spans at most n
        # of them, + 1 for a character split across the boundary. Tokens that decode to "" (pad/bos, eos when
        # not a stop id) are not counted, else they would push the string's start out of the window and the
        # hit would depend on when the check ran.
        self.window = max((len(s.encode()) for s in self.strings), default=0) + 1
        self._silent: dict[int, bool] = {}  # token id -> decodes to "" on its own

    def _window_start(self, ids: list[int], checked: int) -> int:
        """Index from which ``ids[:checked]`` holds ``window`` tokens that decode to some text (or 0)."""
        start, need = checked, self.window
        while start > 0 and need > 0:
            start -= 1
            token = ids[start]
            silent = self._silent.get(token)
            if silent is None:
                silent = self._silent[token] = self.tokenizer.decode([token]) == ""
            need -= not silent
        return start

    def first_hit(self, ids: list[int], checked: int) -> int | None:
        """Length of the shortest prefix of ``ids`` containing a stop string (past ``checked``), or None."""
        start = self._window_start(ids, checked)
        if not any(s in self.tokenizer.decode(ids[start:]) for s in self.strings):
            return None
        for end in range(max(checked, 1), len(ids) + 1):
            if any(s in self.tokenizer.decode(ids[start:end]) for s in self.strings):
                return end
        return None


@torch.inference_mode()
@constant_weights()  # decode-time folded weights built once per call, never kept across calls
def generate(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop_token_ids: Sequence[int] = (),
    stop_strings: Sequence[str] = (),
    tokenizer: Any = None,
    return_routing: bool = False,
    generator: torch.Generator | None = None,
    pad_id: int = 0,
    stop_check_interval: int = 4,
    num_samples: int = 1,
) -> GenerationOutput:
    """Sample completions for a batch of prompts with the latent KV cache.

    Args:
        model: The policy (put in eval mode for the call, restored afterwards).
        prompts: Token-id lists (any lengths; left-padded internally).
        max_new_tokens: Completion budget per row.
        temperature: Softmax temperature; 0 = greedy.
        top_p: Nucleus truncation (1 = off).
        top_k: Top-k truncation (0 = off).
        stop_token_ids: Ids that end a row (included in its tokens).
        stop_strings: Strings that end a row once its decoded completion contains one (needs ``tokenizer``).
        tokenizer: Anything with ``decode(list[int]) -> str``; enables ``texts`` and ``stop_strings``.
        return_routing: Also return the experts each token was routed to (for GRPO routing replay).
        generator: Random source for reproducible sampling.
        pad_id: Id used for left padding (never attended to).
        stop_check_interval: Check stop strings every this many steps (results are exact either way).
        num_samples: Completions per prompt, as consecutive output rows; each prompt is prefilled once.

    Returns:
        A ``GenerationOutput`` over ``len(prompts) * num_samples`` rows (see its fields; log-probs are
        documented in the module docstring).

    Raises:
        ValueError: Empty prompts, out-of-vocabulary ids, a budget beyond ``max_seq_len``, bad sampling
            knobs (``0 < temperature < 1e-6`` included: use 0 for greedy), an empty stop string,
            ``num_samples < 1``.

    Example:
        >>> from policies.config import ModelConfig
        >>> model = Transformer(ModelConfig.tiny())
        >>> out = generate(model, [[1, 5, 6], [1, 7]], max_new_tokens=4, temperature=0)
        >>> [len(t) for t in out.tokens], out.finished
        ([4, 4], [False, False])
    """
    check_sampling(temperature, top_p, top_k)
    check_request(model, prompts, max_new_tokens, stop_strings, tokenizer)
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples={num_samples!r} must be an int >= 1")
    was_training = model.training
    model.eval()
    try:
        rows = [p for p in prompts for _ in range(num_samples)] if num_samples > 1 else prompts
        state = _Decoder(model, rows, max_new_tokens, pad_id, return_routing, num_samples)
        state.run(
            temperature,
            top_p,
            top_k,
            stop_token_ids,
            _StopStrings(stop_strings, tokenizer, stop_check_interval) if stop_strings else None,
            generator,
        )
        return state.output(tokenizer)
    finally:
        model.train(was_training)


class _Decoder:
    """Holds the batch state of one ``generate`` call (keeps ``generate`` itself short)."""

    def __init__(
        self,
        model: Transformer,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        pad_id: int,
        return_routing: bool,
        group: int = 1,
    ) -> None:
        self.model, self.prompts, self.max_new = model, prompts, max_new_tokens
        self.group = group  # consecutive rows sharing one prompt (prefilled once)
        device = model.embed.weight.device
        self.tokens, self.mask = left_pad(prompts, pad_id, device)  # (B, P)
        batch, self.width = self.tokens.shape
        self.out_ids = torch.zeros(batch, max(max_new_tokens, 1), dtype=torch.long, device=device)  # (B, N)
        self.out_logp = torch.zeros(batch, max(max_new_tokens, 1), dtype=torch.float32, device=device)
        self.n_out = torch.zeros(batch, dtype=torch.long, device=device)  # (B,) tokens kept per row
        self.done = torch.zeros(batch, dtype=torch.bool, device=device)  # (B,)
        self.rows = torch.arange(batch, device=device)  # original row of each active cache row
        self.one = torch.ones(1, 1, dtype=torch.bool, device=device)  # a decoded token is real
        n_moe = model.config.n_moe_layers
        self.routing = (
            torch.full(
                (n_moe, batch, self.width + max_new_tokens, model.config.n_activated_experts),
                -1,
                dtype=torch.long,
                device=device,
            )
            if return_routing and n_moe
            else None
        )

    def _record_routing(self, routing: list[torch.Tensor] | None, start: int) -> None:
        if self.routing is None or routing is None:
            return
        stacked = torch.stack(routing)  # (L, b, n, k)
        self.routing[:, self.rows, start : start + stacked.shape[2]] = stacked

    def _prefill(self, model: Transformer) -> tuple[KVCache, torch.Tensor]:
        """Runs each distinct prompt through the model once, then copies its cache rows to its ``group``
        rows; returns the cache and the last logits ``(b, V)``."""
        unique, mask = self.tokens[:: self.group], self.mask[:: self.group]  # (U, P)
        cache = new_cache(model, unique.shape[0], self.width + self.max_new)
        out = model(unique, attention_mask=mask, cache=cache, return_aux=True, with_mtp=False)
        cache.advance()
        if self.group == 1:
            self._record_routing(out.routing, 0)
            return cache, out.logits[:, -1]  # (b, V)
        expand = torch.arange(unique.shape[0], device=unique.device).repeat_interleave(self.group)  # (b,)
        cache.select(expand)
        self._record_routing([r.index_select(0, expand) for r in out.routing] if out.routing else None, 0)
        return cache, out.logits[:, -1].index_select(0, expand)  # (b, V)

    def run(
        self,
        temperature: float,
        top_p: float,
        top_k: int,
        stop_token_ids: Sequence[int],
        stops: _StopStrings | None,
        generator: torch.Generator | None,
    ) -> None:
        if self.max_new == 0:
            return
        model = self.model
        cache, logits = self._prefill(model)
        stop_ids = torch.as_tensor(list(stop_token_ids), dtype=torch.long, device=logits.device)
        checked = [0] * self.tokens.shape[0]
        for step in range(self.max_new):
            sample_logp, report_logp = sampling_logprobs(logits, temperature, top_p, top_k)  # (b, V)
            nxt = sample_logp.argmax(-1) if temperature == 0 else sample_from(sample_logp, generator)  # (b,)
            live = ~self.done[self.rows]  # (b,) rows still generating (finished ones may linger in the batch)
            self.out_ids[self.rows, step] = nxt
            self.out_logp[self.rows, step] = report_logp.gather(1, nxt[:, None]).squeeze(1)
            self.n_out[self.rows] = torch.where(live, step + 1, self.n_out[self.rows])
            stopped = live & torch.isin(nxt, stop_ids)  # (b,)
            self.done[self.rows] |= stopped
            last = step == self.max_new - 1
            if stops is not None and ((step + 1) % stops.interval == 0 or last or bool(stopped.any())):
                self._check_stop_strings(stops, checked)
            if last or bool(self.done.all()):
                break
            nxt = self._compact(cache, nxt)
            out = cached_forward(model, nxt[:, None], cache, self.one.expand(nxt.shape[0], 1))
            cache.advance()
            self._record_routing(out.routing or None, self.width + step)
            logits = out.logits[:, -1]  # (b, V)

    def _check_stop_strings(self, stops: _StopStrings, checked: list[int]) -> None:
        n_out = self.n_out.tolist()
        for (
            r
        ) in self.rows.tolist():  # per-row text is unavoidable for strings; runs every `interval` steps only
            if checked[r] >= n_out[r]:
                continue
            ids = self.out_ids[r, : n_out[r]].tolist()
            hit = stops.first_hit(ids, checked[r])
            checked[r] = n_out[r]
            if hit is not None:
                self.n_out[r], self.done[r] = hit, True

    def _compact(self, cache: KVCache, nxt: torch.Tensor) -> torch.Tensor:
        """Drop finished rows from the cache once at least an eighth of the active batch has finished."""
        done_local = self.done[self.rows]  # (b,)
        n_done = int(done_local.sum())
        if n_done == 0 or n_done * 8 < len(self.rows):
            return nxt
        keep = (~done_local).nonzero().squeeze(1)  # (b',)
        cache.select(keep)
        self.rows = self.rows[keep]
        return nxt[keep]

    def output(self, tokenizer: Any) -> GenerationOutput:
        n_out = self.n_out.tolist()
        ids, logps = self.out_ids.tolist(), self.out_logp.tolist()
        tokens = [ids[i][: n_out[i]] for i in range(len(n_out))]
        routing = None
        if self.routing is not None:
            pads = (self.width - self.mask.sum(1)).tolist()
            routing = [self.routing[:, i, pads[i] : self.width + n_out[i]].clone() for i in range(len(n_out))]
        return GenerationOutput(
            tokens=tokens,
            logprobs=[logps[i][: n_out[i]] for i in range(len(n_out))],
            finished=self.done.tolist(),
            texts=None if tokenizer is None else [tokenizer.decode(t) for t in tokens],
            routing=routing,
        )


def stack_routing(rows: Sequence[torch.Tensor], starts: Sequence[int], length: int) -> list[torch.Tensor]:
    """Lay per-row routing (L, n_i, k) into a batch: row i's tokens start at ``starts[i]`` of ``length``.

    Returns a list of L tensors (B, length, k); uncovered positions hold -1 (routed normally on replay).

    Example:
        >>> r = stack_routing([torch.zeros(1, 2, 2, dtype=torch.long)], starts=[1], length=4)
        >>> r[0][0, :, 0].tolist()
        [-1, 0, 0, -1]
    """
    if not rows:
        raise ValueError("rows must be non-empty")
    n_layers, _, topk = rows[0].shape
    out = torch.full((n_layers, len(rows), length, topk), -1, dtype=torch.long, device=rows[0].device)
    for i, (r, s) in enumerate(zip(rows, starts, strict=True)):
        n = min(r.shape[1], length - s)
        out[:, i, s : s + n] = r[:, :n]
    return list(out.unbind(0))
