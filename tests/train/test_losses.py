"""Exact checks of the GRPO loss pieces on hand-made numbers (TRL 1.16 GRPOTrainer definitions)."""

import math

import pytest
import torch

from rlenv.train.losses import aggregate_loss, clipped_surrogate, entropy_from_logits, grpo_loss, k3_kl

# Two completions, lengths 3 and 1 (max_completion_length 4): per-token losses and mask.
LOSS = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 7.0, 7.0, 7.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])


def test_grpo_is_mean_of_sequence_means():
    # seq means: (1+2+3)/3 = 2, 4/1 = 4 -> mean 3
    assert aggregate_loss(LOSS, MASK, "grpo", max_completion_length=4).item() == pytest.approx(3.0)


def test_bnpo_is_token_mean_of_the_micro_batch():
    # (1+2+3+4) / 4 tokens
    assert aggregate_loss(LOSS, MASK, "bnpo", max_completion_length=4).item() == pytest.approx(2.5)


def test_dr_grpo_divides_by_batch_times_max_length():
    # 10 / (2 rows * 4)
    assert aggregate_loss(LOSS, MASK, "dr_grpo", max_completion_length=4).item() == pytest.approx(1.25)


def test_dapo_divides_by_tokens_of_the_whole_batch():
    # alone: 10 / 4 tokens; inside a global batch of 10 tokens on 2 ranks: 10 / (10 / 2)
    assert aggregate_loss(LOSS, MASK, "dapo", max_completion_length=4).item() == pytest.approx(2.5)
    value = aggregate_loss(LOSS, MASK, "dapo", max_completion_length=4, num_items_in_batch=10, world_size=2)
    assert value.item() == pytest.approx(2.0)


@pytest.mark.parametrize(("loss_type", "expected"), [("grpo", 1.5), ("bnpo", 1.25), ("dr_grpo", 0.625)])
def test_accumulation_divides_the_non_dapo_losses(loss_type, expected):
    value = aggregate_loss(LOSS, MASK, loss_type, max_completion_length=4, accumulation_steps=2)
    assert value.item() == pytest.approx(expected)


def test_dapo_ignores_accumulation_steps():
    # DAPO's normaliser already spans the whole batch, as TRL's num_items_in_batch
    value = aggregate_loss(
        LOSS, MASK, "dapo", max_completion_length=4, num_items_in_batch=8, accumulation_steps=2
    )
    assert value.item() == pytest.approx(10 / 8)


def test_unknown_loss_type_raises():
    with pytest.raises(ValueError, match="loss_type"):
        aggregate_loss(LOSS, MASK, "mean", max_completion_length=4)


def test_dapo_over_micro_batches_equals_token_mean_of_the_batch():
    # splitting a batch in micro-batches and summing their dapo losses gives the global token mean
    whole = aggregate_loss(LOSS, MASK, "bnpo", max_completion_length=4)
    parts = sum(
        aggregate_loss(
            LOSS[i : i + 1], MASK[i : i + 1], "dapo", max_completion_length=4, num_items_in_batch=4
        )
        for i in range(2)
    )
    assert parts.item() == pytest.approx(whole.item())


def test_clipped_surrogate_hand_made():
    logp = torch.log(torch.tensor([[0.5, 1.5, 1.1, 0.7]]))  # ratio vs old=0: 0.5, 1.5, 1.1, 0.7
    old = torch.zeros(1, 4)
    loss_pos, ratio = clipped_surrogate(logp, old, torch.tensor([2.0]), epsilon_low=0.2, epsilon_high=0.2)
    assert ratio.tolist()[0] == pytest.approx([0.5, 1.5, 1.1, 0.7])
    # A>0: -min(r A, clip(r) A) -> -[0.5*2, 1.2*2, 1.1*2, 0.8*2 vs 0.7*2 -> 0.7*2]
    assert loss_pos.tolist()[0] == pytest.approx([-1.0, -2.4, -2.2, -1.4])
    loss_neg, _ = clipped_surrogate(logp, old, torch.tensor([-1.0]), epsilon_low=0.2, epsilon_high=0.2)
    # A<0: -min(-r, -clip(r)) = max(r, clip(r)) -> [0.8, 1.5, 1.1, 0.8]
    assert loss_neg.tolist()[0] == pytest.approx([0.8, 1.5, 1.1, 0.8])


