"""Group-relative advantages: GRPO (group std), batch std, Dr. GRPO (no std), NaN rewards; TRL agreement."""

import math

import pytest
import torch

from rlenv.train.advantages import group_advantages, nanstd

NAN = float("nan")


def test_group_std_hand_made():
    # group [1, 0, 0, 0]: mean 0.25, unbiased std 0.5 -> (0.75 / 0.5001, -0.25 / 0.5001, ...)
    a = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4, eps=1e-4).advantages
    assert a.tolist() == pytest.approx([0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001])


def test_dr_grpo_does_not_divide():
    a = group_advantages(torch.tensor([3.0, 1.0, 0.0, 0.0]), 2, scale="none").advantages
    assert a.tolist() == pytest.approx([1.0, -1.0, 0.0, 0.0])


def test_batch_std_uses_the_whole_batch():
    rewards = torch.tensor([1.0, 0.0, 3.0, 3.0])
    std = torch.tensor([1.0, 0.0, 3.0, 3.0]).std()  # unbiased
    a = group_advantages(rewards, 2, scale="batch", eps=0.0).advantages
    assert a.tolist() == pytest.approx([0.5 / std.item(), -0.5 / std.item(), 0.0, 0.0])
    # the all-reduced std of data-parallel ranks can be passed in
    b = group_advantages(rewards, 2, scale="batch", eps=0.0, batch_std=torch.tensor(2.0)).advantages
    assert b.tolist() == pytest.approx([0.25, -0.25, 0.0, 0.0])


def test_zero_variance_groups_get_zero_advantage_and_are_flagged():
    out = group_advantages(torch.tensor([1.0, 1.0, 0.0, 1.0]), 2)
    assert out.advantages[:2].tolist() == [0.0, 0.0]
    assert out.zero_std.tolist() == [True, False]


def test_nan_rewards_are_left_out_and_get_zero_advantage():
    out = group_advantages(torch.tensor([1.0, NAN, 0.0, 0.0]), 4, scale="none")
    # mean over judged rewards: 1/3
    assert out.advantages.tolist() == pytest.approx([2 / 3, 0.0, -1 / 3, -1 / 3])


def test_bad_group_size_raises():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="rank")


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_matches_trl_formula(scale):
    trl_utils = pytest.importorskip("trl.trainer.utils")
    torch.manual_seed(0)
    rewards = torch.rand(24).round(decimals=1)
    g = 4
    mean = torch.nanmean(rewards.view(-1, g), dim=1).repeat_interleave(g)
    if scale == "batch":
        std = trl_utils.nanstd(rewards).expand_as(rewards)
    else:
        std = trl_utils.nanstd(rewards.view(-1, g), dim=1).repeat_interleave(g)
    expected = rewards - mean
    if scale != "none":
        expected = expected / (std + 1e-4)
    ours = group_advantages(rewards, g, scale=scale).advantages
    assert torch.allclose(ours, torch.nan_to_num(expected), atol=1e-6)


def test_nanstd_matches_torch_without_nans():
    x = torch.randn(5, 7)
    assert torch.allclose(nanstd(x, dim=1), x.std(dim=1), atol=1e-6)
    assert math.isnan(nanstd(torch.tensor([1.0, NAN])).item())


def test_the_batch_std_of_a_small_spread_around_a_large_mean_is_not_lost():
    # The batch std is reduced over ranks as sums of x and x^2; in float32 100 +- 0.01 gave a std of 0.
    from rlenv.train.config import GRPOConfig
    from rlenv.train.rollout import RolloutBatch
    from rlenv.train.update import compute_advantages

    torch.manual_seed(0)
    rewards = 100.0 + 0.01 * torch.randn(64)
    batch = RolloutBatch(None, list(range(16)), rewards, {}, torch.ones(64))
    config = GRPOConfig(scale_rewards="batch", num_generations=4, prompts_per_step=16)
    got = compute_advantages(batch, config)
    centred = rewards - rewards.view(-1, 4).mean(1).repeat_interleave(4)
    torch.testing.assert_close(got, centred / (rewards.double().std().float() + config.advantage_eps))
