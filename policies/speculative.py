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
from dataclasses import dataclass

import torch

from policies.cache import KVCache
from policies.generate import GenerationOutput, check_request, left_pad, new_cache
from policies.model import Transformer
from policies.mtp import MTPModule
from policies.sampling import check_sampling, sample_from, sampling_logprobs


@dataclass
class SpeculativeOutput(GenerationOutput):
    """``GenerationOutput`` plus draft statistics."""

    acceptance_rate: float = 0.0
    """Accepted drafts / proposed drafts over live rows."""
    n_steps: int = 0
    """Main-model decode forwards (each over two tokens)."""


def _mtp_step(
    model: Transformer,
    module: MTPModule,
    hidden: torch.Tensor,
    next_tokens: torch.Tensor,
    cache: KVCache,
    real: torch.Tensor,
) -> torch.Tensor:
    """Run MTP module 1 with its cache on (B, n) positions; returns its logits (B, n, V)."""
    positions, visible = cache.prepare(real)
    cos, sin = model.rope(positions)  # (B, n, dr/2)
    x = module.combine(hidden, model.embed(next_tokens))  # (B, n, dim)
    h, _, _ = module.block(x, cos, sin, mask=visible, token_mask=real, cache=cache, cache_layer=0)
    return model.head(module.norm(h))  # (B, n, V)


def _verify(
    logits: torch.Tensor,
    draft: torch.Tensor,
    draft_logp: torch.Tensor,
    knobs: tuple[float, float, int],
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, ...]:
    """Accept/reject each row's draft; returns accept (B,), first, second tokens and their log-probs."""
    if knobs[0] == 0:  # greedy: p and q are one-hot, so acceptance is an equality test
        report = logits.float().log_softmax(-1)  # (B, 2, V)
        first, second = logits.argmax(-1).unbind(1)  # (B,), (B,)
        lp_first = report[:, 0].gather(1, first[:, None]).squeeze(1)
        lp_second = report[:, 1].gather(1, second[:, None]).squeeze(1)
        return first == draft, first, second, lp_first, lp_second
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
    lp_first = report[:, 0].gather(1, first[:, None]).squeeze(1)
    lp_second = report[:, 1].gather(1, second[:, None]).squeeze(1)
    return accept, first, second, lp_first, lp_second


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
    rows = torch.arange(batch, device=dev)
    if max_new == 0:
        return _output(out_ids, out_lp, n_out, done, tokenizer, 0.0, 0)
    cache, mtp_cache = (
        new_cache(model, batch, width + max_new + 2),
        new_cache(model, batch, width + max_new + 2, 1),
    )
    module = model.mtp[0]
    out = model(tokens, attention_mask=mask, cache=cache, return_aux=True, with_mtp=False)
    cache.advance()
    sample_logp, report = sampling_logprobs(out.logits[:, -1], *knobs)  # (B, V)
    last = sample_logp.argmax(-1) if knobs[0] == 0 else sample_from(sample_logp, generator)  # (B,)
    out_ids[:, 0], out_lp[:, 0], n_out[:] = last, report.gather(1, last[:, None]).squeeze(1), 1
    done |= torch.isin(last, stop_ids)
    next_tokens = torch.cat([tokens[:, 1:], last[:, None]], dim=1)  # (B, P)
    draft_logits = _mtp_step(model, module, out.hidden, next_tokens, mtp_cache, mask.bool())[:, -1]
    mtp_cache.advance()
    proposed = accepted_total = steps = 0
    two = torch.ones(batch, 2, dtype=torch.bool, device=dev)
    while bool((live := ~done & (n_out < max_new)).any()):
        if knobs[0] == 0:
            draft_logp, draft = draft_logits, draft_logits.argmax(-1)  # (B, V), (B,) greedy needs no q
        else:
            draft_logp = sampling_logprobs(draft_logits, *knobs)[0]  # (B, V)
            draft = sample_from(draft_logp, generator)  # (B,)
        out = model(torch.stack([last, draft], dim=1), cache=cache, return_aux=True, with_mtp=False)
        steps += 1
        accept, first, second, lp1, lp2 = _verify(out.logits, draft, draft_logp, knobs, generator)
        advance = torch.where(live, 1 + accept.long(), 0)  # (B,) finished rows stay put (no cache overflow)
        cache.advance(advance)
        proposed += int(live.sum())
        accepted_total += int((accept & live).sum())
        # commit `first` for live rows, then `second` where the draft was accepted and the row goes on
        out_ids[rows, n_out], out_lp[rows, n_out] = first, lp1
        n_out += live.long()
        done |= live & torch.isin(first, stop_ids)
        take2 = live & accept & ~done & (n_out < max_new)  # (B,)
        out_ids[rows, n_out], out_lp[rows, n_out] = torch.where(take2, second, out_ids[rows, n_out]), lp2
        n_out += take2.long()
        done |= take2 & torch.isin(second, stop_ids)
        mtp_logits = _mtp_step(model, module, out.hidden, torch.stack([first, second], dim=1), mtp_cache, two)
        mtp_cache.advance(advance)
        draft_logits = mtp_logits[rows, accept.long()]  # (B, V)
        last = torch.where(accept, second, first)  # (B,)
    rate = accepted_total / max(proposed, 1)
    return _output(out_ids, out_lp, n_out.clamp(max=max_new), done, tokenizer, rate, steps)


def _output(
    out_ids: torch.Tensor,
    out_lp: torch.Tensor,
    n_out: torch.Tensor,
    done: torch.Tensor,
    tokenizer: object,
    rate: float,
    steps: int,
) -> SpeculativeOutput:
    n = n_out.tolist()
    ids, lps = out_ids.tolist(), out_lp.tolist()
    tokens = [ids[i][: n[i]] for i in range(len(n))]
    texts = None if tokenizer is None else [tokenizer.decode(t) for t in tokens]  # type: ignore[attr-defined]
    return SpeculativeOutput(
        tokens=tokens,
        logprobs=[lps[i][: n[i]] for i in range(len(n))],
        finished=done.tolist(),
        texts=texts,
        acceptance_rate=rate,
        n_steps=steps,
    )
