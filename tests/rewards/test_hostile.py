"""Hostile completions: each returns within 2 s, inside the reward's range, with no side effect."""

import builtins
import os
import pathlib
import tempfile
import time

import pytest

from rewards import (
    combine,
    countdown_accuracy,
    make_cosine_length_reward,
    make_countdown_reward,
    make_language_consistency_reward,
    make_repetition_penalty,
    make_soft_overlong_reward,
    reasoning_steps,
    tag_count,
    think_format,
)
from rewards.adapters.verl import compute_score

MARKER = pathlib.Path(tempfile.gettempdir()) / "rlenv_hostile_marker"
MB = 1 << 20

HOSTILE = {
    # code injection through the equation (TinyZero evals the answer)
    "injection_import": f"<answer>__import__('os').system('touch {MARKER}')</answer>",
    "injection_subclasses": "<answer>().__class__.__bases__[0].__subclasses__()</answer>",
    "injection_lambda": "<answer>(lambda: exec('import os'))()</answer>",
    # power towers built from the given numbers (hang a Python eval)
    "power_tower": "<answer>44**35**19</answer>",
    "power_tower_parens": "<answer>(44**(35**19))</answer>",
    # 2 MB completions: plain, inside one answer, and of tag fragments
    "2mb_text": "x" * (2 * MB),
    "2mb_answer": "<answer>" + "1+" * MB + "1</answer>",
    "2mb_think": "<think>" + "a b c " * (MB // 3) + "</think><answer>44+35+19</answer>",
    # 10k answer tags
    "10k_answers": "<answer>44+35+19</answer>" * 10_000,
    "10k_open_tags": "<answer>" * 10_000 + "</answer>",
    "10k_think_tags": "<think>" * 10_000,
    # 5,000-deep parentheses
    "deep_parens": "<answer>" + "(" * 5000 + "44+35+19" + ")" * 5000 + "</answer>",
    "deep_unbalanced": "<answer>" + "(" * 5000 + "</answer>",
    # NUL bytes and other control or odd characters
    "nul_bytes": "<think>\x00</think><answer>44\x00+35+19</answer>",
    "lone_surrogate": "<think>\ud800</think><answer>44+35+19\udfff</answer>",
    "unicode_digits": "<answer>٤٤+٣٥+١٩</answer>",
    # a huge integer literal (int() of it would be slow or refused)
    "huge_literal": "<answer>" + "9" * 100_000 + "</answer>",
    "empty": "",
}

COLUMNS = {"nums": [[44, 35, 19]], "target": [98]}

REWARDS = [
    think_format,
    tag_count,
    countdown_accuracy,
    make_countdown_reward(format_score=0.1),
    combine({"format": think_format, "accuracy": countdown_accuracy}, gates={"accuracy": "format"}),
    make_cosine_length_reward(countdown_accuracy),
    make_repetition_penalty(),
    make_soft_overlong_reward(1000, 200),
    reasoning_steps,
    make_language_consistency_reward("en"),
]


@pytest.fixture(autouse=True)
def no_marker():
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a hostile completion had a side effect"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_completion(name):
    text = HOSTILE[name]
    environ, builtin_names = dict(os.environ), set(vars(builtins))
    for reward in REWARDS:
        start = time.perf_counter()
        values = reward([text], **COLUMNS)
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0, f"{reward.__name__} took {elapsed:.2f}s on {name}"
        lo, hi = reward.value_range
        assert len(values) == 1 and lo <= values[0] <= hi, (reward.__name__, values)
        if hi == 1.0 and lo == 0.0:
            assert 0.0 <= values[0] <= 1.0
    assert dict(os.environ) == environ and set(vars(builtins)) == builtin_names


def test_hostile_countdown_reasons():
    # the ones a naive checker gets wrong are rejected for the right reason
    reason = {n: countdown_accuracy.explain(HOSTILE[n], nums=[44, 35, 19], target=98).reason for n in HOSTILE}
    assert reason["power_tower"] == "invalid_syntax"
    assert reason["injection_import"] == "invalid_syntax"
    assert reason["unicode_digits"] == "invalid_syntax"
    assert reason["deep_parens"] in ("too_long", "too_deep")
    assert reason["10k_answers"] == "ok"  # the last block is a correct equation
    assert reason["nul_bytes"] == "invalid_syntax"


def test_hostile_through_verl_adapter():
    truth = {"target": 98, "numbers": [44, 35, 19]}
    for name, text in HOSTILE.items():
        start = time.perf_counter()
        score = compute_score("countdown", text, truth)
        assert 0.0 <= score <= 1.0 and time.perf_counter() - start < 2.0, name
