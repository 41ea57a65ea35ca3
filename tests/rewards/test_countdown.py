"""Countdown reward: example tables, a large held-out labelled set, properties, TinyZero scoring."""

import pickle
import random
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given

from rewards import countdown_accuracy, make_countdown_reward
from rewards.countdown import check_equation
from rewards.testing import check_reward, countdown_problems

NUMS = [1, 1, 25, 50]

CASES = [
    # a correct equation
    ("<answer>(50 - 25 - 1) * 1</answer>", 1.0, "ok"),
    # same, without spaces and with redundant parentheses
    ("<answer>((50-25)-1)*(1)</answer>", 1.0, "ok"),
    # the arithmetic is right but 8 was not given (and a 1 is missing): unknown numbers are reported first
    ("<answer>(50 / 25 + 1) * 1 * 8</answer>", 0.0, "unknown_number"),
    # the reasoning may say anything; only the last answer counts
    ("<think>maybe 50-26?</think><answer>50 - 25 - 1 * 1</answer>", 1.0, "ok"),
    # the last of several answer blocks counts
    ("<answer>50 + 25</answer> wait <answer>(50 - 25 - 1) * 1</answer>", 1.0, "ok"),
    # ... also when the last one is wrong
    ("<answer>(50 - 25 - 1) * 1</answer> no: <answer>50 - 25 + 1 * 1</answer>", 0.0, "wrong_value"),
    # no answer tag at all
    ("(50 - 25 - 1) * 1", 0.0, "no_answer_tag"),
    # an unclosed answer tag
    ("<answer>(50 - 25 - 1) * 1", 0.0, "no_answer_tag"),
    # a number used twice
    ("<answer>(50 - 25 - 1) * 1 * 1</answer>", 0.0, "number_reused"),
    # a number left out
    ("<answer>50 - 25 - 1</answer>", 0.0, "number_missing"),
    # a number that was not given
    ("<answer>(50 - 26) * 1 * 1</answer>", 0.0, "unknown_number"),
    # wrong value
    ("<answer>50 + 25 + 1 + 1</answer>", 0.0, "wrong_value"),
    # division by zero
    ("<answer>50 / (1 - 1) + 25</answer>", 0.0, "division_by_zero"),
    # power is not an operation of the game
    ("<answer>(50 - 25 - 1) ** 1 * 1</answer>", 0.0, "invalid_syntax"),
    # floor division is not either
    ("<answer>(50 - 25 - 1) // 1 * 1</answer>", 0.0, "invalid_syntax"),
    # modulo
    ("<answer>(50 % 25 + 24) * 1 * 1</answer>", 0.0, "invalid_syntax"),
    # a float literal
    ("<answer>(50 - 25 - 1.0) * 1</answer>", 0.0, "invalid_syntax"),
    # writing the result after '=' is not an equation of the allowed grammar
    ("<answer>(50 - 25 - 1) * 1 = 24</answer>", 0.0, "invalid_syntax"),
    # unicode digits (Arabic-Indic one) look like 1 but are not ASCII
    ("<answer>(50 - 25 - ١) * 1</answer>", 0.0, "invalid_syntax"),
    # unary minus is not an operation of the game
    ("<answer>-(1 - 50 + 25) * 1</answer>", 0.0, "invalid_syntax"),
    # a leading zero
    ("<answer>(050 - 25 - 1) * 1</answer>", 0.0, "invalid_syntax"),
    # names and calls
    ("<answer>abs(50 - 25 - 1) * 1</answer>", 0.0, "invalid_syntax"),
    # unbalanced parentheses
    ("<answer>((50 - 25 - 1) * 1</answer>", 0.0, "invalid_syntax"),
    # an empty answer
    ("<answer></answer>", 0.0, "invalid_syntax"),
    # two numbers side by side
    ("<answer>50 25 - 1 * 1</answer>", 0.0, "invalid_syntax"),
]


@pytest.mark.parametrize(("text", "value", "reason"), CASES)
def test_table(text, value, reason):
    result = countdown_accuracy.explain(text, nums=NUMS, target=24)
    assert (result.value, result.reason) == (value, reason)


def test_fractions_are_exact():
    # 8 / 3 * 3 is exactly 8 (a float checker would need a tolerance)
    assert check_equation("8 / 3 * 3", [8, 3, 3], 8).reason == "ok"
    # (1 + 1/3) * 3 = 4 through an intermediate fraction
    assert check_equation("(1 + 1 / 3) * 3", [1, 1, 3, 3], 4).reason == "ok"
    # 7/3 is close to 2.333.. but never equal to 2
    assert check_equation("7 / 3", [7, 3], 2).reason == "wrong_value"
    # negative intermediate values are fine
    assert check_equation("(3 - 7) * (2 - 8)", [3, 7, 2, 8], 24).reason == "ok"


