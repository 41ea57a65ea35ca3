"""rewards.testing: check_reward catches each kind of contract violation; strategies produce what they say."""

import ast
import operator
import time
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.testing import (
    CheckReport,
    adversarial_completions,
    chat_completions,
    check_reward,
    countdown_problems,
    r1_completions,
)


class LengthReward:
    """A well-behaved user reward: a picklable callable object with a stable name."""

    __name__ = "length_reward"

    def __call__(self, completions, **kwargs):
        return [min(1.0, len(str(c)) / 1000) for c in completions]


def _broken(body):
    def reward(completions, **kwargs):
        return body(completions, kwargs)

    reward.__name__ = "broken"
    return reward


class Flaky:
    __name__ = "flaky"

    def __init__(self):
        self.calls = 0

    def __call__(self, completions, **kwargs):
        self.calls += 1
        return [float(self.calls % 2)] * len(completions)


def slow(completions, **kwargs):
    time.sleep(0.005)
    return [0.0] * len(completions)


def raises_on_tags(completions, **kwargs):
    return [1.0 / (str(c).count("<answer>") - 1) if "<answer>" in str(c) else 0.0 for c in completions]


VIOLATIONS = [
    # raising on some model output
    (raises_on_tags, "division by zero"),
    # one value short
    (_broken(lambda cs, kw: [0.0] * (len(cs) - 1)), "values for"),
    # NaN
    (_broken(lambda cs, kw: [float("nan")] * len(cs)), "non-finite"),
    # out of the declared range
    (_broken(lambda cs, kw: [2.0] * len(cs)), "outside"),
    # a bool is not a reward value
    (_broken(lambda cs, kw: [True] * len(cs)), "returned True"),
    # None without allow_none
    (_broken(lambda cs, kw: [None] * len(cs)), "allow_none"),
    # not a list
    (_broken(lambda cs, kw: tuple([0.0] * len(cs))), "expected a list"),
    # not deterministic
    (Flaky(), "not deterministic"),
    # rejecting keyword arguments it does not know (TRL passes many)
    (lambda completions, nums=None: [0.0] * len(completions), "unexpected keyword"),
]


@pytest.mark.parametrize(("fn", "message"), VIOLATIONS)
def test_violations_are_caught(fn, message):
    with pytest.raises(Exception, match=message):
        check_reward(fn, max_examples=20)


def test_time_budget_is_enforced():
    with pytest.raises(AssertionError, match="per sample"):
        check_reward(slow, max_seconds_per_sample=0.001, max_examples=5, max_batch_size=1)


def test_unpicklable_reward_is_caught():
    local = lambda completions, **kw: [0.0] * len(completions)  # noqa: E731 - a lambda cannot be pickled
    with pytest.raises(Exception, match=r"pickle|lambda|attribute"):
        check_reward(local, max_examples=3)
    # ... unless the caller opts out
    assert check_reward(local, max_examples=3, check_pickle=False).n_batches == 3


def test_a_good_reward_passes_and_reports():
    report = check_reward(LengthReward(), max_examples=15)
    assert isinstance(report, CheckReport)
    assert report.n_batches == 15 and report.n_completions >= 15


def test_columns_forms():
    seen = Counter()

    class Recorder:
        __name__ = "recorder"

        def __call__(self, completions, answer=None, k=None, **kwargs):
            assert len(answer) == len(completions) == len(k)
            seen.update(type(a).__name__ for a in answer)
            return [0.0] * len(completions)

    # column -> constant, column -> strategy
    columns = {"answer": "42", "k": st.integers(0, 3)}
    check_reward(Recorder(), columns=columns, max_examples=10, check_pickle=False)
    # one strategy for whole rows
    rows = st.fixed_dictionaries({"answer": st.integers(), "k": st.just(1)})
    check_reward(Recorder(), columns=rows, max_examples=10, check_pickle=False)
    assert seen["str"] and seen["int"]
    with pytest.raises(TypeError, match="columns"):
        check_reward(Recorder(), columns=["answer"])


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _value(node):
    """An independent exact evaluator for the (trusted, generated) solutions."""
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    return _OPS[type(node.op)](_value(node.left), _value(node.right))


@given(countdown_problems(min_numbers=3, max_numbers=5))
def test_countdown_problems_are_solved_by_their_solution(problem):
    assert 3 <= len(problem["nums"]) <= 5
    tree = ast.parse(problem["solution"], mode="eval")
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert sorted(literals) == sorted(problem["nums"])
    assert _value(tree) == problem["target"]


@given(r1_completions(st.just("42")))
def test_r1_completions_shape(text):
    assert text.startswith("<think>") and text.endswith("<answer>42</answer>")


@given(adversarial_completions(max_chars=5000))
def test_adversarial_completions_are_bounded(text):
    assert isinstance(text, str) and len(text) <= 2 * 5000 + 100


@given(chat_completions())
def test_chat_completions_shape(messages):
    assert messages[0]["role"] == "assistant" and isinstance(messages[0]["content"], str)
