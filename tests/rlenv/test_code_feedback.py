"""CodeFeedback-v0: feedback turns, attempt limit, final vs shaped reward, chat form, TRL environment adapter.

A stand-in tester (a real ``rewards.Reward``) keeps these tests independent of the sandbox: it passes a
completion containing ``FIXED`` and otherwise explains which "test" failed. The end-to-end test with the real
``rewards.code_accuracy`` runs when that reward is available.
"""

import ast

import gymnasium as gym
import pytest

from rewards import Reward, RewardResult
from rlenv.envs.code_feedback import CodeFeedbackTool
from tests.rlenv.conftest import needs_code_reward


class FakeTester(Reward):
    __name__ = "fake_tests"
    optional_columns = ("tests", "test", "entry_point")

    def judge(self, completion, **row):
        if "FIXED" in completion.text:
            return RewardResult(1.0, "ok")
        half = "HALF" in completion.text
        return RewardResult(0.5 if half else 0.0, "failed", "assert solve(2) == 4  # got 5")


def make(**kwargs):
    tester = FakeTester()
    return gym.make("rlenv/CodeFeedback-v0", reward=tester, tester=tester, **kwargs)


def test_failing_tests_come_back_and_reward_is_paid_on_the_final_attempt():
    env = make(max_attempts=3)
    prompt, info = env.reset(seed=0)
    assert info["attempt"] == 0
    obs, reward, terminated, _, info = env.step("def solve(x): return x + 3")
    assert not terminated and reward == 0.0 and info["attempt"] == 1
    assert obs.startswith(prompt + "def solve(x): return x + 3")
    assert (
        "Attempt 1 of 3 failed" in obs
        and "assert solve(2) == 4  # got 5" in obs
        and obs.endswith("Assistant:")
    )
    obs, reward, terminated, _, _ = env.step("HALF")
    assert not terminated and reward == 0.0 and "Attempt 2 of 3" in obs
    obs, reward, terminated, _, info = env.step("still wrong")
    assert terminated and reward == 0.0 and obs == "" and info["attempt"] == 3
    with pytest.raises(gym.error.ResetNeeded):
        env.step("again")


def test_success_ends_the_episode_early():
    env = make(max_attempts=5)
    env.reset(seed=1)
    env.step("wrong")
    _, reward, terminated, _, info = env.step("FIXED")
    assert terminated and reward == 1.0 and info["attempt"] == 2


def test_shaped_rewards_sum_to_the_final_score():
    env = make(max_attempts=3, reward_mode="shaped")
    env.reset(seed=2)
    rewards = [env.step(c)[1] for c in ("HALF", "wrong", "FIXED")]
    assert rewards == [0.5, -0.5, 1.0] and sum(rewards) == 1.0


def test_chat_template_appends_assistant_and_user_turns():
    env = make(template="chat", max_attempts=2)
    messages, _ = env.reset(seed=0)
    obs, *_ = env.step("attempt one")
    assert [m["role"] for m in obs] == ["system", "user", "assistant", "user"]
    assert (
        obs[:2] == messages and obs[2]["content"] == "attempt one" and "Attempt 1 of 2" in obs[3]["content"]
    )
    assert obs in env.observation_space


def test_trl_environment_adapter_contract():
    tool = CodeFeedbackTool(max_attempts=2, tester=FakeTester())
    assert (
        tool.reset(prompt=[{"role": "user", "content": "..."}], tests=["assert solve(1) == 2"], index=3)
        is None
    )
    assert "1 attempt(s) left" in tool.run_tests("def solve(x): return x")
    assert tool.get_reward() == 0.0
    assert tool.run_tests("FIXED = True") == "All tests passed." and tool.get_reward() == 1.0
    assert tool.run_tests("more") == "No attempts left."
    with pytest.raises(ValueError, match="test columns"):
        tool.reset(prompt="p", answer="4")
    # TRL exposes public methods other than reset / get_reward as tools: exactly one, with a typed docstring
    public = [
        m for m in vars(CodeFeedbackTool) if not m.startswith("_") and callable(getattr(CodeFeedbackTool, m))
    ]
    assert sorted(public) == ["get_reward", "reset", "run_tests"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_attempts"):
        make(max_attempts=0)
    with pytest.raises(ValueError, match="reward_mode"):
        make(reward_mode="dense")


@needs_code_reward
def test_real_code_reward_feedback_loop():
    env = gym.make("rlenv/CodeFeedback-v0", max_attempts=3, kinds=("number",), difficulty=1)
    _, info = env.reset(seed=0)
    wrong = "<think>.</think><answer>```python\ndef solve(n):\n    return None\n```</answer>"
    obs, reward, terminated, _, step_info = env.step(wrong)
    assert not terminated and reward == 0.0 and step_info["passed"] == 0.0
    assert "assert solve(" in obs.split("Attempt 1 of 3 failed")[1]  # the failing tests are shown
    right = f"<think>.</think><answer>```python\n{info['solution']}```</answer>"
    _, reward, terminated, _, step_info = env.step(right)
    assert terminated and reward == 1.0 and step_info["attempt"] == 2


@needs_code_reward
def test_feedback_shows_some_tests_and_the_score_counts_all():
    # A lookup table of the shown cases must not earn full reward: half the tests stay hidden.
    env = gym.make("rlenv/CodeFeedback-v0", max_attempts=2, kinds=("number",), difficulty=1)
    env.reset(seed=0)
    tests = env.unwrapped._row["tests"]
    wrong = "<think>.</think><answer>```python\ndef solve(n):\n    return None\n```</answer>"
    obs, *_ = env.step(wrong)
    feedback = obs.split("Attempt 1 of 2 failed")[1]
    assert f"(0 of {len(tests)} tests passed)" in feedback and "{" not in feedback.split(":")[0]
    shown = [t for t in tests if t.split(" == ")[0] in feedback]
    assert 1 <= len(shown) == len(tests) // 2  # difficulty 1: 4 tests, 2 shown
    table = {int(t.split("solve(")[1].split(")")[0]): ast.literal_eval(t.split(" == ")[1]) for t in shown}
    cheat = f"<think>.</think><answer>```python\ndef solve(n):\n    return {table!r}[n]\n```</answer>"
    _, reward, terminated, _, info = env.step(cheat)
    assert terminated and info["passed"] == pytest.approx(len(shown) / len(tests)) and reward < 0.9


def test_shown_share_is_checked():
    with pytest.raises(ValueError, match="shown_share"):
        make(shown_share=0.0)
    with pytest.raises(ValueError, match="shown_share"):
        CodeFeedbackTool(shown_share=1.5)
