"""The reward object: TRL contract, reasons, configuration, chat completions, prefill, pickling."""

import pickle

import pytest

import rewards
from rewards import make_math_reward, math_accuracy
from rewards.math import MathRewardConfig


def test_public_names_resolve_lazily():
    assert rewards.math_accuracy is math_accuracy
    assert rewards.make_math_reward is make_math_reward
    assert math_accuracy.__name__ == "math_accuracy"


@pytest.mark.parametrize(
    ("completion", "gold", "reason"),
    [
        ("<think>a</think><answer>4</answer>", "4", "ok"),  # right
        ("<think>a</think><answer>5</answer>", "4", "wrong_value"),  # wrong
        ("<think>the answer is 4", "4", "no_answer"),  # truncated
        ("<think>a</think><answer>4 @@ 4</answer>", "4", "unparseable_answer"),  # not math
        ("<think>a</think><answer>9^{9^{9^9}}</answer>", "4", "too_large"),  # refused power tower
        ("<think>a</think><answer>" + "1" * 5000 + "</answer>", "4", "too_long"),  # over the size bound
        ("<think>a</think><answer>4</answer>", "\\unknowncommand{4}", "gold_unparseable"),  # bad gold
    ],
)
def test_reasons(completion, gold, reason):
    result = math_accuracy.explain(completion, answer=gold)
    assert result.reason == reason
    assert result.value == (None if reason == "gold_unparseable" else float(reason == "ok"))


def test_detail_shows_the_extracted_answer():
    result = math_accuracy.explain("<answer>\\frac{1}{2}</answer>", answer="0.5")
    assert result.detail == "answer='\\\\frac{1}{2}'"


def test_chat_completions_and_reasoning_content():
    chat = [[{"role": "assistant", "content": "<answer>7</answer>", "reasoning_content": "maybe \\boxed{6}"}]]
    assert math_accuracy(chat, answer=["7"]) == [1.0]
    only_thinking = [[{"role": "assistant", "content": "", "reasoning_content": "so \\boxed{7}"}]]
    assert math_accuracy(only_thinking, answer=["7"]) == [0.0]


def test_prefilled_think_in_the_prompt():
    # TinyZero prefills "<think>": a box before the model's "</think>" is thinking
    completion = "so maybe \\boxed{6}</think><answer>7</answer>"
    assert math_accuracy([completion], answer=["7"], prompts=["User: ...\nAssistant: <think>"]) == [1.0]
    assert math_accuracy(["so \\boxed{7} hmm"], answer=["7"], prompts=["Assistant: <think>"]) == [0.0]
    # a prompt that only names the tag: the box is the answer
    named = "Put your reasoning in <think> tags.\nAssistant:"
    assert math_accuracy(["6*12 = 72, so \\boxed{72}"], answer=["72"], prompts=[named]) == [1.0]


def test_extra_trainer_kwargs_are_ignored():
    values = math_accuracy(["<answer>3</answer>"], answer=["3"], trainer_state=None, completion_ids=[[1, 2]])
    assert values == [1.0]


def test_missing_answer_column_is_a_caller_error():
    with pytest.raises(ValueError, match="answer"):
        math_accuracy(["<answer>3</answer>"], solution=["3"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"timeout_s": 0.0}, "timeout_s"), ({"rel_tol": 0.1}, "rel_tol"), ({"workers": -1}, "workers")],
)
def test_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MathRewardConfig(**kwargs)
    with pytest.raises(ValueError, match=field):
        make_math_reward(**kwargs)


def test_pickles_with_its_config():
    reward = make_math_reward(timeout_s=0.7, name="acc")
    copy = pickle.loads(pickle.dumps(reward))
    assert copy.config == reward.config and copy.__name__ == "acc"
    assert copy(["<answer>1/2</answer>"], answer=["0.5"]) == [1.0]
