"""Curriculum schedules, vector envs (sync + async), export round-trips."""

import json
from collections import deque

import gymnasium as gym
import pytest
from gymnasium.vector import AutoresetMode

import rlenv
from rlenv.curriculum import AdaptiveSchedule, CurriculumWrapper, FixedSchedule


def always(value):
    def reward(completions, **columns):
        return [value] * len(completions)

    return reward


def test_fixed_schedule_follows_milestones():
    env = CurriculumWrapper(
        gym.make("rlenv/Countdown-v0", reward=always(0.0)), FixedSchedule(milestones=((0, 1), (3, 2), (5, 4)))
    )
    levels = []
    for _ in range(7):
        _, info = env.reset(seed=len(levels))
        levels.append(info["difficulty"])
        env.step("x")
    assert levels == [1, 1, 1, 2, 2, 4, 4]
    with pytest.raises(ValueError):
        FixedSchedule(milestones=((1, 1),))


@pytest.mark.parametrize(
    ("value", "start", "expected"), [(1.0, 1, [1, 1, 1, 2, 2, 2, 3]), (0.0, 4, [4, 4, 4, 3, 3, 3, 2])]
)
def test_adaptive_schedule_raises_on_success_and_lowers_on_collapse(value, start, expected):
    schedule = AdaptiveSchedule(start=start, window=3, raise_above=0.6, lower_below=0.2)
    env = CurriculumWrapper(gym.make("rlenv/Math-v0", reward=always(value)), schedule)
    levels = []
    for _ in range(7):
        levels.append(env.reset()[1]["difficulty"])
        env.step("x")
    assert levels == expected
    assert env.history[0] == (0, start) and len(env.history) == 3


def test_adaptive_schedule_holds_in_between_and_validates():
    s = AdaptiveSchedule(window=4, raise_above=0.7, lower_below=0.2)
    assert s.next_level(2, 10, deque([True, False, True, False])) == 2
    assert s.next_level(2, 10, deque([True])) == 2  # window not full yet
    with pytest.raises(ValueError):
        AdaptiveSchedule(raise_above=0.1, lower_below=0.5)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs_autoreset_on_the_same_step(mode):
    envs = rlenv.make_vec("rlenv/Countdown-v0", 3, mode=mode)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=10)
    assert len(obs) == 3 and all(isinstance(o, str) for o in obs)
    completions = [f"<think>.</think><answer>{s}</answer>" for s in info["solution"]]
    completions[1] = "wrong 😀\n"
    obs2, rewards, terminated, truncated, info2 = envs.step(completions)
    assert rewards.tolist() == [1.0, 0.0, 1.0] and terminated.all() and not truncated.any()
    assert info2["final_info"]["rewards"]["accuracy"].tolist() == [1.0, 0.0, 1.0]
    assert list(info2["index"]) == [1, 1, 1] and list(obs2) != list(obs)  # already on the next items
    envs.close()


def test_plain_make_vec_gets_the_safe_defaults_and_next_step_is_refused():
    envs = gym.make_vec("rlenv/Math-v0", 2)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    envs.close()
    with pytest.raises(ValueError, match="NEXT_STEP"):
        rlenv.make_vec("rlenv/Math-v0", 2, autoreset_mode="NextStep")
    with pytest.raises(ValueError, match="mode"):
        rlenv.make_vec("rlenv/Math-v0", 2, mode="threads")


@pytest.mark.parametrize("env_id", sorted(rlenv.ENV_IDS))
def test_export_round_trip(env_id, tmp_path):
    path = rlenv.to_jsonl(env_id, 5, tmp_path / "rows.jsonl", seed=4, start=2, difficulty=3, template="chat")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["index"] for r in rows] == [2, 3, 4, 5, 6]
    for row in rows:
        assert rlenv.regenerate(row) == row
        env = gym.make(env_id, difficulty=3, template="chat")
        obs, info = env.reset(seed=4, options={"index": row["index"]})
        assert list(obs) == row["prompt"] and all(row[k] == v for k, v in env.unwrapped.columns(info).items())


def test_hf_dataset_has_prompt_and_reward_columns():
    pytest.importorskip("datasets")
    ds = rlenv.to_hf_dataset("rlenv/Countdown-v0", 8, seed=0)
    assert len(ds) == 8 and {"prompt", "nums", "target", "env_id", "seed", "index"} <= set(ds.column_names)
    assert rlenv.regenerate(ds[3]) == ds[3]


def test_regenerate_needs_unserialisable_kwargs_again():
    rows = [{"problem": "1+1?", "answer": "2"}]
    row = rlenv.export_rows("rlenv/Math-v0", 1, source="jsonl", data=rows)[0]
    with pytest.raises(ValueError, match="data"):
        rlenv.regenerate(row)
    assert rlenv.regenerate(row, data=rows) == row
