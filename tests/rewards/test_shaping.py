"""Shaping rewards: example tables against the published formulas, units, validation, contract."""

import math
import pickle

import pytest

from rewards import (
    countdown_accuracy,
    make_cosine_length_reward,
    make_language_consistency_reward,
    make_repetition_penalty,
    make_soft_overlong_reward,
    reasoning_steps,
)
from rewards.testing import check_reward, countdown_problems


def open_r1_cosine(is_correct, length, max_len=1000, wmin=-1.0, wmax=-0.5, cmin=0.5, cmax=1.0):
    """open-r1's formula, written out independently."""
    progress = length / max_len
    cosine = math.cos(progress * math.pi)
    lo, hi = (cmin, cmax) if is_correct else (wmax, wmin)
    return lo + 0.5 * (hi - lo) * (1.0 + cosine)


COSINE = make_cosine_length_reward(countdown_accuracy, max_len=100)


@pytest.mark.parametrize(
    ("pad", "correct"),
    [
        (0, True),  # short and correct: close to max_value_correct
        (50, True),  # half way
        (500, True),  # beyond max_len: min_value_correct
        (0, False),  # short and wrong: close to min_value_wrong (giving up early is worst)
        (50, False),  # half way
        (500, False),  # long and wrong: max_value_wrong
    ],
)
def test_cosine_matches_open_r1(pad, correct):
    eq = "3 * 8" if correct else "3 + 8"
    text = "x" * pad + f"<answer>{eq}</answer>"
    value = COSINE([text], nums=[[3, 8]], target=[24])[0]
    assert value == pytest.approx(open_r1_cosine(correct, min(len(text), 100), max_len=100))


def test_cosine_orders_lengths():
    short, long = "<answer>3 * 8</answer>", "x" * 60 + "<answer>3 * 8</answer>"
    wrong_short, wrong_long = "<answer>3 + 8</answer>", "x" * 60 + "<answer>3 + 8</answer>"
    v = COSINE([short, long, wrong_short, wrong_long], nums=[[3, 8]] * 4, target=[24] * 4)
    # correct: shorter is better; wrong: longer is better; any correct beats any wrong
    assert v[0] > v[1] > v[3] > v[2]


def test_cosine_uses_tokens_when_given():
    text = "<answer>3 * 8</answer>"
    by_chars = COSINE([text], nums=[[3, 8]], target=[24])[0]
    by_ids = COSINE([text], nums=[[3, 8]], target=[24], completion_ids=[[1, 2, 3]])[0]
    assert by_ids == pytest.approx(open_r1_cosine(True, 3, max_len=100))
    assert by_ids != by_chars
    # a tokenizer object with .encode is used when ids are absent
    class Words:
        def encode(self, text):
            return text.split()

    words = make_cosine_length_reward(countdown_accuracy, max_len=100, tokenizer=Words())
    assert words([text], nums=[[3, 8]], target=[24])[0] == pytest.approx(open_r1_cosine(True, 3, max_len=100))


def test_cosine_none_passthrough_and_validation():
    assert COSINE(["<answer>1</answer>"], nums=[[]], target=[1]) == [None]
    with pytest.raises(ValueError, match="min_value_wrong"):
        make_cosine_length_reward(countdown_accuracy, min_value_wrong=0.0, max_value_wrong=-1.0)
    with pytest.raises(ValueError, match="max_len"):
        make_cosine_length_reward(countdown_accuracy, max_len=0)
    with pytest.raises(TypeError, match="accuracy"):
        make_cosine_length_reward("not a reward")
    assert COSINE.__name__ == "cosine_countdown_accuracy"


REPETITION_CASES = [
    # no repeated trigram
    ("the cat sat on the mat", 0.0),
    # one trigram repeated: 1 - 1/4 distinct
    ("go go go go go go", -0.75),
    # too short for a trigram
    ("hi there", 0.0),
    # case-insensitive words
    ("A b c a B C", -0.25),
]


@pytest.mark.parametrize(("text", "value"), REPETITION_CASES)
def test_repetition_penalty_table(text, value):
    assert make_repetition_penalty()([text]) == [pytest.approx(value)]


