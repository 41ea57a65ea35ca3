"""Generation: cached == uncached greedy, stops, log-probs, routing for replay, speculative decoding."""

import pytest
import torch

from policies import ModelConfig, Tokenizer, Transformer, generate, left_pad, stack_routing
from policies.sampling import sampling_logprobs
from policies.speculative import speculative_generate

PROMPTS = [[1, 50, 60, 70, 80, 90], [1, 9], [1, 10, 11], [1, 12, 13, 14]]


@pytest.fixture(scope="module")
def model64():
    torch.manual_seed(0)
    # fp64 so that argmax near-ties cannot differ between the expanded and absorbed (cached) forms
    return Transformer(ModelConfig.tiny(init_std=0.3)).double().eval()


def uncached_greedy(model, prompts, n):
    tokens, mask = left_pad(prompts)
    for _ in range(n):
        nxt = model(tokens, attention_mask=mask)[:, -1].argmax(-1)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    return tokens[:, -n:].tolist()


def test_cached_equals_uncached_greedy(model64):
    out = generate(model64, PROMPTS, max_new_tokens=16, temperature=0)
    assert out.tokens == uncached_greedy(model64, PROMPTS, 16)
    # and each row alone (no padding) gives the same tokens
    for p, t in zip(PROMPTS, out.tokens, strict=True):
        assert generate(model64, [p], max_new_tokens=16, temperature=0).tokens[0] == t


def test_logprobs_match_training_forward(model64):
    temp = 0.7
    out = generate(
        model64,
        PROMPTS,
        max_new_tokens=8,
        temperature=temp,
        top_k=20,
        top_p=0.9,
        generator=torch.Generator().manual_seed(0),
        return_routing=True,
    )
    for p, toks, lps, routing in zip(PROMPTS, out.tokens, out.logprobs, out.routing, strict=True):
        seq = torch.tensor([p + toks])
        replay = [r[None] for r in routing.unbind(0)]  # (1, T, k) per layer
        logits = model64(seq, routing=replay)[0, len(p) - 1 : -1] / temp
        ref = logits.log_softmax(-1).gather(1, torch.tensor(toks)[:, None]).squeeze(1)
        torch.testing.assert_close(torch.tensor(lps, dtype=torch.float64), ref, atol=1e-6, rtol=1e-6)
        assert routing.shape[1] == len(p) + len(toks) and (routing[:, -1] == -1).all()


def test_num_samples_prefills_once_and_equals_repeated_prompts(model64):
    # Each prompt prefilled once and its cache rows copied == the prompt repeated n times (same random
    # stream): tokens, log-probs and routing.
    kwargs = dict(max_new_tokens=8, temperature=1.0, return_routing=True, stop_token_ids=(3,))
    shared = generate(model64, PROMPTS, num_samples=3, generator=torch.Generator().manual_seed(5), **kwargs)
    repeated = [p for p in PROMPTS for _ in range(3)]
    reference = generate(model64, repeated, generator=torch.Generator().manual_seed(5), **kwargs)
    assert shared.tokens == reference.tokens and len(shared.tokens) == 3 * len(PROMPTS)
    assert len({tuple(t) for t in shared.tokens[:3]}) > 1  # the copies sample independently
    for a, b in zip(shared.logprobs, reference.logprobs, strict=True):
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b))
    assert all(torch.equal(a, b) for a, b in zip(shared.routing, reference.routing, strict=True))
    calls = []
    hook = model64.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        generate(model64, PROMPTS, max_new_tokens=1, num_samples=4)
    finally:
        hook.remove()
    assert calls == [len(PROMPTS)]  # the prefill ran over the distinct prompts only
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="num_samples"):
            generate(model64, PROMPTS, max_new_tokens=2, num_samples=bad)


