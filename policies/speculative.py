"""Self-speculative decoding with the model's own multi-token-prediction (MTP) module as the draft.

Key idea (DeepSeek-V3 section 5.4.3; speculative sampling of Leviathan et al. 2023, Chen et al. 2023): MTP
module 1 proposes ``k = n_draft`` tokens ``d_1..d_k``; one main forward over ``[x, d_1..d_k]`` (``x`` = the
last committed token) on the latent cache gives ``p(. | ..x)``, ``p(. | ..x, d_1)``, ... at once. Draft
``d_i`` is accepted with probability ``min(1, p(d_i) / q(d_i))`` (``q`` = the draft distribution) while all
before it were; at the first rejection one token is sampled from the residual ``norm(max(0, p - q))``, and
if all ``k`` pass a bonus token is sampled from the last ``p``. The committed tokens are then distributed
exactly as plain sampling from ``p`` (same temperature/top-k/top-p); with temperature 0 ``p`` and ``q`` are
one-hot, so greedy output is token-for-token the plain greedy output.

One step is exactly: the main forward over ``k + 1`` tokens, then MTP module 1 over the same ``k + 1`` slots
(which also yields the next step's first draft), then ``k - 1`` one-token MTP passes for the further drafts.
The MTP block is one extra layer of the main ``KVCache``: its slot ``j`` holds
``eh_proj([hnorm(h_j) ; enorm(emb(x_{j+1}))])`` at position ``j``, so it reuses the main layers' slots,
RoPE positions, mask, and per-row rollback -- each row advances by its own accepted count and rejected slots
are simply overwritten, nothing is recomputed. Drafts ``d_2..d_k`` chain module 1 on its own output hidden
state in place of the main model's (the EAGLE-style chaining SGLang/vLLM use for DeepSeek-V3's single MTP
module); those tentative slots are overwritten by the next step's exact ones.

Speed-up = tokens per step (``1 + accepted drafts``) over the cost of a ``(k + 1)``-token main forward plus
``k`` MTP blocks; it needs a trained MTP head (an untrained one is rarely accepted) and a main model deep
enough that one block is cheap next to it (DeepSeek-V3: 61 blocks beside one MTP block).

Left out: tree attention (several candidates per position), a second MTP module for depth 2 (trained chains),
routing capture, batch compaction of finished rows, stop strings (use ``policies.generate`` for those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from policies.cache import KVCache, constant_weights
from policies.generate import CachedStep, GenerationOutput, cached_forward, check_request, left_pad, new_cache
from policies.model import Transformer
from policies.sampling import check_sampling, sample_from, sampling_logprobs

Knobs = tuple[float, float, int]  # temperature, top_p, top_k


@dataclass
class SpeculativeOutput(GenerationOutput):
    """``GenerationOutput`` plus draft statistics."""

    acceptance_rate: float = 0.0
    """Accepted drafts / proposed drafts over live rows."""
    row_acceptance: list[float] = field(default_factory=list)
    """Per row, accepted / proposed drafts (rows accept independently; each advances by its own count)."""
    n_steps: int = 0
    """Main-model decode forwards (each over ``1 + n_draft`` tokens)."""


def _mtp(
    model: Transformer, step: CachedStep, next_tokens: torch.Tensor, real: torch.Tensor, cache: KVCache
) -> torch.Tensor:
    """MTP module 1's block over the slots ``step`` prepared; returns its output hidden states (B, n, dim)."""
    module = model.mtp[0]
    x = module.combine_tokens(step.hidden, next_tokens, model.embed)  # (B, n, dim)
    layer = model.config.n_layers
    h, _, _ = module.block(
        x, step.cos, step.sin, mask=step.visible, token_mask=real, cache=cache, cache_layer=layer
    )
    return h  # (B, n, dim)


def _mtp_logits(model: Transformer, hidden: torch.Tensor) -> torch.Tensor:
    """Draft logits (B, V) from one MTP output hidden state per row (B, 1, dim) (shared output head)."""
    return model.head(model.mtp[0].norm(hidden[:, 0]))  # (B, V)


