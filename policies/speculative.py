"""Self-speculative decoding with the model's own multi-token-prediction (MTP) module as the draft.

Key idea (DeepSeek-V3 section 5.4.3; speculative sampling of Leviathan et al. 2023, Chen et al. 2023): each
step feeds two tokens to the main model with the latent cache -- the last committed token ``x`` and a draft
``d`` proposed by MTP module 1 -- and gets both ``p(. | ..x)`` and ``p(. | ..x, d)`` from one forward.
``d`` is accepted with probability ``min(1, p(d) / q(d))`` (``q`` = the draft distribution); on acceptance a
bonus token is sampled from ``p(. | ..x, d)`` (two tokens for one forward), on rejection one token is sampled
from the residual ``norm(max(0, p - q))``. The committed tokens are then distributed exactly as plain
sampling from ``p`` (same temperature/top-k/top-p), and with temperature 0 both ``p`` and ``q`` are one-hot,
so greedy output is token-for-token the plain greedy output. Rejected draft slots are rolled back by advancing
each row's cache by its own accepted count. The MTP block keeps its own latent cache: its slot j holds
``eh_proj([hnorm(h_j) ; enorm(emb(x_{j+1}))])``.

Speed-up = (1 + acceptance rate) tokens per step over the cost of a two-token main forward plus one MTP block;
it needs a trained MTP head (an untrained one is rarely accepted).

Left out: drafts longer than one token (chained MTP depths), tree attention, routing capture, batch
compaction of finished rows, stop strings (use ``policies.generate`` for those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from policies.cache import KVCache
from policies.generate import CachedStep, GenerationOutput, cached_forward, check_request, left_pad, new_cache
from policies.model import Transformer
from policies.sampling import check_sampling, sample_from, sampling_logprobs


@dataclass
class SpeculativeOutput(GenerationOutput):
    """``GenerationOutput`` plus draft statistics."""

    acceptance_rate: float = 0.0
    """Accepted drafts / proposed drafts over live rows."""
    row_acceptance: list[float] = field(default_factory=list)
    """Per row, accepted / proposed drafts (rows accept independently; each advances by its own count)."""
    n_steps: int = 0
    """Main-model decode forwards (each over two tokens)."""


def _draft_logits(
    model: Transformer, step: CachedStep, next_tokens: torch.Tensor, real: torch.Tensor, cache: KVCache
) -> torch.Tensor:
    """MTP module 1 over the slots ``step`` prepared: logits (B, n, V) for the token after ``next_tokens``.

    Slot j of the MTP layer (the cache's last layer) holds ``eh_proj([hnorm(h_j) ; enorm(emb(x_{j+1}))])``
    at position j, so it shares the main layers' slots, positions, mask and per-row rollback.
    """
    module = model.mtp[0]
    x = module.combine(step.hidden, model.embed(next_tokens))  # (B, n, dim)
    layer = model.config.n_layers
    h, _, _ = module.block(
        x, step.cos, step.sin, mask=step.visible, token_mask=real, cache=cache, cache_layer=layer
    )
    return model.head(module.norm(h))  # (B, n, V)


def _verify(
    logits: torch.Tensor,
    draft: torch.Tensor,
    draft_logp: torch.Tensor,
    knobs: tuple[float, float, int],
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accept/reject each row's draft; returns accept (B,), the tokens (B, 2) to commit and their log-probs.

    Column 0 is the draft itself when accepted (else the residual sample), column 1 the bonus token (used
    only when the draft was accepted).
    """
    if knobs[0] == 0:  # greedy: p and q are one-hot, so acceptance is an equality test
        pair = logits.argmax(-1)  # (B, 2)
        report = logits.float().log_softmax(-1)  # (B, 2, V)
        return pair[:, 0] == draft, pair, report.gather(2, pair[:, :, None]).squeeze(2)
    p_logp, report = sampling_logprobs(logits, *knobs)  # (B, 2, V) each
    p_d = p_logp[:, 0].gather(1, draft[:, None]).squeeze(1).exp()  # (B,)
    q_d = draft_logp.gather(1, draft[:, None]).squeeze(1).exp()  # (B,)
    u = torch.rand(p_d.shape, generator=generator, device=p_d.device, dtype=p_d.dtype)  # (B,)
    accept = u * q_d < p_d  # u < p/q without dividing by zero
    residual = (p_logp[:, 0].exp() - draft_logp.exp()).clamp(min=0)  # (B, V)
    has_mass = residual.sum(1, keepdim=True) > 0
    residual_logp = torch.where(has_mass, residual.log(), p_logp[:, 0])  # (B, V)
    fixed = sample_from(residual_logp, generator)  # (B,)
    first = torch.where(accept, draft, fixed)  # (B,)
    second = sample_from(p_logp[:, 1], generator)  # (B,) bonus, used only when accepted
    pair = torch.stack([first, second], dim=1)  # (B, 2)
    return accept, pair, report.gather(2, pair[:, :, None]).squeeze(2)


@torch.inference_mode()
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
) -> SpeculativeOutput:
    """Like ``policies.generate`` (same sampling semantics and log-probs) but drafting with MTP module 1.

    Raises:
        ValueError: The model has no MTP module, or the request is invalid (see ``generate``).

    Example:
        >>> from policies.config import ModelConfig
        >>> from policies.generate import generate
        >>> model = Transformer(ModelConfig.tiny())
        >>> spec = speculative_generate(model, [[1, 5, 6]], max_new_tokens=6, temperature=0)
        >>> spec.tokens == generate(model, [[1, 5, 6]], max_new_tokens=6, temperature=0).tokens
        True
    """
    if not len(model.mtp):
        raise ValueError("speculative decoding needs an MTP module (config.n_mtp_modules >= 1)")
    check_sampling(temperature, top_p, top_k)
    check_request(model, prompts, max_new_tokens + 1, (), None)
    was_training = model.training
    model.eval()
    try:
        return _run(
            model,
            prompts,
            max_new_tokens,
            (temperature, top_p, top_k),
            stop_token_ids,
            tokenizer,
            generator,
            pad_id,
        )
    finally:
        model.train(was_training)


