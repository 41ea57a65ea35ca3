"""Fast path vs reference path for the bundled policy: MLA forms, MoE dispatch, masks, replay, balancing."""

import pytest
import torch

from policies import ModelConfig, Transformer, mtp_loss
from policies.moe import Experts, Gate, MoE, dispatch, moe_looped


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.tiny())


def test_config_validation():
    with pytest.raises(ValueError, match="n_activated_experts"):
        ModelConfig.tiny(n_activated_experts=5)
    with pytest.raises(ValueError, match="qk_rope_head_dim"):
        ModelConfig.tiny(qk_rope_head_dim=3)
    with pytest.raises(ValueError, match="score_func"):
        ModelConfig.tiny(score_func="relu")
    cfg = ModelConfig.tiny()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("q_lora_rank", [0, 16])
def test_absorbed_equals_expanded_mla(q_lora_rank):
    torch.manual_seed(1)
    m = Transformer(ModelConfig.tiny(q_lora_rank=q_lora_rank))
    tokens = torch.randint(0, 263, (3, 9))
    mask = torch.ones_like(tokens)
    mask[0, :4] = 0
    for am in (None, mask):
        expanded = m(tokens, attention_mask=am, absorb=False)
        absorbed = m(tokens, attention_mask=am, absorb=True)
        torch.testing.assert_close(absorbed, expanded, atol=2e-5, rtol=1e-4)


def test_left_padding_matches_unpadded(model):
    # a left-padded row must give the same logits on its real tokens as the same row alone
    seq = torch.randint(3, 263, (1, 6))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), seq], dim=1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    alone = model(seq)
    both = model(
        torch.cat([padded, torch.randint(3, 263, (1, 9))]), attention_mask=torch.cat([mask, mask * 0 + 1])
    )
    torch.testing.assert_close(both[0, 3:], alone[0], atol=1e-5, rtol=1e-4)


def test_right_padding_matches_unpadded_rows_in_logits_and_gradients(model):
    # SFT batches are right-padded; they take the causal fused-attention path (no (B, T, T) mask), which must
    # give every real token the logits and gradients of its row alone
    assert model.config.v_head_dim < model.config.qk_head_dim  # the CPU path that pads value heads
    torch.manual_seed(4)
    rows = [torch.randint(3, 263, (n,)) for n in (9, 5, 7)]
    tokens = torch.zeros(3, 9, dtype=torch.long)
    mask = torch.zeros(3, 9, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)], mask[i, : len(row)] = row, 1

    def loss_and_grads(logits_rows):
        model.zero_grad()
        loss = sum(lg.logsumexp(-1).sum() for lg in logits_rows)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    assert model._masks(tokens, mask, None)[0] is None  # no (B, T, T) mask: the fused path is taken
    batch = model(tokens, attention_mask=mask)
    padded_loss, padded_grads = loss_and_grads([batch[i, : len(r)] for i, r in enumerate(rows)])
    alone = [model(r[None])[0] for r in rows]
    for i, r in enumerate(rows):
        torch.testing.assert_close(batch[i, : len(r)], alone[i], atol=1e-5, rtol=1e-4)
    alone_loss, alone_grads = loss_and_grads([model(r[None])[0] for r in rows])
    torch.testing.assert_close(padded_loss, alone_loss, atol=1e-4, rtol=1e-5)
    assert len(padded_grads) == len(alone_grads)
    for a, b in zip(padded_grads, alone_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("grouped", [True, False])
def test_grouped_dispatch_equals_looped(grouped):
    torch.manual_seed(2)
    experts = Experts(6, 16, 8)
    for p in experts.parameters():
        torch.nn.init.normal_(p, std=0.3)
    experts.use_grouped_mm = grouped
    x = torch.randn(40, 16)
    scores = torch.randn(40, 6)
    idx = scores.topk(2, dim=-1).indices
    idx[:10] = torch.tensor([0, 1])  # skewed, and expert 5 may be empty
    w = torch.rand(40, 2)
    torch.testing.assert_close(
        dispatch(x, w, idx, experts), moe_looped(x, w, idx, experts), atol=1e-5, rtol=1e-4
    )


def test_gradients_reach_every_used_expert():
    torch.manual_seed(3)
    cfg = ModelConfig.tiny(n_routed_experts=8, n_activated_experts=2)
    moe = MoE(cfg)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 16, cfg.dim)
    y, idx, _ = moe(x)
    (y**2).sum().backward()
    used = set(idx.flatten().tolist())
    for e in range(8):
        g = moe.experts.w1.grad[e].abs().sum() + moe.experts.w2.grad[e].abs().sum()
        assert (g > 0) == (e in used), f"expert {e}: used={e in used} grad={float(g)}"
    assert moe.gate.weight.grad.abs().sum() > 0  # the gate learns through the weights


