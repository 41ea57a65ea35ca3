"""Self-speculative decoding with k drafts per step: exact greedy output, exact sampling law, rollback."""

import pytest
import torch

from policies import ModelConfig, Transformer, generate, mtp_loss
from policies.generate import cached_forward, new_cache
from policies.speculative import speculative_generate

PROMPTS = [[3, 5, 7], [1, 2], [4, 5, 6, 7, 8], [9], [5, 1, 12, 3, 3, 14]]  # the last: no progression


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained (about 1 s) on progressions mod 16, so its MTP drafts are often accepted."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig.tiny(vocab_size=16))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        start = torch.randint(0, 16, (16, 1), generator=gen)
        stride = torch.randint(1, 4, (16, 1), generator=gen)
        seq = (start + stride * torch.arange(24)) % 16  # (16, 24)
        out = model(seq, return_aux=True)
        ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), seq[:, 1:].flatten())
        loss = ce + mtp_loss(out.mtp_logits, seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.double().eval()  # fp64: no argmax near-ties between the 1-token and (k+1)-token forwards


@pytest.mark.parametrize("k", [1, 2, 3])
def test_greedy_equals_plain_with_accepted_drafts(trained, k):
    plain = generate(trained, PROMPTS, max_new_tokens=20, temperature=0, stop_token_ids=[0])
    spec = speculative_generate(
        trained, PROMPTS, max_new_tokens=20, temperature=0, stop_token_ids=[0], n_draft=k
    )
    assert spec.tokens == plain.tokens and spec.finished == plain.finished
    assert any(plain.finished) and not all(plain.finished)  # both ways of ending a row are exercised
    torch.testing.assert_close(
        torch.tensor([x for row in spec.logprobs for x in row]),
        torch.tensor([x for row in plain.logprobs for x in row]),
    )
    assert spec.acceptance_rate > 0.5  # drafts are really accepted (and rolled back when rejected)
    assert len(spec.row_acceptance) == len(PROMPTS) and min(spec.row_acceptance) < 1.0
    assert spec.n_steps < 19  # fewer main forwards than plain decoding's 19


def test_budget_edges_and_validation(trained):
    for n in (1, 2, 3):
        plain = generate(trained, PROMPTS, max_new_tokens=n, temperature=0)
        assert speculative_generate(trained, PROMPTS, max_new_tokens=n, temperature=0, n_draft=3).tokens == (
            plain.tokens
        )
    with pytest.raises(ValueError, match="n_draft"):
        speculative_generate(trained, PROMPTS, max_new_tokens=2, n_draft=0)
    with pytest.raises(ValueError, match="MTP"):
        speculative_generate(Transformer(ModelConfig.tiny(n_mtp_modules=0)), PROMPTS, max_new_tokens=2)


def test_cached_forward_matches_full_forward(trained):
    tokens = torch.tensor([[0, 3, 5, 7], [1, 2, 3, 4]])
    real = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    cache = new_cache(trained, batch=2, max_len=8)
    step = cached_forward(trained, tokens[:, :3], cache, real[:, :3])
    cache.advance()
    tail = cached_forward(trained, tokens[:, 3:], cache, real[:, 3:])
    full = trained(tokens, attention_mask=real.long())
    torch.testing.assert_close(step.logits[1], full[1, :3])
    torch.testing.assert_close(tail.logits, full[:, 3:])
    assert [r.shape for r in tail.routing] == [torch.Size([2, 1, 2])]


def test_sampling_with_two_drafts_preserves_distribution():
    # vocab of 4: the empirical law of the first three sampled tokens against the exact one (64 cells)
    torch.manual_seed(5)
    model = Transformer(ModelConfig.tiny(vocab_size=4, init_std=0.6)).eval()
    n = 4000
    spec = speculative_generate(
        model,
        [[1, 2]] * n,
        max_new_tokens=3,
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
        n_draft=2,
    )
    assert 0.05 < spec.acceptance_rate < 0.99  # accept and reject branches at both depths
    with torch.no_grad():
        p1 = model(torch.tensor([[1, 2]]))[0, -1].softmax(-1)  # (4,)
        p2 = model(torch.tensor([[1, 2, a] for a in range(4)]))[:, -1].softmax(-1)  # (4, 4)
        p3 = model(torch.tensor([[1, 2, a, b] for a in range(4) for b in range(4)]))[:, -1].softmax(
            -1
        )  # (16, 4)
    exact = ((p1[:, None] * p2).flatten()[:, None] * p3).flatten()  # (64,)
    counts = torch.zeros(64)
    for t in spec.tokens:
        counts[t[0] * 16 + t[1] * 4 + t[2]] += 1
    chi2 = float(((counts - n * exact) ** 2 / (n * exact)).sum())
    assert chi2 < 103.4, chi2  # 99.9% quantile of chi-square with 63 degrees of freedom
