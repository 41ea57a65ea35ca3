"""Hypothesis properties of the math reward, and the reward-contract check from ``rewards.testing``."""

import re
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import math_accuracy
from rewards.math import verify
from rewards.math.verify import check
from rewards.testing import check_reward, r1_completions, texts

rationals = st.fractions(min_value=-10_000, max_value=10_000, max_denominator=500)


def _finite_decimal(q: Fraction) -> str | None:
    """``q`` as a terminating decimal, or ``None`` when it has none."""
    den = q.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return None
    digits = max(twos, fives)
    scaled = abs(q.numerator) * 10**digits // q.denominator
    sign = "-" if q < 0 else ""
    whole, frac = divmod(scaled, 10**digits) if digits else (scaled, 0)
    return f"{sign}{whole}" + (f".{frac:0{digits}d}" if digits else "")


def _forms(q: Fraction) -> list[str]:
    a, b = q.numerator, q.denominator
    sign = "-" if q < 0 else ""
    forms = [f"{a}/{b}", f"\\frac{{{a}}}{{{b}}}", f"{sign}\\dfrac{{{abs(a)}}}{{{b}}}", f"{sign}{abs(a)}/{b}"]
    decimal = _finite_decimal(q)
    if decimal is not None:
        forms.append(decimal)
        forms.append(f"{_finite_decimal(q * 100)}\\%")
    whole, rest = divmod(abs(a), b)
    if whole and rest:
        forms.append(f"{sign}{whole}\\frac{{{rest}}}{{{b}}}")  # mixed number
    return forms


@given(rationals, st.data())
def test_every_form_of_a_rational_verifies_against_every_other(q, data):
    forms = _forms(q)
    gold = data.draw(st.sampled_from(forms))
    pred = data.draw(st.sampled_from(forms))
    assert check(gold, pred).value is True, (gold, pred)


@given(rationals.filter(lambda q: q != 0), st.data())
def test_sign_flip_never_verifies(q, data):
    gold = data.draw(st.sampled_from(_forms(q)))
    pred = data.draw(st.sampled_from(_forms(-q)))
    assert check(gold, pred).value is False, (gold, pred)


@given(rationals, st.sampled_from([1, -1]), st.data())
def test_off_by_one_never_verifies(q, delta, data):
    gold = data.draw(st.sampled_from(_forms(q)))
    pred = data.draw(st.sampled_from(_forms(q + delta)))
    assert check(gold, pred).value is False, (gold, pred)


_SPACED = ["\\frac{3}{4}", "x^2 + 2x + 1", "(1, 2)", "[2, 5)", "\\sqrt{2} + 1", "10\\%", "2 \\le x < 5",
           "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "3 + 4i", "\\{1, 2\\}"]


@given(st.sampled_from(_SPACED), st.data())
def test_irrelevant_whitespace_changes_nothing(answer, data):
    # whitespace between tokens is irrelevant (after a command like \\le some must stay: \\lex is not \\le x)
    tokens = answer.split(" ")
    spaced = "".join(
        tok + data.draw(st.sampled_from([" ", "  ", "\n", "\t"] if re.search(r"\\[A-Za-z]+$", tok) else
                                        ["", " ", "  ", "\n", "\t"]))
        for tok in tokens
    )
    other = data.draw(st.sampled_from(_SPACED))
    assert check(answer, spaced).value is True
    assert check(other, spaced).value == check(other, answer).value


@given(rationals)
@settings(max_examples=25)
def test_completion_wrappers_agree(q):
    gold = f"\\frac{{{q.numerator}}}{{{q.denominator}}}"
    for completion in (f"<think>1</think><answer>{q.numerator}/{q.denominator}</answer>",
                       f"So the answer is $\\boxed{{{q.numerator}/{q.denominator}}}$.",
                       f"Work.\n#### {q.numerator}/{q.denominator}"):
        assert math_accuracy([completion], answer=[gold]) == [1.0]
    assert verify(gold, f"{q + 1}") is False


def test_check_reward_contract():
    golds = st.sampled_from(["42", "\\frac{1}{2}", "#### 1,234", "x^2", "[2,5)", "27.0"])
    report = check_reward(math_accuracy, columns={"answer": golds}, max_examples=30)
    assert report.n_batches >= 30


def test_check_reward_on_r1_completions():
    answers = st.sampled_from(["42", "1/2", "0.5", "\\frac{1}{2}", "x=3", "(1,2)", "", "4 or 5"])
    check_reward(math_accuracy, columns={"answer": st.sampled_from(["0.5", "42"])},
                 completions=r1_completions(answers), max_examples=30)


_PIECES = st.sampled_from([
    *"0123456789.,+-*/^_(){}[]|!%=<>xyei ", "\\frac", "\\sqrt", "\\pi", "\\left", "\\{", "\\}", "\\text{",
    "\\pm", "\\infty", "\\cup", "\\le", "&", "\\\\", "\\boxed{", "\\begin{pmatrix}", "\\end{pmatrix}", "²",
    "٣", "1.e", "\\log_", "or", "cm", "\\%",
])
latexish = st.one_of(st.lists(_PIECES, max_size=25).map("".join), texts(max_size=60))


@given(latexish, latexish)
def test_check_never_raises_on_garbage(gold, pred):
    verdict = check(gold, pred)
    assert verdict.value in (True, False, None)
    assert (verdict.value is None) == (verdict.reason in ("gold_unparseable", "undecided"))
