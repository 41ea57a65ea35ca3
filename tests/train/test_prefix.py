"""Shared-prompt generation and scoring equal the per-row reference (bundled policy)."""

import pytest
import torch

import policies
import rlenv.train.policy
from rlenv.train import bundled
from rlenv.train.bundled import BundledPolicy
from rlenv.train.policy import Policy, SamplingParams
from rlenv.train.prefix import group_runs

PROMPTS = ["12+3=", "a much longer prompt: 7*8="]


def _policy(seed=0):
    return BundledPolicy.from_preset("tiny", seed=seed)


def test_group_runs():
    starts, expand = group_runs([[1, 2], [1, 2], [3], [1, 2]])
    assert starts == [0, 2, 3] and expand.tolist() == [0, 0, 1, 2]


def test_shared_generation_matches_policies_generate():
    policy = _policy()
    sampling = SamplingParams(max_new_tokens=10, temperature=1.0, seed=7, return_routing=True)
    shared = policy.generate(PROMPTS, 3, sampling)
    generator = torch.Generator().manual_seed(7)
    ids = [policy.encode(p) for p in PROMPTS for _ in range(3)]
    reference = policies.generate(
        policy.module,
        ids,
        max_new_tokens=10,
        temperature=1.0,
        generator=generator,
        return_routing=True,
        stop_token_ids=(policy.eos_id,),
        pad_id=policy.pad_id,
    )
    assert shared.completion_ids == reference.tokens
    for a, b in zip(shared.logprobs, reference.logprobs, strict=True):
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), atol=1e-5, rtol=0)
    for a, b in zip(shared.routing, reference.routing, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("layout", ["shared prompt", "right-padded rows in length passes"])
def test_scoring_paths_match_the_full_forward_in_value_and_gradient(layout, monkeypatch):
    # the bundled policy scores a group's prompt once (long prompts) or whole right-padded rows (CPU)
    monkeypatch.setattr(bundled, "_ROW_TOKEN_WORTH", 0.0 if layout == "shared prompt" else 1e9)
    monkeypatch.setattr(rlenv.train.policy, "_PASS_COST", 0)  # as many passes as lengths
    policy = _policy()
    out = policy.generate(PROMPTS, 3, SamplingParams(max_new_tokens=8, seed=1, return_routing=True))
    results = []
    for score in (Policy.score, BundledPolicy.score):  # reference (left-padded prompts) vs the path
        policy.module.zero_grad()
        scored = score(policy, out.prompt_ids, out.completion_ids, out.routing, temperature=0.9, entropy=True)
        (scored.logprobs.sum() + scored.entropy.sum() * 0).backward()
        grads = torch.cat([p.grad.flatten() for p in policy.module.parameters() if p.grad is not None])
        results.append((scored.logprobs.detach(), scored.entropy, grads))
    (lp_ref, ent_ref, g_ref), (lp, ent, g) = results
    torch.testing.assert_close(lp, lp_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent, ent_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-4)
    # and the replayed log-probs are the sampler's own
    for row, lps in enumerate(out.logprobs):
        torch.testing.assert_close(
            BundledPolicy.score(policy, out.prompt_ids, out.completion_ids, out.routing)
            .logprobs[row, : len(lps)]
            .detach(),
            torch.tensor(lps),
            atol=2e-3,
            rtol=0,
        )
