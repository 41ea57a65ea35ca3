"""Property-test your own reward with ``rewards.testing`` before a trainer meets it.

Scenario: you want a reward for "the answer is a whole number close to the reference", for a dataset with a
``answer`` column. The first draft below looks fine on the three examples you tried by hand. Then
``check_reward`` throws arbitrary and hostile completions at it (huge texts, spammed or unbalanced tags, NUL
bytes, unicode digits, chat messages, TRL's extra keyword arguments) and finds the crash that would have
killed a training run hours in. The second draft fixes it and passes, and a custom Hypothesis property pins
down what the reward is *for*.

Run: ``python examples/property_test_your_reward.py`` (a few seconds; no model, no network).

Key idea: ``check_reward(fn, columns=...)`` takes your columns either as ``{column: strategy or constant}``
or as one strategy drawing whole rows, so correlated columns stay consistent.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import combine, think_format
from rewards.format import last_answer
from rewards.testing import check_reward, r1_completions


# -- draft 1: works on the happy path ----------------------------------------------------------------------
def close_answer_v1(completions, answer, **kwargs):
    """1.0 for the exact answer, decaying with the distance (first draft: trusts the model's output)."""
    scores = []
    for completion, reference in zip(completions, answer, strict=True):
        predicted = int(last_answer(completion))  # crashes on "no tag", "12.5", "", "forty-two"...
        scores.append(math.exp(-abs(predicted - int(reference))))
    return scores


# -- draft 2: every model output is a score ------------------------------------------------------------------
class CloseAnswer:
    """1.0 for the exact whole-number answer, ``exp(-distance / scale)`` near it, 0.0 for anything else.

    A class (not a closure) so it pickles for trainers' worker processes; ``__name__`` is what TRL logs.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        self.scale = float(scale)
        self.__name__ = f"close_answer_{scale:g}"

    def __call__(self, completions, answer, **kwargs):
        if len(answer) != len(completions):
            raise ValueError(f"column 'answer' has {len(answer)} values for {len(completions)} completions")
        return [self._score(c, a) for c, a in zip(completions, answer, strict=True)]

    def _score(self, completion, reference) -> float:
        if not isinstance(completion, str):  # chat format: the assistant's content
            completion = "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
        text = last_answer(completion)
        # ASCII digits only, bounded length: int() would accept unicode digits, "1_000", and (below Python's
        # 4,300-digit limit) take quadratic time on a megabyte of digits.
        if text is None or not (0 < len(text.lstrip("-")) <= 18) or not text.lstrip("-").isascii():
            return 0.0
        if not text.lstrip("-").isdigit() or text.count("-") > (1 if text.startswith("-") else 0):
            return 0.0
        distance = abs(int(text) - int(reference))
        return math.exp(-distance / self.scale)


def find_the_bug() -> str:
    """Runs the contract check on draft 1 and returns the (shrunk) failure Hypothesis reports."""
    try:
        check_reward(close_answer_v1, columns={"answer": "42"}, max_examples=50, check_pickle=False)
    except Exception as error:  # whatever the property test found, shrunk to a minimal example
        found = getattr(error, "exceptions", [error])  # several distinct bugs arrive as an ExceptionGroup
        return "; ".join(f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in found)
    return "no failure found (unexpected)"


@settings(max_examples=50, deadline=None)
@given(reference=st.integers(-1000, 1000), offset=st.integers(-50, 50))
def test_closer_is_better(reference: int, offset: int) -> None:
    """What the reward is for: the exact answer scores 1, and further away never scores more."""
    reward = CloseAnswer(scale=2.0)
    near, far = f"<answer>{reference + offset}</answer>", f"<answer>{reference + 2 * offset}</answer>"
    exact, v_near, v_far = reward([f"<answer>{reference}</answer>", near, far], answer=[str(reference)] * 3)
    assert exact == 1.0 and exact >= v_near >= v_far


@settings(max_examples=30, deadline=None)
@given(r1_completions(st.integers(-99, 99).map(str)))
def test_well_formed_completions_are_judged(completion: str) -> None:
    """Every well-formed R1 completion with an integer answer gets a positive score."""
    assert CloseAnswer()([completion], answer=["0"])[0] > 0.0


def main() -> None:
    print("draft 1 under check_reward ->", find_the_bug())

    # Draft 2 passes the contract: answers drawn as integers, hostile completions by default.
    report = check_reward(
        CloseAnswer(scale=2.0), columns={"answer": st.integers(-10**6, 10**6).map(str)}, max_examples=100
    )
    print(f"draft 2 passes: {report.n_completions} completions in {report.n_batches} batches, "
          f"slowest {report.slowest_seconds_per_sample * 1e6:.0f} us/sample")  # fmt: skip

    test_closer_is_better()
    test_well_formed_completions_are_judged()
    print("custom properties hold: closer is better; well-formed answers are judged")

    # Combined with the strict format reward, the accuracy only counts when the format is right.
    components = {"format": think_format, "close": CloseAnswer()}
    r1 = combine(components, weights={"format": 0.5}, gates={"close": "format"})
    answers = st.integers(-100, 100).map(str)
    check_reward(r1, columns={"answer": answers}, value_range=(0.0, 1.5), max_examples=50)
    print("combined reward passes too:", r1(["<think>6*7</think><answer>42</answer>"], answer=["42"]))


if __name__ == "__main__":
    main()
