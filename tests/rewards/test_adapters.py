"""Trainer adapters: verl compute_score dispatch and OpenRLHF reward_func."""

import importlib
import json
import pathlib
import subprocess
import sys

import pytest

from rewards.adapters.openrlhf import reward_func, strip_prompt
from rewards.adapters.verl import compute_score, reward_family

TINYZERO_PROMPT = (
    "User: Using the numbers [3, 8], create an equation that equals 24. Show your work in <think> </think> "
    "tags. And return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>"
    "\nAssistant: Let me solve this step by step.\n<think>"
)


def _has(module, name):
    """True when another helper's reward exists already (math / code land in parallel)."""
    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


FAMILIES = [
    # TinyZero's source name
    ("countdown", "countdown"),
    # our env id
    ("rlenv/Countdown-v0", "countdown"),
    # verl's math sources
    ("openai/gsm8k", "math"),
    ("lighteval/MATH", "math"),
    ("DigitalLearningGmbH/MATH-lighteval", "math"),
    ("HuggingFaceH4/MATH-500", "math"),
    ("math_dapo", "math"),
    ("aime_2024", "math"),
    ("numina_olympiads", "math"),
    # verl's code sources
    ("codecontests", "code"),
    ("apps", "code"),
    ("taco", "code"),
    ("livecodebench", "code"),
    ("openai/humaneval", "code"),
]


@pytest.mark.parametrize(("source", "family"), FAMILIES)
def test_reward_family(source, family):
    assert reward_family(source) == family


def test_unknown_source_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown data_source 'imdb'"):
        compute_score("imdb", "great movie", "positive")
    with pytest.raises(TypeError, match="data_source"):
        compute_score(None, "x", "y")


COUNTDOWN = [
    # correct (TinyZero's ground truth layout)
    ("1.</think>\n<answer>3 * 8</answer>", {"target": 24, "numbers": [3, 8]}, 1.0),
    # wrong value
    ("<answer>3 + 8</answer>", {"target": 24, "numbers": [3, 8]}, 0.0),
    # "nums" is accepted too, and numbers as a tuple (parquet gives arrays)
    ("<answer>3 * 8</answer>", {"target": 24, "nums": (3, 8)}, 1.0),
    # a JSON string ground truth
    ("<answer>3 * 8</answer>", json.dumps({"target": 24, "numbers": [3, 8]}), 1.0),
    # no answer tag
    ("24", {"target": 24, "numbers": [3, 8]}, 0.0),
]


@pytest.mark.parametrize(("response", "truth", "score"), COUNTDOWN)
def test_verl_countdown(response, truth, score):
    assert compute_score("countdown", response, truth) == score


def test_verl_countdown_tinyzero_format_score_and_dict():
    truth = {"target": 24, "numbers": [3, 8]}
    # reward_kwargs: {format_score: 0.1} reproduces TinyZero
    assert compute_score("countdown", "<answer>3 + 8</answer>", truth, format_score=0.1) == 0.1
    assert compute_score("countdown", "no answer", truth, format_score=0.1) == 0.0
    good = "<answer>3 * 8</answer>"
    out = compute_score("countdown", good, truth, extra_info={"index": 0}, return_dict=True)
    assert out == {"score": 1.0, "acc": 1.0, "reason": "ok"}


def test_verl_bad_ground_truth():
    with pytest.raises(ValueError, match="target"):
        compute_score("countdown", "<answer>1</answer>", {"numbers": [1]})
    with pytest.raises(ValueError, match="JSON"):
        compute_score("countdown", "<answer>1</answer>", "not json")
    # a missing math answer is the caller's error, never the gold string "None"
    for truth in (None, ["72"], True):
        with pytest.raises(TypeError, match="math ground_truth"):
            compute_score("openai/gsm8k", "<answer>None</answer>", truth)


@pytest.mark.skipif(not _has("rewards.math", "math_accuracy"), reason="rewards.math not landed yet")
def test_verl_math_dispatch():
    assert compute_score("openai/gsm8k", "<think>6*12</think><answer>72</answer>", "72") == 1.0
    assert compute_score("lighteval/MATH", "<answer>\\frac{1}{2}</answer>", "\\frac{1}{2}") == 1.0
    assert compute_score("openai/gsm8k", "<answer>71</answer>", "72") == 0.0


@pytest.mark.skipif(not _has("rewards.code", "code_accuracy"), reason="rewards.code not landed yet")
def test_verl_code_dispatch():
    truth = {"inputs": ["1 2\n"], "outputs": ["3\n"]}
    good = "<answer>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n</answer>"
    bad = "<answer>\n```python\nprint(0)\n```\n</answer>"
    assert compute_score("codecontests", good, json.dumps(truth)) == 1.0
    assert compute_score("codecontests", bad, truth) == 0.0


