"""Hypothesis properties: any model output is inside the action space and is scored, never raised on."""

import math

import gymnasium as gym
from hypothesis import given, settings
from hypothesis import strategies as st

import rlenv  # noqa: F401 - registers the ids
from rewards.testing import any_completions
from rlenv.tasks import countdown as cd

COUNTDOWN = gym.make("rlenv/Countdown-v0")
MATH = gym.make("rlenv/Math-v0", template="tinyzero")


@settings(max_examples=40)
@given(completion=any_completions(max_chars=20_000), index=st.integers(0, 10_000))
def test_any_completion_is_a_valid_action_with_a_bounded_reward(completion, index):
    for env in (COUNTDOWN, MATH):
        assert completion in env.action_space
        env.reset(seed=1, options={"index": index})
        _, reward, terminated, truncated, info = env.step(completion)
        assert math.isfinite(reward) and 0.0 <= reward <= 1.0 and terminated and not truncated
        assert set(info["rewards"]) == {"accuracy", "format"}


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32), index=st.integers(0, 2**20), level=st.integers(1, 5))
def test_generated_countdown_items_are_in_range_and_their_witness_is_exact(seed, index, level):
    config = cd.CountdownConfig.for_difficulty(level)
    item = cd.generate_item(index, seed=seed, config=config)
    assert config.min_numbers <= len(item["nums"]) <= config.max_numbers
    assert all(config.min_value <= n <= config.max_value for n in item["nums"])
    assert config.min_target <= item["target"] <= config.max_target
    completion = f"<think>.</think><answer>{item['solution']}</answer>"
    assert rlenv_reward(completion, item) == 1.0


def rlenv_reward(completion, item):
    import rewards

    return rewards.countdown_accuracy([completion], nums=[item["nums"]], target=[item["target"]])[0]