def test_gate_weights_normalised_and_scaled():
    cfg = ModelConfig.tiny(route_scale=2.5)
    gate = Gate(cfg)
    torch.nn.init.normal_(gate.weight)
    w, idx, _ = gate(torch.randn(10, cfg.dim))
    torch.testing.assert_close(w.sum(-1), torch.full((10,), 2.5))
    assert idx.shape == (10, cfg.n_activated_experts)


def test_bias_moves_load_toward_uniform():
    torch.manual_seed(4)
    cfg = ModelConfig.tiny(n_routed_experts=8, n_activated_experts=2)
    gate = Gate(cfg).train()
    with torch.no_grad():
        gate.weight.normal_(0, 0.1)
        gate.weight[0] += 1.0  # experts 0 and 1 attract every token of this skewed batch
        gate.weight[1] += 0.8
    x = torch.randn(512, cfg.dim).abs() * 0.3 + 0.5

    def imbalance():
        gate.load.zero_()
        gate(x)
        load = gate.load / gate.load.sum()
        return float(load.max() / load.mean() - 1)

    before = imbalance()
    for _ in range(300):
        gate.load.zero_()
        gate(x)
        gate.update_bias(0.01)
    after = imbalance()
    assert before > 2.0 and after < before / 3, (before, after)
    # the bias only selects: weights are still the (normalised) raw affinities of the chosen experts
    w, idx, scores = gate(x[:4])
    torch.testing.assert_close(w, scores.gather(1, idx) / scores.gather(1, idx).sum(-1, keepdim=True))


def test_routing_replay_reproduces_logits(model):
    tokens = torch.randint(0, 263, (2, 10))
    out = model(tokens, return_aux=True)
    assert out.routing is not None and out.routing[0].shape == (2, 10, 2)
    # perturb the gate so fresh routing would differ, then replay
    with torch.no_grad():
        for moe in model.moe_layers:
            moe.gate.bias += torch.randn_like(moe.gate.bias) * 10
    fresh = model(tokens, return_aux=True)
    replayed = model(tokens, routing=out.routing, return_aux=True)
    assert any((a != b).any() for a, b in zip(fresh.routing, out.routing, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(replayed.routing, out.routing, strict=True))
    with torch.no_grad():
        for moe in model.moe_layers:
            moe.gate.bias.zero_()
    torch.testing.assert_close(model(tokens, routing=out.routing), out.logits, atol=0, rtol=0)
    partial = [r.clone() for r in out.routing]
    partial[0][:, 5:] = -1  # -1 = route normally
    torch.testing.assert_close(model(tokens, routing=partial), out.logits, atol=0, rtol=0)


def test_aux_losses_and_mtp_train(model):
    model.train()
    tokens = torch.randint(0, 263, (2, 12))
    out = model(tokens, return_aux=True)
    assert float(out.aux_loss.detach()) > 0
    assert len(out.mtp_logits) == 1 and out.mtp_logits[0].shape == (2, 11, 263)
    ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    loss = ce + out.aux_loss + mtp_loss(out.mtp_logits, tokens, weight=model.config.mtp_loss_weight)
    loss.backward()
    assert model.mtp[0].eh_proj.weight.grad.abs().sum() > 0
    assert model.expert_load()["moe/max_violation"] >= 0
    stats = model.update_expert_bias()
    assert "moe/max_violation" in stats and float(model.moe_layers[0].gate.load.sum()) == 0


def test_selective_recompute_same_gradients():
    torch.manual_seed(5)
    base = Transformer(ModelConfig.tiny(seq_aux_loss_alpha=0.0)).train()
    rec = Transformer(ModelConfig.tiny(seq_aux_loss_alpha=0.0, recompute=True)).train()
    rec.load_state_dict(base.state_dict())
    tokens = torch.randint(0, 263, (2, 8))
    mask = torch.ones_like(tokens)
    mask[1, :3] = 0
    for m in (base, rec):
        m(tokens, attention_mask=mask).logsumexp(-1).sum().backward()
    for (n, a), (_, b) in zip(base.named_parameters(), rec.named_parameters(), strict=True):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=n)
