"""Equivalence tables: ``verify(gold, prediction)`` for every category of the issue, plus the fast path."""

import subprocess
import sys

import pytest

from rewards.math import verify
from rewards.math.verify import check

SAME = [
    # numbers: integers, decimals, fractions compared exactly
    ("42", "42.0"),  # integral decimal
    ("\\frac{1}{2}", "0.5"),  # fraction vs decimal
    ("\\frac{1}{2}", "2/4"),  # unreduced slash fraction
    ("-\\frac{3}{4}", "\\frac{-3}{4}"),  # sign placement
    ("1,234", "1234"),  # thousands separator in the gold
    ("1234", "1,234"),  # thousands separator in the prediction
    ("1{,}000", "1000"),  # LaTeX thousands separator
    ("1\\,000", "1000"),  # thin-space separator
    ("\\$36", "36"),  # currency
    ("36", "\\$36.00"),  # currency and cents
    ("5\\text{ cm}", "5"),  # unit in \text
    ("5", "5 \\mbox{ meters}"),  # unit in \mbox
    ("90^\\circ", "90"),  # degrees
    ("90", "90^{\\circ}"),  # degrees, braced
    ("\\text{(B)}", "B"),  # multiple choice
    ("\\text{(B)}", "\\textbf{(B) }12"),  # AMC letter and value
    ("\\text{Monday}", "monday"),  # a word answer, case-insensitive as prose
    # percent
    ("10\\%", "0.1"),  # percentage gold vs fraction
    ("10\\%", "10"),  # percentage gold vs the number
    ("0.1", "10\\%"),  # decimal gold vs percentage
    ("25", "25 percent"),  # word percent
    # scientific notation
    ("6.02 \\times 10^{23}", "6.02e23"),  # e-notation
    ("1.5\\cdot 10^{-3}", "0.0015"),  # negative exponent
    # \dfrac, \tfrac, \sqrt, \pi, e, \log, trig
    ("\\dfrac{2}{3}", "\\tfrac{2}{3}"),  # fraction macros
    ("\\sqrt{8}", "2\\sqrt{2}"),  # radicals (sympy worker)
    ("\\sqrt[3]{27}", "3"),  # cube root, exact
    ("2\\pi", "\\frac{4\\pi}{2}"),  # pi
    ("e^{2}", "e \\cdot e"),  # Euler's number
    ("\\log_{10} 1000", "3"),  # logarithm with base
    ("\\ln(e^3)", "3"),  # natural log
    ("\\cos \\frac{\\pi}{3}", "0.5"),  # trig, decimal on the rational side
    ("\\tan(\\pi/4)", "1"),  # trig, exact
    ("\\sqrt{2}", "1.4142135623730951"),  # an irrational vs a full-precision decimal (tolerance 1e-9)
    # complex numbers
    ("3+4i", "4i+3"),  # commuted
    ("\\frac{1}{i}", "-i"),  # division by i
    # expressions
    ("(x+1)^2", "x^2+2x+1"),  # expanded
    ("\\frac{x^2-1}{x-1}", "x+1"),  # cancelled
    ("2(a+b)", "2a+2b"),  # distributed
    ("\\sin^2 x + \\cos^2 x", "1"),  # identity
    # equations
    ("5", "x = 5"),  # solved variable
    ("x = 5", "5"),  # solved variable in the gold
    ("y = 2x+1", "y - 2x = 1"),  # rearranged
    ("2x + 3y = 6", "4x + 6y = 12"),  # scaled
    # ordered tuples, unordered sets and solution lists
    ("(1, 2)", "\\left(1,2\\right)"),  # tuple
    ("(1, 2)", "x=1, y=2"),  # system solution as a tuple
    ("1, 2", "2, 1"),  # solution list
    ("\\{1, 2\\}", "\\{2, 1\\}"),  # set
    ("3 \\pm \\sqrt{2}", "3 - \\sqrt{2}, 3 + \\sqrt{2}"),  # plus-minus
    ("\\emptyset", "\\{\\}"),  # empty set
    # intervals, open and closed, and inequality forms
    ("[2,5)", "2 \\le x < 5"),  # inequality chain
    ("(-\\infty, 3]", "x \\leq 3"),  # half line
    ("(0, \\infty)", "x > 0"),  # half line
    ("(-\\infty,\\infty)", "\\mathbb{R}"),  # all reals
    ("[1,2] \\cup [3,4]", "[3,4] \\cup [1,2]"),  # union order
    ("(5, 7)", "5 < x < 7"),  # an open pair against an inequality
    # matrices
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"),  # style
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)"),  # column vector as a tuple
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "[[1, 2], [3, 4]]"),  # plain-text matrix
    ("\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}", "[1, 2, 3]"),  # plain-text vector
    ("[2,5)", "\\{x \\mid 2 \\le x < 5\\}"),  # set-builder notation
    ("0.001", "10⁻³"),  # unicode superscript exponent
    ("-2", "\\sqrt[3]{-8}"),  # a radical of odd index is the real root
    ("1+\\sqrt{3}i", "(-8)^{1/3}"),  # a fractional power is the principal one
    ("(-\\infty,\\infty)", "all real numbers"),  # spelled set of reals
    ("2\\alpha", "2α"),  # unicode Greek letter
    # base subscripts
    ("204_5", "204_{5}"),  # braced subscript
    ("204_5", "204"),  # digits in the asked base
    ("11", "1011_2"),  # a numeral in another base naming the decimal gold
    ("5", "5 = x"),  # solved variable on the right
    ("\\text{No}", "No"),  # a yes/no answer
    ("(-\\infty, -3) \\cup (-3, \\infty)", "x \\neq -3"),  # all reals but one point
    # mixed numbers
    ("\\frac{7}{2}", "3\\frac{1}{2}"),  # LaTeX mixed number
    ("3.5", "3 1/2"),  # plain mixed number
]

