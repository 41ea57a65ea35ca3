"""DAPO sampling tricks: soft overlong penalty, dynamic sampling with refill, overlong filtering, seeds."""

import gymnasium as gym
import pytest
import torch

from rlenv.train.config import GRPOConfig
from rlenv.train.distributed import DistInfo
from rlenv.train.policy import Policy, Rollouts, SamplingParams
from rlenv.train.rollout import collect_batch, make_env
from rlenv.train.sampling import generation_seed, informative_groups, soft_overlong_penalty, truncation_mask
from rlenv.train.update import compute_advantages
from tests.train.conftest import TOY_ENV


class ScriptedPolicy(Policy):
    """Completions chosen by prompt index: even prompts -> G identical completions (zero variance)."""

    def __init__(self, lengths=None):
        self.module = torch.nn.Linear(1, 1)
        self.pad_id, self.eos_id = 0, None
        self.lengths = lengths

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))

    def generate(self, prompts, n, sampling: SamplingParams):
        texts = []
        for p in prompts:
            index = int(p.split()[-1])
            texts += ["bbb"] * n if index % 2 == 0 else ["aaa" if j % 2 == 0 else "b" for j in range(n)]
        ids = [self.encode(t) for t in texts]
        finished = [len(t) < sampling.max_new_tokens for t in texts]
        prompt_ids = [self.encode(p) for p in prompts for _ in range(n)]
        return Rollouts(prompt_ids, ids, [[0.0] * len(i) for i in ids], finished, texts)


def _config(**kw):
    base = dict(env_id=TOY_ENV, prompts_per_step=2, num_generations=2, max_new_tokens=8, progress=False)
    return GRPOConfig(**{**base, **kw})


def test_soft_overlong_penalty_ramp():
    # max 10, buffer 4: no penalty up to 6, linear to -1 at 10, -penalty beyond
    assert [soft_overlong_penalty(n, 10, 4, 0.5) for n in (5, 6, 7, 10, 12)] == pytest.approx(
        [0.0, 0.0, -0.125, -0.5, -0.5]
    )
    assert soft_overlong_penalty(100, 10, 0) == 0.0


def test_informative_groups():
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.5, 0.2, float("nan"), float("nan"), float("nan")])
    assert informative_groups(rewards, 2).tolist() == [False, True, False, False]


def test_dynamic_sampling_drops_zero_variance_groups_and_refills():
    env = make_env(TOY_ENV, "{}", seed=0)
    batch, position = collect_batch(
        ScriptedPolicy(), env, _config(dynamic_sampling=True), position=0, dist=DistInfo()
    )
    # round 1: prompts 0 (dropped), 1 (kept); round 2: prompts 2 (dropped), 3 (kept)
    assert batch.indices == [1, 3]
    assert batch.stats["rollout/dropped_groups"] == 2
    assert batch.stats["rollout/sampling_rounds"] == 2
    assert position == 4
    assert len(batch.rollouts) == 4 and batch.rewards.tolist() == pytest.approx([1.0, 0.0, 1.0, 0.0])


def test_dynamic_sampling_stops_at_the_cap():
    env = make_env(TOY_ENV, "{}", seed=0)
    config = _config(dynamic_sampling=True, prompts_per_step=4, max_sampling_rounds=1)
    batch, position = collect_batch(ScriptedPolicy(), env, config, position=0, dist=DistInfo())
    assert batch.indices == [1, 3] and position == 4 and batch.stats["rollout/sampling_rounds"] == 1


def test_without_dynamic_sampling_everything_is_kept():
    env = make_env(TOY_ENV, "{}", seed=0)
    batch, _ = collect_batch(ScriptedPolicy(), env, _config(), position=0, dist=DistInfo())
    assert batch.indices == [0, 1] and batch.stats["rollout/dropped_groups"] == 0
    assert compute_advantages(batch, _config())[:2].tolist() == [0.0, 0.0]


def test_overlong_filtering_masks_truncated_rows_and_soft_penalty_shapes_rewards():
    env = make_env(TOY_ENV, "{}", seed=0)
    config = _config(max_new_tokens=3, mask_truncated=True, overlong_buffer=2, overlong_penalty=1.0)
    batch, _ = collect_batch(ScriptedPolicy(), env, config, position=0, dist=DistInfo())
    # "bbb"/"aaa" have 3 tokens = max_new_tokens: not finished (masked) and penalised by -1; "b" is fine
    assert batch.loss_weight.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert batch.rewards.tolist() == pytest.approx([0.0 - 1.0, 0.0 - 1.0, 1.0 - 1.0, 0.0])
    assert truncation_mask([True, False], False).tolist() == [1.0, 1.0]


def test_dynamic_sampling_data_parallel_shares():
    env = make_env(TOY_ENV, "{}", seed=0)
    config = _config(prompts_per_step=4)
    b0, p0 = collect_batch(ScriptedPolicy(), env, config, position=8, dist=DistInfo(0, 2))
    b1, p1 = collect_batch(ScriptedPolicy(), env, config, position=8, dist=DistInfo(1, 2))
    assert (b0.indices, b1.indices, p0, p1) == ([8, 9], [10, 11], 12, 12)


def test_a_failing_reward_is_nan_and_counted():
    env = gym.make(TOY_ENV, fail_every=3, disable_env_checker=True)
    env.reset(seed=0)
    batch, _ = collect_batch(ScriptedPolicy(), env, _config(), position=0, dist=DistInfo())
    assert batch.stats["rollout/reward_failures"] == 1
    assert torch.isnan(batch.rewards).sum() == 1


def test_generation_seeds_are_distinct_per_prompt():
    seeds = {generation_seed(0, i) for i in range(1000)}
    assert len(seeds) == 1000