def test_answer_in_prompt_is_not_scored():
    # TinyZero's template shows an example answer in the prompt; only the completion is searched
    prompt = "Show your work in <answer> (1 + 2) / 3 </answer>. Assistant: <think>"
    assert countdown_accuracy(["I give up"], nums=[[1, 2, 3]], target=[1], prompts=[prompt]) == [0.0]


def test_tinyzero_scoring():
    tinyzero = make_countdown_reward(format_score=0.1)
    texts = ["no tags", "<answer>50 - 25</answer>", "<answer>oops</answer>", "<answer>(50-25-1)*1</answer>"]
    assert tinyzero(texts, nums=[NUMS] * 4, target=[24] * 4) == [0.0, 0.1, 0.1, 1.0]
    assert tinyzero.__name__ == "countdown_0.1_1"
    assert tinyzero.value_range == (0.0, 1.0)
    scaled = make_countdown_reward(correct_score=2.0)
    assert scaled(texts[-1:], nums=[NUMS], target=[24]) == [2.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format_score": -0.1}, "format_score"),
        ({"format_score": 2.0}, "format_score"),
        ({"correct_score": float("nan")}, "correct_score"),
        ({"max_chars": 0}, "max_chars"),
        ({"max_depth": 1.5}, "max_depth"),
    ],
)
def test_factory_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_countdown_reward(**kwargs)


def test_caller_mistakes_raise():
    # a missing column names it
    with pytest.raises(ValueError, match="nums"):
        countdown_accuracy(["x"], target=[1])
    # lists of different lengths
    with pytest.raises(ValueError, match="target"):
        countdown_accuracy(["x"], nums=[[1]], target=[1, 2])
    # wrong types
    with pytest.raises(TypeError, match="nums"):
        countdown_accuracy(["x"], nums=["1 2 3"], target=[6])
    with pytest.raises(TypeError, match="target"):
        countdown_accuracy(["x"], nums=[[1, 2, 3]], target=[6.5])
    # an empty reference cannot be judged
    assert countdown_accuracy(["<answer>1</answer>"], nums=[[]], target=[1]) == [None]


def test_bounds():
    # depth and length bounds are reasons, not crashes
    deep = "(" * 100 + "1" + ")" * 100
    assert check_equation(deep, [1], 1).reason == "too_deep"
    assert check_equation(deep, [1], 1, max_depth=200).reason == "ok"
    assert check_equation("1" + " " * 2000, [1], 1).reason == "too_long"


def test_picklable_and_named():
    clone = pickle.loads(pickle.dumps(countdown_accuracy))
    assert clone.__name__ == "countdown_accuracy"
    assert clone(["<answer>3 * 8</answer>"], nums=[[3, 8]], target=[24]) == [1.0]


# -- a large held-out set: labels come from how each completion was built ---------------------------------

OPS = "+-*/"


def _tree(rng, nums):
    """A random fully parenthesised expression over ``nums`` (in order) and its exact value (None: x/0)."""
    items = [(str(n), Fraction(n)) for n in nums]
    while len(items) > 1:
        i = rng.randrange(len(items) - 1)
        (sa, a), (sb, b) = items[i], items[i + 1]
        op = rng.choice(OPS)
        if a is None or b is None or (op == "/" and b == 0):
            value = None
        else:
            value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]
        items[i : i + 2] = [(f"({sa} {op} {sb})", value)]
    return items[0]


def _correct(rng, nums):
    for _ in range(100):
        order = nums[:]
        rng.shuffle(order)
        text, value = _tree(rng, order)
        if value is not None and value.denominator == 1 and value > 0:
            return text, int(value)
    return " + ".join(map(str, nums)), sum(nums)


def _wrap(rng, equation):
    style = rng.randrange(4)
    if style == 0:
        return f"<answer>{equation}</answer>"
    if style == 1:
        return f"<think>\nLet me try some combinations.\n</think>\n<answer> {equation} </answer>"
    if style == 2:
        return f"<think>first <answer>1 + 1</answer> hmm</think><answer>{equation}</answer>"
    return f"Let me think step by step.\n<answer>{equation}</answer>"