def test_clip_higher_lets_positive_ratios_grow_further():
    logp = torch.log(torch.tensor([[1.25]]))
    old = torch.zeros(1, 1)
    symmetric, _ = clipped_surrogate(logp, old, torch.tensor([1.0]), epsilon_low=0.2, epsilon_high=0.2)
    higher, _ = clipped_surrogate(logp, old, torch.tensor([1.0]), epsilon_low=0.2, epsilon_high=0.28)
    assert symmetric.item() == pytest.approx(-1.2) and higher.item() == pytest.approx(-1.25)
    # the gradient flows through the unclipped ratio only under clip-higher
    logp.requires_grad_(True)
    loss, _ = clipped_surrogate(logp, old, torch.tensor([1.0]), epsilon_low=0.2, epsilon_high=0.28)
    loss.sum().backward()
    assert logp.grad.item() == pytest.approx(-1.25)


def test_clip_fractions_count_only_the_binding_side():
    logp = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]]))
    out = grpo_loss(
        logp,
        torch.zeros(2, 2),
        torch.tensor([1.0, -1.0]),
        torch.ones(2, 2),
        loss_type="bnpo",
        epsilon_low=0.2,
        epsilon_high=0.28,
        max_completion_length=2,
    )
    # row 0 (A>0): 1.5 clips high; row 1 (A<0): 0.5 clips low
    assert out.clip_high.item() == pytest.approx(0.25)
    assert out.clip_low.item() == pytest.approx(0.25)
    assert out.clip_region.item() == pytest.approx(0.5)


def test_k3_kl_values():
    logp = torch.tensor([0.0, -1.0, -2.0])
    ref = torch.tensor([0.0, -2.0, -1.0])
    # d = ref - logp: 0, -1, 1 -> exp(d) - d - 1
    expected = [0.0, math.exp(-1) + 1 - 1, math.exp(1) - 1 - 1]
    assert k3_kl(logp, ref).tolist() == pytest.approx(expected)
    assert (k3_kl(torch.randn(100), torch.randn(100)) >= 0).all()


def test_kl_term_is_added_per_token_before_aggregation():
    logp = torch.tensor([[0.0, -1.0]])
    ref = torch.tensor([[-1.0, -1.0]])
    out = grpo_loss(
        logp,
        None,
        torch.tensor([0.0]),
        torch.ones(1, 2),
        loss_type="grpo",
        epsilon_low=0.2,
        epsilon_high=0.2,
        max_completion_length=2,
        beta=0.5,
        ref_logprobs=ref,
    )
    kl = (math.exp(-1) + 1 - 1 + 0.0) / 2
    assert out.kl.item() == pytest.approx(kl)
    assert out.loss.item() == pytest.approx(0.5 * kl)
    assert out.policy_loss.item() == pytest.approx(0.0)


def test_beta_without_reference_is_an_error():
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(
            torch.zeros(1, 1),
            None,
            torch.zeros(1),
            torch.ones(1, 1),
            loss_type="grpo",
            epsilon_low=0.2,
            epsilon_high=0.2,
            max_completion_length=1,
            beta=0.1,
        )


def test_on_policy_gradient_is_advantage_weighted_logprob_gradient():
    # ratio == 1 (old = logp.detach()): d loss / d logp = -A / normaliser
    logp = torch.zeros(2, 2, requires_grad=True)
    out = grpo_loss(
        logp,
        None,
        torch.tensor([1.0, -2.0]),
        torch.ones(2, 2),
        loss_type="dapo",
        epsilon_low=0.2,
        epsilon_high=0.2,
        max_completion_length=2,
    )
    out.loss.backward()
    assert logp.grad.flatten().tolist() == pytest.approx([-0.25, -0.25, 0.5, 0.5])


def test_entropy_of_uniform_and_peaked():
    assert entropy_from_logits(torch.zeros(8)).item() == pytest.approx(math.log(8))
    assert entropy_from_logits(torch.tensor([100.0, 0.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_ragged_micro_batches_and_ranks_weigh_every_row_alike(loss_type):
    # 5 rows: one process with the whole batch, or ranks holding 3 and 2 rows (dynamic sampling leaves ranks
    # uneven) split into micro-batches of 2 (the last one short); gradients are averaged over the 2 ranks.
    torch.manual_seed(0)
    loss = torch.randn(5, 6)
    mask = (torch.rand(5, 6) > 0.3).float()
    mask[:, 0] = 1.0
    common = dict(max_completion_length=6, num_items_in_batch=mask.sum(), num_rows_in_batch=5.0)
    whole = aggregate_loss(loss, mask, loss_type, **common)
    ranks = []
    for rows in ([0, 1, 2], [3, 4]):
        micros = [rows[i : i + 2] for i in range(0, len(rows), 2)]
        ranks.append(sum(aggregate_loss(loss[m], mask[m], loss_type, accumulation_steps=len(micros),
                                        world_size=2, **common) for m in micros))
    assert (sum(ranks) / 2).item() == pytest.approx(whole.item(), rel=1e-6)
