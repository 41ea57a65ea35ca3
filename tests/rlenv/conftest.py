"""Helpers shared by the rlenv tests."""

import pytest

import rlenv  # noqa: F401 - registers the env ids


def has_reward(name: str) -> bool:
    import rewards

    try:
        getattr(rewards, name)
    except (AttributeError, ImportError):
        return False
    return True


# Code-v0 / CodeFeedback-v0 score with rewards.code_accuracy (helper C); until it lands their default-reward
# tests are skipped with this reason instead of failing on a missing name.
needs_code_reward = pytest.mark.skipif(
    not has_reward("code_accuracy"), reason="rewards.code_accuracy not landed"
)


def correct_completion(env_id: str, info: dict) -> str | None:
    """A completion that solves the item (None where the tests cannot write one)."""
    if env_id == "rlenv/Countdown-v0":
        return f"<think>search</think><answer>{info['solution']}</answer>"
    if env_id == "rlenv/Math-v0":
        return f"<think>compute</think><answer>{info['answer']}</answer>"
    if env_id.startswith("rlenv/Code") and "solution" in info:
        return f"<think>write</think><answer>```python\n{info['solution']}```</answer>"
    return None