def _run(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new: int,
    knobs: tuple[float, float, int],
    stop_token_ids: Sequence[int],
    tokenizer: object,
    generator: torch.Generator | None,
    pad_id: int,
) -> SpeculativeOutput:
    tokens, mask = left_pad(prompts, pad_id, model.embed.weight.device)  # (B, P)
    batch, width = tokens.shape
    dev = tokens.device
    out_ids = torch.zeros(batch, max_new + 2, dtype=torch.long, device=dev)  # (B, N + 2)
    out_lp = torch.zeros(batch, max_new + 2, dtype=torch.float32, device=dev)
    n_out = torch.zeros(batch, dtype=torch.long, device=dev)  # (B,)
    done = torch.zeros(batch, dtype=torch.bool, device=dev)  # (B,)
    stop_ids = torch.as_tensor(list(stop_token_ids), dtype=torch.long, device=dev)
    if max_new == 0:
        return _output(out_ids, out_lp, n_out, done, tokenizer, torch.zeros(2, batch, dtype=torch.long), 0)
    # one cache: the main layers plus one layer for MTP module 1, which shares slots and rollback
    cache = new_cache(model, batch, width + max_new + 2, model.config.n_layers + 1)
    real = mask.bool()  # (B, P)
    step = cached_forward(model, tokens, cache, real)
    sample_logp, report = sampling_logprobs(step.logits[:, -1], *knobs)  # (B, V)
    last = sample_logp.argmax(-1) if knobs[0] == 0 else sample_from(sample_logp, generator)  # (B,)
    out_ids[:, 0], out_lp[:, 0], n_out[:] = last, report.gather(1, last[:, None]).squeeze(1), 1
    done |= torch.isin(last, stop_ids)
    next_tokens = torch.cat([tokens[:, 1:], last[:, None]], dim=1)  # (B, P)
    draft_logits = _draft_logits(model, step, next_tokens, real, cache)[:, -1]  # (B, V)
    cache.advance()
    stats = torch.zeros(2, batch, dtype=torch.long, device=dev)  # proposed, accepted per row (no host sync)
    steps, two = 0, torch.ones(batch, 2, dtype=torch.bool, device=dev)
    offsets, rows = torch.arange(2, device=dev), torch.arange(batch, device=dev)  # (2,), (B,)
    while bool((live := ~done & (n_out < max_new)).any()):
        if knobs[0] == 0:
            draft_logp, draft = draft_logits, draft_logits.argmax(-1)  # (B, V), (B,) greedy needs no q
        else:
            draft_logp = sampling_logprobs(draft_logits, *knobs)[0]  # (B, V)
            draft = sample_from(draft_logp, generator)  # (B,)
        step = cached_forward(model, torch.stack([last, draft], dim=1), cache, two)
        steps += 1
        accept, pair, lps = _verify(step.logits, draft, draft_logp, knobs, generator)  # (B,), (B, 2), (B, 2)
        # the MTP draft for the next step reads the hidden state at the last committed token: slot 1 if the
        # draft was accepted, else slot 0 (its slot-1 latent is then past the row's length and overwritten)
        mtp_logits = _draft_logits(model, step, pair, two, cache)  # (B, 2, V)
        accept &= live
        stops = torch.isin(pair, stop_ids)  # (B, 2)
        # commit pair[:, 0] for live rows and pair[:, 1] where the draft was accepted and the row goes on
        take2 = accept & ~stops[:, 0] & (n_out + 1 < max_new)  # (B,)
        cache.advance(live.long() + accept.long())  # rejected slots are rolled back per row
        slots = n_out[:, None] + offsets  # (B, 2)
        out_ids.scatter_(1, slots, pair)  # writes past a row's count are never read
        out_lp.scatter_(1, slots, lps)
        n_out += live.long() + take2.long()
        done |= (live & stops[:, 0]) | (take2 & stops[:, 1])
        stats += torch.stack([live, accept])
        draft_logits = mtp_logits[rows, accept.long()]  # (B, V)
        last = pair.gather(1, accept.long()[:, None]).squeeze(1)  # (B,)
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