@pytest.mark.skipif(not _has("rewards.code", "code_accuracy"), reason="rewards.code not landed yet")
def test_verl_code_call_based_and_setup_columns():
    # APPS call-based rows (fn_name, as verl's prime_code passes them) and MBPP's test_setup_code
    add = "<answer>\n```python\ndef add(a, b):\n    return a + b\n```\n</answer>"
    calls = {"inputs": [[1, 2], [3, 4]], "outputs": [3, 7], "fn_name": "add"}
    assert compute_score("apps", add, calls) == 1.0
    assert compute_score("apps", add, json.dumps({**calls, "outputs": [3, 8]})) == 0.5
    twice = "<answer>\n```python\ndef f(x):\n    return helper(x)\n```\n</answer>"
    mbpp = {"tests": ["assert f(2) == 4"], "test_setup_code": "def helper(x):\n    return x * 2"}
    assert compute_score("mbpp", twice, mbpp) == 1.0


STRIP = [
    # the usual case: the query starts with the prompt
    ("P: hi A: yes", "P: hi A:", " yes"),
    # decoding differences before the prompt (a BOS token): the text after the prompt's first occurrence
    ("<s>P: hi A: yes", "P: hi A:", " yes"),
    # ... even when the response repeats the prompt
    ("<pad><s>P: hi A: P: hi A: yes", "P: hi A:", " P: hi A: yes"),
    # prompt not found: the whole query
    ("something else", "P:", "something else"),
]


@pytest.mark.parametrize(("query", "prompt", "response"), STRIP)
def test_strip_prompt(query, prompt, response):
    assert strip_prompt(query, prompt) == response


def test_openrlhf_countdown_ignores_prompt_example_answer():
    label = json.dumps({"target": 24, "numbers": [3, 8]})
    # the prompt contains an example <answer>; only the response may be scored
    queries = [TINYZERO_PROMPT + "3 times 8</think> <answer>3 * 8</answer>", TINYZERO_PROMPT + "no idea"]
    out = reward_func(queries, [TINYZERO_PROMPT] * 2, [label] * 2)
    assert list(map(float, out["rewards"])) == [1.0, 0.0]
    assert list(map(float, out["scores"])) == [1.0, 0.0]
    # the format is judged prefill-aware: the prompt opened <think>
    assert list(map(float, out["extra_logs"]["think_format"])) == [1.0, 0.0]
    assert list(map(float, out["extra_logs"]["answered"])) == [1.0, 0.0]


def test_openrlhf_labels_with_data_source_and_format_score():
    label = {"data_source": "countdown", "ground_truth": {"target": 24, "numbers": [3, 8]}}
    out = reward_func(["Q<answer>3 + 8</answer>"], ["Q"], [label], format_score=0.1)
    assert list(map(float, out["rewards"])) == [pytest.approx(0.1)]
    assert list(map(float, out["scores"])) == [0.0]


def test_openrlhf_errors():
    with pytest.raises(ValueError, match="queries"):
        reward_func(["a"], [], ["x"])
    with pytest.raises(ValueError, match="task"):
        reward_func(["a"], ["a"], [{"foo": 1}])
    with pytest.raises(TypeError, match="labels"):
        reward_func(["a"], ["a"], [None])


@pytest.mark.skipif(not _has("rewards.math", "math_accuracy"), reason="rewards.math not landed yet")
def test_openrlhf_math_label():
    out = reward_func(["Q: 6*12? A: <answer>72</answer>"], ["Q: 6*12? A:"], ["72"])
    assert list(map(float, out["rewards"])) == [1.0]


def test_openrlhf_example_returns_tensors_in_a_fresh_process():
    # OpenRLHF builds its samples from tensors, and a Ray worker may load the reward file before torch: the
    # example file (what the docs pass as --remote_rm_url) imports torch; the adapter alone (rewards/ does
    # not depend on torch) returns lists there.
    pytest.importorskip("torch")
    root = pathlib.Path(__file__).resolve().parents[2]
    label = json.dumps({"target": 24, "numbers": [3, 8]})
    call = f"out = m.reward_func(['Q<answer>3 * 8</answer>'], ['Q'], [{label!r}])\n"
    show = "print(type(out['rewards']).__name__, type(out['scores']).__name__)\n"
    example = ("import runpy, types\n"
               "m = types.SimpleNamespace(**runpy.run_path('examples/openrlhf_reward.py'))\n")
    adapter = "import sys\nimport rewards.adapters.openrlhf as m\nassert 'torch' not in sys.modules\n"
    for setup, expected in ((example, ["Tensor", "Tensor"]), (adapter, ["list", "list"])):
        done = subprocess.run([sys.executable, "-c", setup + call + show], capture_output=True, text=True,
                              timeout=120, cwd=root)
        assert done.stdout.split() == expected, done.stderr


def test_openrlhf_format_log_ignores_end_of_turn_tokens():
    # OpenRLHF decodes with skip_special_tokens=False: a chat model's response ends in <|im_end|> or the like
    label = json.dumps({"target": 24, "numbers": [3, 8]})
    ends = ["<|im_end|>", "<|eot_id|>\n", "</s>", "<｜end▁of▁sentence｜>", "<|im_end|><|endoftext|>"]
    queries = [f"Q<think>a</think><answer>3 * 8</answer>{end}" for end in ends]
    queries.append("Q<think>a</think><answer>3 * 8</answer> and more")
    out = reward_func(queries, ["Q"] * len(queries), [label] * len(queries))
    assert list(map(float, out["extra_logs"]["think_format"])) == [1.0] * len(ends) + [0.0]
    assert list(map(float, out["rewards"])) == [1.0] * len(queries)