def _draw(logits: torch.Tensor, knobs: Knobs, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
    """A draft (B,) from MTP logits (B, V) and its sampling log-probs q (B, V) (the logits if greedy)."""
    if knobs[0] == 0:
        return logits.argmax(-1), logits  # greedy needs no q
    logp = sampling_logprobs(logits, *knobs)[0]  # (B, V)
    return sample_from(logp, generator), logp


def _propose(
    model: Transformer,
    cache: KVCache,
    hidden: torch.Tensor,
    k: int,
    knobs: Knobs,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` chained drafts (B, k) and their q log-probs (B, k, V), from the MTP hidden state (B, 1, dim).

    Drafts 2..k run module 1 on its own previous hidden state at tentative slots past each row's length,
    prepared once and never committed (the next main step overwrites those slots).
    """
    module, layer = model.mtp[0], model.config.n_layers
    draft, logp = _draw(_mtp_logits(model, hidden), knobs, generator)
    if k == 1:
        return draft[:, None], logp[:, None]  # (B, 1), (B, 1, V)
    drafts, logps = [draft], [logp]
    one = torch.ones(draft.shape[0], 1, dtype=torch.bool, device=draft.device)  # (B, 1)
    positions, visible = cache.prepare(one.expand(-1, k - 1))  # (B, k - 1), (B, k - 1, S): one prepare
    cos, sin = model.rope(positions)  # (B, k - 1, dr/2)
    for i in range(k - 1):
        cache.focus(i)  # pass i writes tentative slot i only
        x = module.combine_tokens(hidden, drafts[-1][:, None], model.embed)  # (B, 1, dim)
        part = slice(i, i + 1)
        hidden, _, _ = module.block(
            x,
            cos[:, part],
            sin[:, part],
            mask=visible[:, part],
            token_mask=one,
            cache=cache,
            cache_layer=layer,
        )
        draft, logp = _draw(_mtp_logits(model, hidden), knobs, generator)
        drafts.append(draft)
        logps.append(logp)
    cache.discard()  # the next main step overwrites the tentative slots
    return torch.stack(drafts, 1), torch.stack(logps, 1)  # (B, k), (B, k, V)


def _verify(
    logits: torch.Tensor,
    drafts: torch.Tensor,
    draft_logp: torch.Tensor,
    knobs: Knobs,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accept/reject the drafts (B, k) against the main logits (B, k + 1, V).

    Returns the accepted count ``a`` (B,), the tokens ``c`` (B, k + 1) and their reported log-probs: row b
    commits ``c[b, :a + 1]`` (the accepted drafts, then the residual or bonus sample).
    """
    k = drafts.shape[1]
    if knobs[0] == 0:  # greedy: p and q are one-hot, so acceptance is an equality test
        tokens = logits.argmax(-1)  # (B, k + 1)
        n_acc = (tokens[:, :k] == drafts).long().cumprod(1).sum(1)  # (B,)
        report = logits.float().log_softmax(-1)  # (B, k + 1, V)
        return n_acc, tokens, report.gather(2, tokens[:, :, None]).squeeze(2)
    p_logp, report = sampling_logprobs(logits, *knobs)  # (B, k + 1, V) each
    p_d = p_logp[:, :k].gather(2, drafts[:, :, None]).squeeze(2).exp()  # (B, k)
    q_d = draft_logp.gather(2, drafts[:, :, None]).squeeze(2).exp()  # (B, k)
    u = torch.rand(p_d.shape, generator=generator, device=p_d.device, dtype=p_d.dtype)  # (B, k)
    n_acc = (u * q_d < p_d).long().cumprod(1).sum(1)  # (B,) u < p/q without dividing by zero
    residual = (p_logp[:, :k].exp() - draft_logp.exp()).clamp(min=0)  # (B, k, V)
    has_mass = residual.sum(-1, keepdim=True) > 0
    residual_logp = torch.where(has_mass, residual.log(), p_logp[:, :k])  # (B, k, V)
    fixed = sample_from(torch.cat([residual_logp, p_logp[:, k:]], 1), generator)  # (B, k + 1)
    index = torch.arange(k + 1, device=drafts.device)  # (k + 1,)
    tokens = torch.where(index < n_acc[:, None], torch.cat([drafts, fixed[:, k:]], 1), fixed)  # (B, k + 1)
    return n_acc, tokens, report.gather(2, tokens[:, :, None]).squeeze(2)


def _commit_counts(
    tokens: torch.Tensor, n_acc: torch.Tensor, stop_ids: torch.Tensor, room: torch.Tensor, live: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens each row keeps (B,): up to ``n_acc + 1``, cut after a stop token and at the budget ``room``."""
    if not stop_ids.numel():  # no stop tokens: only the budget cuts
        return torch.minimum(n_acc + 1, room) * live, torch.zeros_like(live)
    index = torch.arange(tokens.shape[1], device=tokens.device)  # (k + 1,)
    stops = torch.isin(tokens, stop_ids) & (index <= n_acc[:, None])  # (B, k + 1)
    first_stop = torch.where(stops.any(1), stops.long().argmax(1), tokens.shape[1])  # (B,)
    take = torch.minimum(torch.minimum(n_acc, first_stop) + 1, room) * live  # (B,)
    return take, live & (first_stop < take)


@torch.inference_mode()
@constant_weights()  # decode-time folded weights built once per call, never kept across calls
def speculative_generate(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop_token_ids: Sequence[int] = (),
    tokenizer: object = None,
    generator: torch.Generator | None = None,
    pad_id: int = 0,
    n_draft: int = 1,
) -> SpeculativeOutput:
    """Like ``policies.generate`` (same sampling semantics and log-probs) but drafting with MTP module 1.

    Args:
        n_draft: Draft tokens per step (1 = DeepSeek-V3's setting; more chain module 1 on its own output).
        Others: as ``policies.generate``.

    Raises:
        ValueError: No MTP module, ``n_draft < 1``, or an invalid request (see ``generate``).

    Example:
        >>> from policies.config import ModelConfig
        >>> from policies.generate import generate
        >>> model = Transformer(ModelConfig.tiny())
        >>> spec = speculative_generate(model, [[1, 5, 6]], max_new_tokens=6, temperature=0, n_draft=2)
        >>> spec.tokens == generate(model, [[1, 5, 6]], max_new_tokens=6, temperature=0).tokens
        True
    """
    if not len(model.mtp):
        raise ValueError("speculative decoding needs an MTP module (config.n_mtp_modules >= 1)")
    if n_draft < 1:
        raise ValueError(f"n_draft={n_draft} must be >= 1")
    check_sampling(temperature, top_p, top_k)
    check_request(model, prompts, max_new_tokens, (), None, extra_slots=n_draft)
    was_training = model.training
    model.eval()
    try:
        knobs = (temperature, top_p, top_k)
        return _run(
            model, prompts, max_new_tokens, knobs, stop_token_ids, tokenizer, generator, pad_id, n_draft
        )
    finally:
        model.train(was_training)


def _run(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new: int,
    knobs: Knobs,
    stop_token_ids: Sequence[int],
    tokenizer: object,
    generator: torch.Generator | None,
    pad_id: int,
    k: int,
) -> SpeculativeOutput:
    tokens, mask = left_pad(prompts, pad_id, model.embed.weight.device)  # (B, P)
    batch, width = tokens.shape
    dev = tokens.device
    out_ids = torch.zeros(batch, max_new + k + 1, dtype=torch.long, device=dev)  # (B, N + k + 1)
    out_lp = torch.zeros(batch, max_new + k + 1, dtype=torch.float32, device=dev)
    n_out = torch.zeros(batch, dtype=torch.long, device=dev)  # (B,)
    done = torch.zeros(batch, dtype=torch.bool, device=dev)  # (B,)
    stop_ids = torch.as_tensor(list(stop_token_ids), dtype=torch.long, device=dev)
    stats = torch.zeros(2, batch, dtype=torch.long, device=dev)  # proposed, accepted per row (no host sync)
    if max_new == 0:
        return _output(out_ids, out_lp, n_out, done, tokenizer, stats, 0)
    # one cache: the main layers plus one layer for MTP module 1, which shares slots and rollback
    cache = new_cache(model, batch, width + max_new + k + 1, model.config.n_layers + 1)
    real = mask.bool()  # (B, P)
    step = cached_forward(model, tokens, cache, real)
    sample_logp, report = sampling_logprobs(step.logits[:, -1], *knobs)  # (B, V)
    last = sample_logp.argmax(-1) if knobs[0] == 0 else sample_from(sample_logp, generator)  # (B,)
    out_ids[:, 0], out_lp[:, 0], n_out[:] = last, report.gather(1, last[:, None]).squeeze(1), 1
    done |= torch.isin(last, stop_ids)
    next_tokens = torch.cat([tokens[:, 1:], last[:, None]], dim=1)  # (B, P)
    hidden = _mtp(model, step, next_tokens, real, cache)[:, -1:]  # (B, 1, dim) at the last prompt token
    cache.advance()
    steps, fed = 0, torch.ones(batch, k + 1, dtype=torch.bool, device=dev)
    index, rows = torch.arange(k + 1, device=dev), torch.arange(batch, device=dev)  # (k + 1,), (B,)
    while bool((live := ~done & (n_out < max_new)).any()):
        drafts, draft_logp = _propose(model, cache, hidden, k, knobs, generator)  # (B, k), (B, k, V)
        step = cached_forward(model, torch.cat([last[:, None], drafts], 1), cache, fed)
        steps += 1
        n_acc, new, lps = _verify(step.logits, drafts, draft_logp, knobs, generator)  # (B,), (B, k + 1) x2
        # MTP slot j reads the main hidden state at slot j and the token committed after it; the next draft
        # comes from slot n_acc (the last committed token); slots past it are rolled back below
        hidden = _mtp(model, step, new, fed, cache)  # (B, k + 1, dim)
        n_acc = n_acc * live
        take, stopped = _commit_counts(new, n_acc, stop_ids, max_new - n_out, live)
        cache.advance(take)  # = n_acc + 1 unless the row ends here (rows never outgrow the cache)
        slots = n_out[:, None] + index  # (B, k + 1)
        out_ids.scatter_(1, slots, new)  # writes past a row's count are never read
        out_lp.scatter_(1, slots, lps)
        n_out += take
        done |= stopped
        stats += torch.stack([live * k, n_acc])
        hidden = hidden[rows, n_acc][:, None]  # (B, 1, dim) at each row's last committed token
        last = new[rows, n_acc]  # (B,)
    return _output(out_ids, out_lp, n_out.clamp(max=max_new), done, tokenizer, stats, steps)


def _output(
    out_ids: torch.Tensor,
    out_lp: torch.Tensor,
    n_out: torch.Tensor,
    done: torch.Tensor,
    tokenizer: object,
    stats: torch.Tensor,
    steps: int,
) -> SpeculativeOutput:
    n = n_out.tolist()
    (proposed, accepted), ((total_p, total_a),) = stats.tolist(), stats.sum(1, keepdim=True).T.tolist()
    ids, lps = out_ids.tolist(), out_lp.tolist()
    tokens = [ids[i][: n[i]] for i in range(len(n))]
    texts = None if tokenizer is None else [tokenizer.decode(t) for t in tokens]  # type: ignore[attr-defined]
    return SpeculativeOutput(
        tokens=tokens,
        logprobs=[lps[i][: n[i]] for i in range(len(n))],
        finished=done.tolist(),
        texts=texts,
        acceptance_rate=total_a / max(total_p, 1),
        row_acceptance=[a / max(p, 1) for p, a in zip(proposed, accepted, strict=True)],
        n_steps=steps,
    )