def _held_out_set(seed=1234, per_kind=150):
    rng = random.Random(seed)
    cases = []  # (completion, nums, target, expected value, expected reason)
    for _ in range(per_kind):
        nums = [rng.randint(1, 99) for _ in range(rng.randint(3, 5))]
        eq, target = _correct(rng, nums)
        # correct: every number once, value equals the target
        cases.append((_wrap(rng, eq), nums, target, 1.0, "ok"))
        # wrong value: the same equation against a different target
        cases.append((_wrap(rng, eq), nums, target + rng.choice([-3, -1, 1, 2, 7]), 0.0, "wrong_value"))
        # no tags: the correct equation written without <answer>
        cases.append((f"The answer is {eq}", nums, target, 0.0, "no_answer_tag"))
        # reused: one number replaced by a copy of another given number (which then appears too often)
        j, k = rng.sample(range(len(nums)), 2)
        if nums[j] != nums[k] and Counter(nums)[nums[k]] == 1:
            reused = nums[:]
            reused[j] = nums[k]
            text, _ = _tree(rng, reused)
            cases.append((_wrap(rng, text), nums, target, 0.0, "number_reused"))
        # missing: an expression over all numbers but one
        drop = rng.randrange(len(nums))
        text, _ = _tree(rng, nums[:drop] + nums[drop + 1 :])
        cases.append((_wrap(rng, text), nums, target, 0.0, "number_missing"))
        # unknown: one number replaced by a value that was not given
        unknown = nums[:]
        unknown[rng.randrange(len(nums))] = rng.choice([n for n in range(100, 200) if n not in nums])
        text, _ = _tree(rng, unknown)
        cases.append((_wrap(rng, text), nums, target, 0.0, "unknown_number"))
        # division by zero: a given pair (x, x) subtracted in a divisor
        x = rng.randint(1, 20)
        zero_nums = [*nums[:2], x, x]
        rest = " + ".join(map(str, zero_nums[:2]))
        cases.append((_wrap(rng, f"{rest} / ({x} - {x})"), zero_nums, 7, 0.0, "division_by_zero"))
        # invalid: power, floor division, assignment of the result, a name
        bad = rng.choice([f"{eq} ** 1", f"{eq} // 1", f"{eq} = {target}", f"x + {eq}"])
        cases.append((_wrap(rng, bad), nums, target, 0.0, "invalid_syntax"))
    return cases


HELD_OUT = _held_out_set()


def test_held_out_set_agrees_with_construction():
    assert len(HELD_OUT) >= 1000
    kinds = Counter(reason for *_, reason in HELD_OUT)
    assert min(kinds.values()) >= 50, kinds
    completions = [c for c, *_ in HELD_OUT]
    results = countdown_accuracy.explain_all(
        completions, nums=[n for _, n, *_ in HELD_OUT], target=[t for _, _, t, *_ in HELD_OUT]
    )
    wrong = [
        (case, (r.value, r.reason))
        for case, r in zip(HELD_OUT, results, strict=True)
        if (r.value, r.reason) != case[3:]
    ]
    assert not wrong, wrong[:5]


@given(countdown_problems())
def test_known_solutions_score_one(problem):
    text = f"<think>..</think><answer>{problem['solution']}</answer>"
    assert countdown_accuracy([text], nums=[problem["nums"]], target=[problem["target"]]) == [1.0]
    # the same solution against another target is wrong
    assert countdown_accuracy([text], nums=[problem["nums"]], target=[problem["target"] + 1]) == [0.0]


@pytest.mark.parametrize("reward", [countdown_accuracy, make_countdown_reward(format_score=0.1)], ids=str)
def test_contract(reward):
    check_reward(reward, columns=countdown_problems(), max_examples=40)


def test_fast_batch_path_agrees_with_explanations():
    # __call__ takes a fast path for plain string batches; its values must equal the explained ones
    completions = [c for c, *_ in HELD_OUT]
    cols = {"nums": [n for _, n, *_ in HELD_OUT], "target": [t for _, _, t, *_ in HELD_OUT]}
    for reward in (countdown_accuracy, make_countdown_reward(format_score=0.1)):
        assert reward(completions, **cols) == [r.value for r in reward.explain_all(completions, **cols)]


def test_a_huge_target_is_explained_without_printing_it():
    # str() of an int over 4,300 digits raises; the explanation must not (the fast path scores it 0.0 too)
    result = countdown_accuracy.explain("<answer>1+2</answer>", nums=[1, 2], target=10**5000)
    assert (result.value, result.reason) == (0.0, "wrong_value") and "over 1,000 digits" in result.detail
    assert countdown_accuracy(["<answer>1+2</answer>"], nums=[[1, 2]], target=[10**5000]) == [0.0]