DIFFERENT = [
    ("0.5", "0.5000001"),  # tight: not a rounding
    ("\\frac{1}{3}", "0.3333333333"),  # exact rationals: no tolerance between rationals
    ("\\sqrt{2}", "1.4142"),  # rounded decimal of an irrational
    ("\\pi", "3.14"),  # rounded pi
    ("2t", "2"),  # a single-letter variable is never stripped
    ("X", "x"),  # symbols are never lower-cased
    ("10\\%", "0.01"),  # percent misread
    ("(1, 2)", "(2, 1)"),  # ordered tuple
    ("1, 2", "1, 2, 3"),  # extra solution
    ("1, 2", "1"),  # missing solution
    ("[2,5)", "[2,5]"),  # closed end
    ("[2,5)", "2 < x < 5"),  # open end
    ("(-\\infty, 3]", "x < 3"),  # strict inequality
    ("3+4i", "3-4i"),  # conjugate
    ("(x+1)^2", "x^2+1"),  # wrong expansion
    ("y = 2x+1", "y = 2x-1"),  # different line
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}"),  # the transpose
    ("204_5", "204_6"),  # another base
    ("40", "40_9"),  # 40 in base 9 is 36, not the decimal gold
    ("204_5", "54"),  # the decimal value where the base-5 numeral was asked
    ("\\text{(B)}", "C"),  # another letter
    ("4", "4 or 5"),  # hedge
    ("4", ""),  # empty
    ("4", "\\frac{1}{0}"),  # undefined
    ("1e2", "1e3"),  # scientific notation, wrong power
    ("23", "2 3"),  # two numbers side by side are not one number
    ("6", "2 3"),  # ... nor a product
    ("5", "not 5"),  # a negated answer
    ("x = 3", "y = 3"),  # another variable
]


@pytest.mark.parametrize(("gold", "pred"), SAME)
def test_equivalent(gold, pred):
    assert verify(gold, pred, timeout=30.0)


@pytest.mark.parametrize(("gold", "pred"), DIFFERENT)
def test_not_equivalent(gold, pred):
    assert not verify(gold, pred, timeout=30.0)


FAST = [("\\frac{1}{2}", "0.5", True), ("1,234", "1234", True), ("10\\%", "0.1", True), ("2t", "2", False),
        ("[2,5)", "2 \\le x < 5", True), ("(3, \\frac{\\pi}{2})", "(3, \\pi/2)", True), ("\\pi", "3", False),
        ("3+4i", "4i+3", True), ("\\sqrt{2}", "1.41421356237", True), ("x^2", "x^3", False)]


@pytest.mark.parametrize(("gold", "pred", "expected"), FAST)
def test_fast_path_decides_common_cases(gold, pred, expected):
    # the in-process comparator (no sympy) settles these without the worker pool
    assert check(gold, pred).value is expected


def test_fast_path_never_imports_sympy_or_starts_workers():
    code = (
        "import sys\n"
        "from rewards import math_accuracy\n"
        "v = math_accuracy(['<answer>1/2</answer>', '\\\\boxed{3}', 'A: 1,234', 'none'],"
        " answer=['0.5', '#### 3', '1234', '4'])\n"
        "assert v == [1.0, 1.0, 1.0, 0.0], v\n"
        "assert 'sympy' not in sys.modules\n"
        "assert 'rewards.math.pool' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unparseable_gold_scores_none():
    from rewards import math_accuracy

    assert math_accuracy(["<answer>4</answer>"], answer=["\\weird{macro}"]) == [None]
    assert math_accuracy(["<answer>4</answer>"], answer=[""]) == [None]
