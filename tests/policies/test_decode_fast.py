"""Decode-only fast paths equal the general ones: folded absorbed MLA, all-experts MoE, MTP token table."""

import copy

import pytest
import torch
from torch import nn

from policies import ModelConfig, Transformer, generate
from policies.cache import constant_weights, derived
from policies.generate import new_cache
from policies.mla import MLA
from policies.moe import MoE, dispatch
from policies.rope import rope_at


def _init(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in module.parameters():
        nn.init.normal_(p, std=0.3)
    return module


def _attend(attn: MLA, cache, x, cos, sin, mask, grad: bool) -> torch.Tensor:
    """One cached absorbed step; with grad on, the unfolded absorbed form runs (the reference)."""
    with torch.set_grad_enabled(grad):
        return attn(x, cos, sin, mask, cache=cache, layer=0).detach()


@pytest.mark.parametrize("q_lora_rank", [0, 16])
def test_folded_mla_decode_equals_absorbed(q_lora_rank):
    cfg = ModelConfig.tiny(q_lora_rank=q_lora_rank)
    attn = _init(MLA(cfg))
    x = torch.randn(3, 6, cfg.dim)  # (B, T, dim): 4 prefill tokens, then 2 decoded together
    real = torch.ones(3, 6, dtype=torch.bool)
    real[1, :2] = False  # left padding in row 1
    outs = []
    for grad in (True, False):
        cache = new_cache(Transformer(cfg), batch=3, max_len=8, n_layers=1)
        for part in (slice(0, 4), slice(4, 6)):
            positions, visible = cache.prepare(real[:, part])
            cos, sin = rope_at(positions, cfg.qk_rope_head_dim)
            out = _attend(attn, cache, x[:, part], cos, sin, visible, grad)
            cache.advance()
        outs.append(out)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-4)