def test_stop_tokens_and_strings():
    torch.manual_seed(1)
    tok = Tokenizer()
    model = Transformer(ModelConfig.tiny())
    free = generate(model, PROMPTS, max_new_tokens=20, temperature=0, tokenizer=tok)
    assert free.finished == [False] * 4 and all(len(t) == 20 for t in free.tokens)
    stop_id = free.tokens[0][5]
    out = generate(model, PROMPTS, max_new_tokens=20, temperature=0, stop_token_ids=[stop_id], tokenizer=tok)
    assert out.tokens[0] == free.tokens[0][:6] and out.finished[0]
    for full, got, fin in zip(free.tokens, out.tokens, out.finished, strict=True):
        assert got == full[: len(got)] and fin == (stop_id in full)
    stop_text = tok.decode(free.tokens[1][7:9])
    out = generate(model, PROMPTS, max_new_tokens=20, temperature=0, stop_strings=[stop_text], tokenizer=tok)
    assert out.finished[1] and stop_text in out.texts[1]
    assert stop_text not in tok.decode(out.tokens[1][:-1])  # cut exactly at the completing token
    with pytest.raises(ValueError, match="tokenizer"):
        generate(model, PROMPTS, max_new_tokens=2, stop_strings=["x"])


def test_sampling_reproducible_and_filtered():
    model = Transformer(ModelConfig.tiny(init_std=0.5))
    a = generate(model, PROMPTS, max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    b = generate(model, PROMPTS, max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    assert a.tokens == b.tokens
    logits = torch.randn(5, 263)
    sample_lp, _ = sampling_logprobs(logits, 1.0, top_p=1.0, top_k=3)
    assert (sample_lp.isfinite().sum(-1) == 3).all()
    sample_lp, _ = sampling_logprobs(logits, 1.0, top_p=0.5)
    kept = sample_lp.isfinite()
    probs = logits.softmax(-1)
    assert ((probs * kept).sum(-1) >= 0.5).all()
    with pytest.raises(ValueError, match="top_p"):
        generate(model, PROMPTS, max_new_tokens=2, top_p=0.0)
    with pytest.raises(ValueError, match="max_seq_len"):
        generate(model, PROMPTS, max_new_tokens=1000)


def test_stack_routing_layout():
    rows = [torch.arange(6).view(1, 3, 2), torch.arange(4).view(1, 2, 2)]
    out = stack_routing(rows, starts=[0, 2], length=4)
    assert out[0][1, :2].eq(-1).all() and out[0][1, 2:].tolist() == [[0, 1], [2, 3]]


def test_speculative_greedy_equals_plain(model64):
    plain = generate(model64, PROMPTS, max_new_tokens=15, temperature=0, stop_token_ids=[7])
    spec = speculative_generate(model64, PROMPTS, max_new_tokens=15, temperature=0, stop_token_ids=[7])
    assert spec.tokens == plain.tokens and spec.finished == plain.finished
    torch.testing.assert_close(
        torch.tensor([x for row in spec.logprobs for x in row]),
        torch.tensor([x for row in plain.logprobs for x in row]),
    )


def test_speculative_sampling_preserves_distribution():
    # vocab of 4 tokens: compare the empirical law of the first two sampled tokens with the exact one
    torch.manual_seed(5)
    cfg = ModelConfig.tiny(vocab_size=4, init_std=0.6)
    model = Transformer(cfg).eval()
    n = 3000
    spec = speculative_generate(
        model, [[1, 2]] * n, max_new_tokens=2, temperature=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert 0.05 < spec.acceptance_rate < 0.99  # both branches exercised
    with torch.no_grad():
        p1 = model(torch.tensor([[1, 2]]))[0, -1].softmax(-1)  # (4,)
        seqs = torch.tensor([[1, 2, a] for a in range(4)])
        p2 = model(seqs)[:, -1].softmax(-1)  # (4, 4)
    exact = (p1[:, None] * p2).flatten()  # (16,)
    counts = torch.zeros(16)
    for t in spec.tokens:
        counts[t[0] * 4 + t[1]] += 1
    chi2 = float(((counts - n * exact) ** 2 / (n * exact)).sum())
    assert chi2 < 37.7, chi2  # 99.9% quantile of chi-square with 15 degrees of freedom


class _ScriptedHead(torch.nn.Module):
    """An output head whose argmax follows ``script``, one entry per call (every row alike)."""

    def __init__(self, script, vocab=263):
        super().__init__()
        self.script, self.vocab, self.calls = script, vocab, 0

    def forward(self, h):
        out = torch.full((*h.shape[:-1], self.vocab), -10.0)
        out[..., self.script[min(self.calls, len(self.script) - 1)]] = 10.0
        self.calls += 1
        return out


def test_stop_string_window_skips_tokens_that_decode_to_nothing():
    # "a", three <bos> (decode to ""), "b": the stop string "ab" completes at the 5th token whatever the
    # check interval (the look-back window used to count the silent tokens and miss it at intervals 1 and 4)
    tok = Tokenizer()
    script = [*tok.encode("a"), tok.bos_id, tok.bos_id, tok.bos_id, *tok.encode("b"), *tok.encode("zzzzzz")]
    for interval in (1, 2, 4, 100):
        model = Transformer(ModelConfig.tiny()).eval()
        model.head = _ScriptedHead(script)
        out = generate(
            model,
            [[10, 11]],
            max_new_tokens=len(script),
            temperature=0,
            tokenizer=tok,
            stop_strings=["ab"],
            stop_check_interval=interval,
        )
        assert out.finished == [True] and out.tokens[0] == script[:5] and out.texts == ["ab"], interval


def test_last_token_routing_is_unfed_or_the_experts_it_used():
    # Rows ending at a stop id still in the batch, or cut back to a stop string, were fed past their last
    # token and record its real routing; rows ending on their last step hold -1. Both replay exactly.
    torch.manual_seed(0)
    model, tok = Transformer(ModelConfig.tiny()).eval(), Tokenizer()
    prompts = [[1, 20, 30, 40], [1, 50], [1, 60, 70]]
    out = generate(
        model,
        prompts,
        max_new_tokens=12,
        generator=torch.Generator().manual_seed(4),
        num_samples=4,
        return_routing=True,
        stop_token_ids=[100, 120, 140],
        tokenizer=tok,
        stop_strings=["e", "a"],
    )
    kinds = set()
    for p, toks, routing, lps in zip(
        [p for p in prompts for _ in range(4)], out.tokens, out.routing, out.logprobs, strict=True
    ):
        seq = torch.tensor([p + toks])
        forward = torch.stack(model(seq, return_aux=True, with_mtp=False).routing)[:, 0]  # (L, T, k)
        assert routing.shape == forward.shape
        torch.testing.assert_close(routing[:, :-1].sort(-1).values, forward[:, :-1].sort(-1).values)
        last = routing[:, -1]
        fed = bool((last >= 0).all())
        assert fed or bool((last == -1).all())
        if fed:
            assert torch.equal(last.sort(-1).values, forward[:, -1].sort(-1).values)
        kinds.add(fed)
        replayed = model(seq, routing=[r[None] for r in routing.unbind(0)])[0, len(p) - 1 : -1]
        ref = replayed.log_softmax(-1).gather(1, torch.tensor(toks)[:, None]).squeeze(1)
        torch.testing.assert_close(torch.tensor(lps), ref, atol=1e-5, rtol=1e-5)
    assert kinds == {True, False}  # both cases exercised


def test_request_checks():
    model, tok = Transformer(ModelConfig.tiny()), Tokenizer()
    for stops in ([""], ["x", ""]):
        with pytest.raises(ValueError, match="stop_strings must be non-empty"):
            generate(model, PROMPTS, max_new_tokens=3, temperature=0, stop_strings=stops, tokenizer=tok)
    with pytest.raises(ValueError, match="lone surrogate"):
        generate(model, PROMPTS, max_new_tokens=3, temperature=0, stop_strings=["a\ud800"], tokenizer=tok)
    for temp in (1e-45, 1e-30, 1e-7):
        with pytest.raises(ValueError, match="temperature=0 for greedy"):
            generate(model, PROMPTS, max_new_tokens=2, temperature=temp)
        with pytest.raises(ValueError, match="temperature=0 for greedy"):
            sampling_logprobs(torch.tensor([1.0, 0.5, -2.0]), temp)
    for temp in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            generate(model, PROMPTS, max_new_tokens=2, temperature=temp)
    gen = torch.Generator().manual_seed(0)
    out = generate(model, PROMPTS, max_new_tokens=2, temperature=1e-6, generator=gen)
    assert all(lp == lp for row in out.logprobs for lp in row)  # the smallest accepted temperature: no NaN


def test_speculative_length_check_reports_the_callers_budget():
    model = Transformer(ModelConfig.tiny())  # max_seq_len 128
    with pytest.raises(ValueError, match=r"max_new_tokens 125 \+ 2 draft slots exceeds max_seq_len=128"):
        speculative_generate(model, [[1, 2]], max_new_tokens=125, n_draft=2)
    with pytest.raises(ValueError, match="max_new_tokens=-1 must be >= 0"):
        speculative_generate(model, [[1, 2]], max_new_tokens=-1, n_draft=2)