def test_repetition_penalty_on_token_ids():
    penalty = make_repetition_penalty(ngram_size=2, max_penalty=-0.5)
    # ids [1,2,1,2,1]: bigrams (1,2),(2,1),(1,2),(2,1) -> 2 distinct of 4
    assert penalty(["whatever"], completion_ids=[[1, 2, 1, 2, 1]]) == [pytest.approx(-0.25)]
    with pytest.raises(ValueError, match="max_penalty"):
        make_repetition_penalty(max_penalty=0.5)
    with pytest.raises(ValueError, match="ngram_size"):
        make_repetition_penalty(ngram_size=0)


OVERLONG_CASES = [
    # within L_max - L_cache: no punishment
    (60, 0.0),
    # at the start of the ramp
    (80, 0.0),
    # half way down the ramp
    (90, -0.5),
    # exactly L_max: the end of the ramp
    (100, -1.0),
    # beyond L_max
    (150, -1.0),
]


@pytest.mark.parametrize(("length", "value"), OVERLONG_CASES)
def test_soft_overlong_dapo(length, value):
    # DAPO eq. 13 with L_max = 100, L_cache = 20, lengths as token ids
    overlong = make_soft_overlong_reward(max_length=100, cache_length=20)
    assert overlong(["x"], completion_ids=[list(range(length))]) == [pytest.approx(value)]


def test_soft_overlong_validation_and_chars():
    assert make_soft_overlong_reward(10, 4, penalty=2.0)(["x" * 8]) == [pytest.approx(-1.0)]
    with pytest.raises(ValueError, match="cache_length"):
        make_soft_overlong_reward(10, 20)
    with pytest.raises(ValueError, match="penalty"):
        make_soft_overlong_reward(10, 4, penalty=-1.0)


STEP_CASES = [
    # three explicit steps
    ("Step 1: add.\nStep 2: multiply.\nStep 3: check.", 1.0),
    # numbered list lines
    ("1. add\n2. multiply", 2 / 3),
    # bullets
    ("plan:\n- add\n- multiply\n* check", 1.0),
    # transition words
    ("First, add. Next, multiply. Finally, check.", 1.0),
    # no structure
    ("just the answer", 0.0),
]


@pytest.mark.parametrize(("text", "value"), STEP_CASES)
def test_reasoning_steps_table(text, value):
    assert reasoning_steps([text]) == [pytest.approx(value)]


LANGUAGE_CASES = [
    # all English
    ("en", "<think>we multiply three by eight</think><answer>24</answer>", 1.0),
    # half the words Chinese (each Han character is a word)
    ("en", "<think>先乘 then add</think>", 0.5),
    # Chinese target
    ("zh", "<think>先乘 then add</think>", 0.5),
    # Russian target on Cyrillic reasoning; the Latin answer is outside the reasoning
    ("ru", "<think>умножим три на восемь</think><answer>twenty four</answer>", 1.0),
    # Japanese mixes kana and Han
    ("ja", "<think>三を掛けます</think>", 1.0),
    # digits and symbols are not words: nothing to judge
    ("en", "<think>3 * 8 = 24</think>", 0.0),
    # an unclosed reasoning block is judged to the end
    ("en", "<think>we think and think", 1.0),
]


@pytest.mark.parametrize(("language", "text", "value"), LANGUAGE_CASES)
def test_language_consistency_table(language, text, value):
    assert make_language_consistency_reward(language)([text]) == [pytest.approx(value)]


def test_language_consistency_options():
    with pytest.raises(ValueError, match="language"):
        make_language_consistency_reward("klingon")
    whole = make_language_consistency_reward("en", reasoning_only=False)
    assert whole(["<think>abc</think>日本"]) == [pytest.approx(1 / 3)]
    assert make_language_consistency_reward("en", empty_value=1.0)(["<think>42</think>"]) == [1.0]


def test_pickle_and_names():
    for reward in (COSINE, make_repetition_penalty(), make_soft_overlong_reward(10, 4), reasoning_steps,
                   make_language_consistency_reward("zh")):  # fmt: skip
        assert pickle.loads(pickle.dumps(reward)).__name__ == reward.__name__


@pytest.mark.parametrize(
    ("reward", "columns"),
    [
        (COSINE, countdown_problems()),
        (make_repetition_penalty(), None),
        (make_soft_overlong_reward(1000, 200), None),
        (reasoning_steps, None),
        (make_language_consistency_reward("en"), None),
    ],
    ids=str,
)
def test_contract(reward, columns):
    allow_none = reward is COSINE
    check_reward(
        reward, columns=columns, value_range=reward.value_range, allow_none=allow_none, max_examples=30
    )