def test_folded_weights_follow_parameter_updates():
    cfg = ModelConfig.tiny()
    attn = _init(MLA(cfg))
    cache = new_cache(Transformer(cfg), batch=1, max_len=4, n_layers=1)
    x = torch.randn(1, 1, cfg.dim)
    one = torch.ones(1, 1, dtype=torch.bool)

    def step(grad: bool) -> torch.Tensor:
        positions, visible = cache.prepare(one)
        cos, sin = rope_at(positions, cfg.qk_rope_head_dim)
        return _attend(attn, cache, x, cos, sin, visible, grad)  # not advanced: same slot every time

    cache.prepare(one)
    cache.advance()  # one token already cached, so the absorbed core runs
    before = step(False)
    with torch.no_grad():
        attn.wo.weight.mul_(2.0)  # an in-place update, like an optimiser step
        attn.wkv_b.weight.add_(0.1)
    after = step(False)
    torch.testing.assert_close(after, step(True), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(before, after)


def test_derived_is_built_once_per_block_and_on_every_call_outside_one():
    w, calls = torch.ones(3), []

    class Owner:
        pass

    owner = Owner()

    def twice() -> torch.Tensor:
        return derived(owner, "x", [w], lambda: calls.append(1) or w * 2)

    with constant_weights():
        for _ in range(3):
            twice()
        assert len(calls) == 1
        w.add_(1)  # a version bump is still seen inside a block
        assert torch.equal(twice(), torch.full((3,), 4.0)) and len(calls) == 2
        with constant_weights():  # nested: the outer block's weights
            twice()
        assert len(calls) == 2
    twice(), twice()
    assert len(calls) == 4


@pytest.mark.parametrize("n_tokens", [1, 3, 8])
def test_all_experts_equals_dispatch(n_tokens):
    cfg = ModelConfig.tiny(route_scale=2.5)
    moe = _init(MoE(cfg), seed=n_tokens).eval()
    x = torch.randn(1, n_tokens, cfg.dim)
    with torch.no_grad():  # the dense path
        fast, idx, _ = moe(x)
        weights, indices, _ = moe.gate(x[0])
        general = dispatch(x[0], weights, indices, moe.experts) + moe.shared_experts(x[0])
    assert fast.shape == (1, n_tokens, cfg.dim) and torch.equal(idx[0], indices)
    torch.testing.assert_close(fast[0], general, atol=1e-5, rtol=1e-4)
    with torch.enable_grad():  # the grouped path, as in training
        torch.testing.assert_close(moe(x)[0].detach(), fast, atol=1e-5, rtol=1e-4)


def test_all_experts_honours_replay():
    cfg = ModelConfig.tiny()
    moe = _init(MoE(cfg)).eval()
    x = torch.randn(1, 2, cfg.dim)
    replay = torch.tensor([[[3, 0], [-1, -1]]])  # row 0 replayed, row 1 routed afresh
    with torch.no_grad():
        fast, idx, _ = moe(x, routing=replay)
    with torch.enable_grad():
        general, idx_general, _ = moe(x, routing=replay)
    assert idx[0, 0].tolist() == [3, 0] and torch.equal(idx, idx_general)
    torch.testing.assert_close(fast, general.detach(), atol=1e-5, rtol=1e-4)


def test_mtp_token_table_equals_combine():
    model = _init(Transformer(ModelConfig.tiny()))
    module, tokens = model.mtp[0], torch.tensor([[1, 5, 7]])
    h = torch.randn(1, 3, model.config.dim)
    with torch.no_grad():
        fast = module.combine_tokens(h, tokens, model.embed)
        general = module.combine(h, model.embed(tokens))
    torch.testing.assert_close(fast, general, atol=1e-5, rtol=1e-4)


def test_cached_greedy_still_equals_uncached_on_small_preset():
    torch.manual_seed(0)
    model = Transformer(ModelConfig.small(n_layers=2)).eval()
    prompts = [[1, 40, 41, 42], [7, 8]]
    out = generate(model, prompts, max_new_tokens=12, temperature=0)
    for prompt, tokens in zip(prompts, out.tokens, strict=True):
        seq = list(prompt)
        with torch.enable_grad():  # uncached: the training forward (expanded MLA, grouped MoE) every step
            for _ in range(12):
                seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
        assert tokens == seq[len(prompt) :]


def test_cache_select_may_repeat_rows():
    cfg = ModelConfig.tiny()
    cache = new_cache(Transformer(cfg), batch=2, max_len=4, n_layers=1)
    cache.prepare(torch.ones(2, 1, dtype=torch.bool))
    cache.write(0, torch.tensor([[[1.0] * 16], [[2.0] * 16]]), torch.zeros(2, 1, cfg.qk_rope_head_dim))
    cache.advance()
    cache.select(torch.tensor([0, 0, 1]))  # a shared prompt expanded to its group, as rlenv.train.prefix does
    cache.prepare(torch.ones(3, 1, dtype=torch.bool))
    c_kv, _ = cache.write(0, torch.full((3, 1, 16), 5.0), torch.zeros(3, 1, cfg.qk_rope_head_dim))
    assert c_kv[:, :, 0].tolist() == [[1.0, 5.0], [1.0, 5.0], [2.0, 5.0]]


@pytest.mark.parametrize("update", ["fused_adamw", "through_data"])
def test_generation_follows_updates_that_skip_the_version_counter(update):
    # torch's fused AdamW and writes through ``.data`` change parameters without bumping their version
    # counters: weights folded for an earlier generate call must not outlive it.
    torch.manual_seed(0)
    model = _init(Transformer(ModelConfig.tiny()), seed=1).eval()
    prompts = [[1, 40, 41, 42], [7, 8]]
    generate(model, prompts, max_new_tokens=4, temperature=0)  # folds the decode-time weights
    versions = [p._version for p in model.parameters()]
    if update == "fused_adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
        model(torch.tensor(prompts[:1])).logsumexp(-1).sum().backward()
        optimizer.step()
    else:
        for p in model.parameters():
            p.data.mul_(1.5)
    assert [p._version for p in model.parameters()] == versions  # the premise: no version bump
    after = generate(model, prompts, max_new_tokens=6, temperature=0)
    fresh = generate(copy.deepcopy(model), prompts, max_new_tokens=6, temperature=0)
    assert after.tokens == fresh.tokens
    for ours, theirs in zip(after.logprobs, fresh.logprobs, strict=True):
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs))
