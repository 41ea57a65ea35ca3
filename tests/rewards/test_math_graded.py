"""Hand-labelled R1-style completions: math_accuracy must agree with a careful human grader on every case.

Each case is (raw dataset gold, completion, label) with a comment saying why a grader decides so. Golds are
given as data sets store them (GSM8K solutions ending in ``#### N``, raw MATH LaTeX, AMC floats).
"""

import pytest

from rewards import math_accuracy


def r1(think: str, answer: str) -> str:
    """An R1-Zero completion: thinking, then the answer block."""
    return f"<think>\n{think}\n</think>\n<answer>{answer}</answer>"


def ds(think: str, final: str) -> str:
    """A DeepSeek-R1-style completion: thinking, then a written solution ending in a boxed answer."""
    solution = "To solve this, we work it out step by step."
    return f"<think>\n{think}\n</think>\n\n{solution}\n\n**Final Answer**\n{final}"


GSM = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### {}"

CASES = [
    # --- GSM8K golds (#### N), answer tags --------------------------------------------------------------
    (GSM.format(72), r1("48/2 = 24, 48 + 24 = 72", "72"), 1.0),  # plain integer in the answer block
    (GSM.format(72), r1("48/2 = 24, so 72", " 72 "), 1.0),  # whitespace around the answer
    (GSM.format(72), r1("...", "72 clips"), 1.0),  # a unit word after the number
    (GSM.format(72), r1("...", "She sold 72 clips altogether."), 1.0),  # a sentence stating one number
    (GSM.format(72), r1("...", "71"), 0.0),  # off by one
    (GSM.format(72), r1("...", "-72"), 0.0),  # sign flip
    (GSM.format(72), r1("I get 72 total", ""), 0.0),  # empty answer block
    (GSM.format(72), r1("so the total is \\boxed{72}", "24"), 0.0),  # the box in thinking does not count
    (GSM.format(72), r1("first 24 then", "\\boxed{72}"), 1.0),  # boxed inside the answer block
    (GSM.format(72), r1("...", "$72$"), 1.0),  # math-mode dollars
    (GSM.format(72), r1("...", "72.0"), 1.0),  # integral decimal
    (GSM.format(72), r1("...", "72.00"), 1.0),  # two decimals
    (GSM.format(72), r1("...", "72 or 73"), 0.0),  # hedge
    (GSM.format(72), r1("...", "\\boxed{72} or \\boxed{24}"), 0.0),  # two different boxes as alternatives
    (GSM.format(72), "<think>\n48/2 = 24 and 48 + 24 = 72 so the answer is 72", 0.0),  # truncated, no answer
    (GSM.format(72), "<think>48/2=24</think>", 0.0),  # thinking only
    (GSM.format(72), "48/2 = 24 clips in May.</think><answer>72</answer>", 1.0),  # prefilled <think>
    (GSM.format(72), r1("...", "24") + "\n<answer>72</answer>", 1.0),  # the last answer block counts
    (GSM.format(72), r1("...", "72") + "\n<answer>24</answer>", 0.0),  # the last answer block counts
    (GSM.format("1,234"), r1("...", "1234"), 1.0),  # gold with a thousands separator
    (GSM.format("1,234"), r1("...", "1,234"), 1.0),  # both with separators
    (GSM.format("1,234"), r1("...", "\\$1,234"), 1.0),  # escaped dollar
    (GSM.format("1,234"), r1("...", "$1{,}234$"), 1.0),  # LaTeX thousands separator
    (GSM.format("1,234"), r1("...", "1,243"), 0.0),  # transposed digits
    (GSM.format("1234"), r1("...", "1.234"), 0.0),  # decimal point is not a separator
    (GSM.format(18), r1("...", "\\$18"), 1.0),  # currency
    (GSM.format(18), r1("...", "$18.00 per day"), 1.0),  # currency with a unit phrase
    (GSM.format(18), r1("...", "18 dollars"), 1.0),  # unit word
    (GSM.format(18), r1("...", "\\boxed{18 \\text{ dollars}}"), 1.0),  # \text unit in a box
    (GSM.format(18), r1("...", "18\\%"), 1.0),  # percent sign on a percentage-valued question
    (GSM.format(18), r1("...", "18t"), 0.0),  # a variable is not a unit
    (GSM.format(18), r1("...", "x = 18"), 1.0),  # equation form
    (GSM.format(18), r1("...", "The answer is 18."), 1.0),  # declared inside the block
    (GSM.format(18), r1("...", "16 - 3 - 4 = 9 eggs, 9 * 2 = 18"), 0.0),  # two results listed: not one answer
    (GSM.format(18), r1("...", "18, 18"), 1.0),  # repeated same value
    (GSM.format(5), r1("...", "five"), 0.0),  # number words are not parsed (strict)
    (GSM.format("0.5"), r1("...", "\\frac{1}{2}"), 1.0),  # fraction vs decimal gold
    (GSM.format("0.5"), r1("...", "1/2"), 1.0),  # slash fraction
    (GSM.format("0.5"), r1("...", "50\\%"), 1.0),  # percent of a decimal gold
    (GSM.format("0.5"), r1("...", "0.5000001"), 0.0),  # not a rounding of 0.5
    (GSM.format("3.5"), r1("...", "3 1/2"), 1.0),  # mixed number, plain
    (GSM.format("3.5"), r1("...", "3\\frac{1}{2}"), 1.0),  # mixed number, LaTeX
    (GSM.format("3.5"), r1("...", "3\\frac{1}{3}"), 0.0),  # wrong mixed number
    (GSM.format(-4), r1("...", "-4"), 1.0),  # negative integer
    (GSM.format(-4), r1("...", "4"), 0.0),  # sign flip
    (GSM.format(100), r1("...", "1e2"), 1.0),  # scientific notation
    (GSM.format(100), r1("...", "10^2"), 1.0),  # a power
    # --- GSM8K model-solution style (A: N), no tags ---------------------------------------------------
    (GSM.format(26), "She has 13 eggs left\nShe makes 13 * 2 = $<<13*2=26>>26\nA: 26", 1.0),  # A: N
    (GSM.format(26), "She has 13 eggs left\nShe makes 13 * 2 = $<<13*2=26>>26\nA: 27", 0.0),  # wrong A: N
    (GSM.format(26), "She makes 13 * 2 = 26 dollars", 0.0),  # nothing declared, several numbers, no period
    (GSM.format(26), "She makes 26 dollars.\n#### 26", 1.0),  # GSM8K #### N
    (GSM.format(26), "The answer is 26.", 1.0),  # declared sentence
    (GSM.format(26), "Final Answer: The final answer is $26$. I hope it is correct.", 1.0),  # Minerva format
    (GSM.format(26), "**Answer:** 26", 1.0),  # bold answer label
    (GSM.format(26), "**Final Answer**\n26", 1.0),  # bold heading then the number
    (GSM.format(26), "Answer: $26", 1.0),  # answer label with a currency sign
    (GSM.format(26), "The answer is 26, since 13*2 = 26.", 1.0),  # justification after the answer
    (GSM.format(26), "The answer is 25. Wait, that's wrong.\nThe answer is 26.", 1.0),  # last declaration
    (GSM.format(26), "The answer is 26. Hmm, no.\nThe answer is 25.", 0.0),  # last declaration
    # --- MATH golds: fractions, radicals, pi ------------------------------------------------------------
    ("\\frac{3}{4}", r1("...", "\\frac{3}{4}"), 1.0),  # identical
    ("\\frac{3}{4}", r1("...", "\\dfrac{3}{4}"), 1.0),  # \dfrac
    ("\\frac{3}{4}", r1("...", "\\tfrac34"), 1.0),  # \tfrac with one-digit arguments
    ("\\frac{3}{4}", r1("...", "0.75"), 1.0),  # decimal
    ("\\frac{3}{4}", r1("...", "75\\%"), 1.0),  # percent
    ("\\frac{3}{4}", r1("...", "6/8"), 1.0),  # unreduced
    ("\\frac{3}{4}", r1("...", "\\frac{4}{3}"), 0.0),  # reciprocal
    ("\\frac{3}{4}", r1("...", "0.7"), 0.0),  # rounded
    ("\\frac{1}{3}", r1("...", "0.333"), 0.0),  # truncated repeating decimal
    ("\\frac{1}{3}", r1("...", "0.\\overline{3}"), 0.0),  # repeating notation is not supported -> strict
    ("5\\sqrt{2}", r1("...", "5\\sqrt{2}"), 1.0),  # identical radical
    ("5\\sqrt{2}", r1("...", "\\sqrt{50}"), 1.0),  # unsimplified radical
    ("5\\sqrt{2}", r1("...", "5\\sqrt2"), 1.0),  # brace-less argument
    ("5\\sqrt{2}", r1("...", "5 \\cdot \\sqrt{2}"), 1.0),  # explicit product
    ("5\\sqrt{2}", r1("...", "5"), 0.0),  # dropped radical (Math-Verify's raw-gold failure)
    ("5\\sqrt{2}", r1("...", "7.0710678118654755"), 1.0),  # full-precision decimal of an irrational
    ("5\\sqrt{2}", r1("...", "7.07"), 0.0),  # rounded decimal
    ("\\frac{\\sqrt{3}}{3}", r1("...", "\\frac{1}{\\sqrt{3}}"), 1.0),  # rationalised denominator
    ("\\frac{\\sqrt{3}}{3}", r1("...", "\\frac{\\sqrt{3}}{2}"), 0.0),  # wrong denominator
    ("2\\pi", r1("...", "2\\pi"), 1.0),  # pi
    ("2\\pi", r1("...", "2"), 0.0),  # dropped pi
    ("2\\pi", r1("...", "\\pi \\cdot 2"), 1.0),  # commuted
    ("12\\pi", r1("...", "12 \\pi \\text{ square units}"), 1.0),  # unit words
    ("\\frac{\\pi}{4}", r1("...", "45^\\circ"), 0.0),  # degrees vs radians: different answers
    ("1+2\\sqrt{3}", r1("...", "2\\sqrt{3}+1"), 1.0),  # commuted sum
    ("11\\sqrt2", r1("...", "\\sqrt{242}"), 1.0),  # radical of a product
    ("\\frac{270}7\\text{ degrees}", r1("...", "\\frac{270}{7}"), 1.0),  # unit in the gold
    ("\\frac{270}7\\text{ degrees}", r1("...", "\\frac{270}{7}^\\circ"), 1.0),  # degree sign
    ("\\frac9{19}", r1("...", "9/19"), 1.0),  # brace-less gold
    ("137 \\frac{1}{2}", r1("...", "137.5"), 1.0),  # mixed-number gold
    ("137 \\frac{1}{2}", r1("...", "\\frac{275}{2}"), 1.0),  # improper fraction
    ("-\\frac{24}{25}", r1("...", "-0.96"), 1.0),  # negative decimal
    ("-\\frac{24}{25}", r1("...", "0.96"), 0.0),  # sign flip
    ("\\dfrac{33}{100}", r1("...", "33\\%"), 1.0),  # percent of a fraction gold
    ("\\$36", r1("...", "36"), 1.0),  # currency in the gold
    ("27.0", r1("...", "27"), 1.0),  # AMC float gold
    ("27.0", r1("...", "28"), 0.0),  # AMC float gold, wrong
    ("\\log_2 8", r1("...", "3"), 1.0),  # logarithm
    ("e^2", r1("...", "e^{2}"), 1.0),  # Euler's number
    ("e^2", r1("...", "7.38905609893065"), 1.0),  # its decimal, full precision
    ("\\sin \\frac{\\pi}{6}", r1("...", "\\frac12"), 1.0),  # trig value
    ("\\binom{6}{2}", r1("...", "15"), 1.0),  # binomial
    ("5!", r1("...", "120"), 1.0),  # factorial
    ("2^{10}", r1("...", "1024"), 1.0),  # power
    ("3.2 \\times 10^5", r1("...", "320000"), 1.0),  # scientific notation
    ("3.2 \\times 10^5", r1("...", "3.2e5"), 1.0),  # e-notation
    ("3.2 \\times 10^5", r1("...", "3.2 \\times 10^6"), 0.0),  # wrong exponent
    # --- complex numbers -----------------------------------------------------------------------------
    ("6+9i", r1("...", "9i+6"), 1.0),  # commuted
    ("6+9i", r1("...", "6-9i"), 0.0),  # conjugate
    ("1+2i", r1("...", "\\frac{2+4i}{2}"), 1.0),  # unsimplified
    ("-1", r1("...", "i^2"), 1.0),  # power of i
    # --- expressions and equations -------------------------------------------------------------------
    ("x^2+7x+10", r1("...", "(x+2)(x+5)"), 1.0),  # factored form
    ("x^2+7x+10", r1("...", "(x+2)(x+4)"), 0.0),  # wrong factor
    ("x^5 - x^4 + x^3 - x^2 + x - 1", r1("...", "x^5-x^4+x^3-x^2+x-1"), 1.0),  # spacing
    ("2t", r1("...", "2"), 0.0),  # never strip a single-letter variable
    ("2t", r1("...", "2T"), 0.0),  # case matters for symbols
    ("y = 2x + 3", r1("...", "y=2x+3"), 1.0),  # same equation
    ("y = 2x + 3", r1("...", "2x+3"), 1.0),  # right-hand side only
    ("y = 2x + 3", r1("...", "y = 3x + 2"), 0.0),  # different line
    ("y = 2x + 3", r1("...", "2x - y + 3 = 0"), 1.0),  # rearranged equation
    ("5", r1("...", "x = 5"), 1.0),  # solved variable
    ("5", r1("...", "x = -5"), 0.0),  # sign flip in an equation
    ("\\sin^2 x + \\cos^2 x", r1("...", "1"), 1.0),  # identity
    # --- tuples, sets, solution lists ----------------------------------------------------------------
    ("\\left( 3, \\frac{\\pi}{2} \\right)", r1("...", "(3, \\frac{\\pi}{2})"), 1.0),  # polar point
    ("\\left( 3, \\frac{\\pi}{2} \\right)", r1("...", "(\\frac{\\pi}{2}, 3)"), 0.0),  # swapped tuple
    ("\\left( 3, \\frac{\\pi}{2} \\right)", r1("...", "(3, 90^\\circ)"), 0.0),  # degrees
    ("(15,-29)", r1("...", "(15, -29)"), 1.0),  # point
    ("(15,-29)", r1("...", "x = 15, y = -29"), 1.0),  # point as a system solution
    ("(15,-29)", r1("...", "(-29, 15)"), 0.0),  # swapped
    ("-2,1", r1("...", "1, -2"), 1.0),  # solution list in another order
    ("-2,1", r1("...", "x = -2 \\text{ or } x = 1"), 1.0),  # spoken list
    ("-2,1", "<think>...</think>The roots are $\\boxed{-2}$ and $\\boxed{1}$.", 1.0),  # roots boxed apart
    ("-2,1", r1("...", "-2"), 0.0),  # missing a root
    ("-2,1", r1("...", "-2, 1, 3"), 0.0),  # an extra root
    ("\\{1\\pm\\sqrt{5},-2\\}", r1("...", "-2, 1+\\sqrt{5}, 1-\\sqrt{5}"), 1.0),  # plus-minus gold
    ("1 \\pm \\sqrt{19}", r1("...", "1+\\sqrt{19}, 1-\\sqrt{19}"), 1.0),  # plus-minus expanded
    ("1 \\pm \\sqrt{19}", r1("...", "1 \\pm \\sqrt{19}"), 1.0),  # same notation
    ("1 \\pm \\sqrt{19}", r1("...", "1+\\sqrt{19}"), 0.0),  # half of the answer
    ("\\{2, 3\\}", r1("...", "\\{3, 2\\}"), 1.0),  # set order
    ("\\frac{-1+\\sqrt{5}}{2}, \\frac{-1-\\sqrt{5}}{2}",
     r1("...", "x = \\frac{-1 \\pm \\sqrt{5}}{2}"), 1.0),  # plus-minus inside a fraction
    ("-2,1", r1("...", "x \\in \\{-2, 1\\}"), 1.0),  # membership in a solution set
    (GSM.format(18), r1("...", "18 (eighteen)"), 1.0),  # a parenthesised word
    (GSM.format(3), r1("...", "٣"), 0.0),  # a non-ASCII digit is not read as a number (strict)
    ("x^2+1", r1("...", "x²+1"), 1.0),  # unicode superscript
    # --- intervals and inequalities ------------------------------------------------------------------
    ("[2,5)", r1("...", "[2, 5)"), 1.0),  # same interval
    ("[2,5)", r1("...", "2 \\le x < 5"), 1.0),  # inequality form
    ("[2,5)", r1("...", "[2,5]"), 0.0),  # wrong closed end
    ("[2,5)", r1("...", "(2,5)"), 0.0),  # wrong open end
    ("(5,\\infty)", r1("...", "x > 5"), 1.0),  # half-line inequality
    ("(5,\\infty)", r1("...", "x \\geq 5"), 0.0),  # closed vs open
    ("(5,\\infty)", r1("...", "(5, \\infty)"), 1.0),  # interval
    ("(-\\infty, 2) \\cup (3, \\infty)", r1("...", "x < 2 \\text{ or } x > 3"), 1.0),  # union as inequalities
    ("(-\\infty, 2) \\cup (3, \\infty)", r1("...", "(3,\\infty)\\cup(-\\infty,2)"), 1.0),  # union reordered
    ("(-\\infty, 2) \\cup (3, \\infty)", r1("...", "(-\\infty, 2]\\cup(3,\\infty)"), 0.0),  # wrong end
    ("(-\\infty, 2) \\cup (3, \\infty)", r1("...", "x \\in (-\\infty,2)\\cup(3,\\infty)"), 1.0),  # membership
    # --- matrices and vectors ------------------------------------------------------------------------
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}",
     r1("...", "\\begin{bmatrix} -1 & 0 \\\\ 0 & -1 \\end{bmatrix}"), 1.0),  # bracket style
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}",
     r1("...", "\\begin{pmatrix} -1 & 0 \\\\ 0 & 1 \\end{pmatrix}"), 0.0),  # one entry differs
    ("\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}", r1("...", "(-18, -49, 96)"), 1.0),  # vector
    ("\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}", r1("...", "(-18, 49, 96)"), 0.0),  # sign
    ("\\begin{pmatrix} 1/2 \\\\ 1 \\end{pmatrix}",
     r1("...", "\\begin{pmatrix} \\frac{1}{2} \\\\ 1 \\end{pmatrix}"), 1.0),  # entries as fractions
    # --- multiple choice, text, bases, units ---------------------------------------------------------
    ("\\text{(C)}", r1("...", "C"), 1.0),  # bare letter
    ("\\text{(C)}", r1("...", "(C)"), 1.0),  # parenthesised letter
    ("\\text{(C)}", r1("...", "\\textbf{(C)} 12"), 1.0),  # AMC-style letter and value
    ("\\text{(C)}", r1("...", "(D)"), 0.0),  # another letter
    ("\\text{(C)}", r1("...", "c"), 0.0),  # lower case is not the choice
    ("\\text{Navin}", r1("...", "Navin"), 1.0),  # a name
    ("\\text{Navin}", r1("...", "\\text{Luka}"), 0.0),  # another name
    ("\\text{east}", r1("...", "East"), 1.0),  # a word, capitalised
    ("2516_8", r1("...", "2516_8"), 1.0),  # base subscript
    ("2516_8", r1("...", "2516"), 1.0),  # digits in the asked base
    ("2516_8", r1("...", "2516_{10}"), 0.0),  # a different base
    ("2516_8", r1("...", "1358"), 0.0),  # the decimal value is not the base-8 answer
    ("76^\\circ", r1("...", "76"), 1.0),  # degrees dropped
    ("76^\\circ", r1("...", "76°"), 1.0),  # unicode degree
    ("76^\\circ", r1("...", "76 degrees"), 1.0),  # degree word
    ("76^\\circ", r1("...", "67^\\circ"), 0.0),  # wrong angle
    ("15\\mbox{ cm}^2", r1("...", "15"), 1.0),  # unit with a power
    ("15\\mbox{ cm}^2", r1("...", "15 \\text{ cm}^2"), 1.0),  # same unit
    ("15\\mbox{ cm}^2", r1("...", "225"), 0.0),  # the unit's square is not applied
    ("10\\%", r1("...", "10"), 1.0),  # percentage without the sign
    ("10\\%", r1("...", "0.1"), 1.0),  # percentage as a fraction
    ("10\\%", r1("...", "1"), 0.0),  # wrong
    # --- DeepSeek-R1 style final sections ------------------------------------------------------------
    ("\\frac{11}{2}", ds("maybe \\boxed{6}?", "\\[\n\\boxed{\\dfrac{11}{2}}\n\\]"), 1.0),  # display box
    ("\\frac{11}{2}", ds("it is 11/2", "\\[\n\\boxed{5.5}\n\\]"), 1.0),  # decimal in the box
    ("\\frac{11}{2}", ds("it is 11/2", "\\[\n\\boxed{6}\n\\]"), 0.0),  # wrong box
    ("\\frac{11}{2}", ds("it is 11/2", "The area is $\\frac{11}{2}$."), 1.0),  # stated under the heading
    ("\\frac{11}{2}", "<think>11/2</think>\n\nSo the area is $\\frac{11}{2}$.", 1.0),  # closing sentence
    ("\\frac{11}{2}", "<think>11/2</think>\n\nSo the area is $\\frac{11}{2}$. Hope this helps!", 1.0),  # the
    # pleasantry after the stated result does not hide it
    ("\\frac{11}{2}", "<think>11/2</think>\n\nThe area is $\\frac{11}{2}$.\n\nLet me know if you want more.",
     1.0),  # a closing pleasantry paragraph does not hide the stated result
    ("\\frac{11}{2}", "<think>11/2</think>\n\nSo the area is $5$ or $\\frac{11}{2}$.", 0.0),  # hedge
    ("\\frac{11}{2}", "<think>11/2</think>\n\nThe area is 11/2", 0.0),  # no math mode, no declaration, no
    # closing punctuation (the response may be cut off)
    ("\\frac{11}{2}", ds("...", "The answer is $\\frac{11}{2}$."), 1.0),  # declared
    ("\\frac{11}{2}", ds("...", "$\\boxed{\\frac{11}{2}}$ and $\\boxed{\\frac{11}{2}}$"), 1.0),  # twice
    ("\\frac{11}{2}", ds("...", "\\boxed{x=\\frac{11}{2}}"), 1.0),  # equation in the box
    ("\\frac{11}{2}", ds("...", "\\fbox{$\\frac{11}{2}$}"), 1.0),  # \fbox
    ("\\frac{11}{2}", ds("...", "\\boxed{}"), 0.0),  # empty box
    ("\\frac{11}{2}", "<think>long \\boxed{\\frac{11}{2}} then</think>\n\nSo.", 0.0),  # box inside thinking
]

T = "<think>\nLet me work through this carefully.\n</think>\n"


def a(answer: str) -> str:
    """A short R1-Zero completion with the given answer block."""
    return f"{T}<answer>{answer}</answer>"


MORE_CASES = [
    ("\\frac{\\sqrt{3}}{2}", a("\\boxed{\\dfrac{\\sqrt{3}}{2}}"), 1.0),  # boxed \dfrac radical
    ("\\frac{\\sqrt{3}}{2}", a("\\sqrt{3}/2"), 1.0),  # slash form
    ("\\frac{\\sqrt{3}}{2}", a("sqrt(3)/2"), 1.0),  # plain-text sqrt
    ("\\frac{\\sqrt{3}}{2}", a("0.866"), 0.0),  # rounded decimal
    ("3\\sqrt{3}", a("3*sqrt(3)"), 1.0),  # plain-text product
    ("3\\sqrt{3}", a("3√3"), 1.0),  # unicode radical
    ("\\pi", a("π"), 1.0),  # unicode pi
    ("8\\pi", a("8π cm²"), 1.0),  # unicode pi with a squared unit
    ("x^2-4", a("(x-2)(x+2)"), 1.0),  # factored
    ("\\frac{1}{x}", a("x^{-1}"), 1.0),  # negative power
    ("2", a("\\log_3 9"), 1.0),  # unevaluated logarithm
    ("\\text{Yes}", a("yes"), 1.0),  # yes/no, case-insensitive word
    ("\\text{Yes}", a("No"), 0.0),  # the other word
    ("6", a("There are 6 ways."), 1.0),  # a sentence with one number
    ("6", a("6 ways"), 1.0),  # a unit word
    ("12", a("\\boxed{12}\\text{ cm}"), 1.0),  # the box wins over the trailing unit
    ("0.25", a("25%"), 1.0),  # plain percent sign
    ("25\\%", a("0.25"), 1.0),  # percentage gold, fraction answer
    ("25\\%", a("25 %"), 1.0),  # spaced percent
    ("(2,3)", a("(2, 3)"), 1.0),  # point
    ("(2,3)", a("x=2, y=3"), 1.0),  # system solution
    ("(2,3)", a("x=2 and y=3"), 1.0),  # spoken system solution
    ("(2,3)", a("y=3, x=2"), 1.0),  # variables named, in another order
    ("(2,3)", a("(3, 2)"), 0.0),  # swapped point
    ("\\$1.50", a("$1.50"), 1.0),  # currency
    ("\\$1.50", a("1.5 dollars"), 1.0),  # currency word
    ("150", a("150 cents"), 1.0),  # unit word
    ("3", a("x = 3 \\text{ or } x = 3"), 1.0),  # the same value twice
    ("4", a("2^2"), 1.0),  # unevaluated power
    ("\\frac{5}{2}", a("2.5"), 1.0),  # decimal
    ("\\frac{5}{2}", a("5:2"), 1.0),  # ratio
    ("0", a("0"), 1.0),  # zero
    ("0", a("-0"), 1.0),  # negative zero
    ("0", a("0.0"), 1.0),  # zero decimal
    ("-1", a("−1"), 1.0),  # unicode minus
    ("10", a("10."), 1.0),  # trailing period
    ("10", a("**10**"), 1.0),  # markdown bold
    ("10", a("\\(10\\)"), 1.0),  # inline math delimiters
    ("10", a("\\[10\\]"), 1.0),  # display math delimiters
    ("10", a("$$10$$"), 1.0),  # display dollars
    ("10", a("$10$."), 1.0),  # dollars and a period
    ("10", f"{T}\nThe final answer is $\\boxed{{10}}$.", 1.0),  # boxed after thinking, no tags
    ("10", f"{T}\n**Answer:** \\(\\boxed{{10}}\\)", 1.0),  # bold label and a box
    ("10", f"{T}\n### Final Answer\n\\[\n\\boxed{{10}}\n\\]", 1.0),  # markdown heading and display box
    ("10", f"{T}\nAnswer: 10", 1.0),  # label
    ("10", f"{T}\nThe answer is **10**.", 1.0),  # bold value
    ("10", f"{T}\nThe answer is: **10**", 1.0),  # colon and bold
    ("10", f"{T}\nSo the final answer is 10.", 1.0),  # sentence
    ("10", f"{T}\nTherefore, there are 10 apples.", 1.0),  # the one number of the closing sentence
    ("\\frac{1}{6}", a("1/6 ≈ 0.1667"), 1.0),  # exact value then its approximation
    ("\\frac{1}{6}", a("\\frac{1}{6} \\approx 0.167"), 1.0),  # LaTeX approximation
    ("\\frac{1}{6}", a("\\approx 0.167"), 0.0),  # only an approximation
    ("7", a("7 \\quad \\text{(dogs)}"), 1.0),  # parenthesised unit
    ("[-1, 3]", a("-1 \\leq x \\leq 3"), 1.0),  # closed inequality
    ("[-1, 3]", a("x \\in [-1, 3]"), 1.0),  # membership
    ("[-1, 3]", a("[-1,3]"), 1.0),  # interval
    ("(-\\infty, 0)", a("x<0"), 1.0),  # half line
    ("(-\\infty, 0)", a("(-∞, 0)"), 1.0),  # unicode infinity
    ("\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", a("\\begin{pmatrix}2\\\\-1\\end{pmatrix}"), 1.0),  # tight
    ("\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", a("\\langle 2, -1 \\rangle"), 1.0),  # angle-bracket vector
    ("1,2,3", a("1, 2, and 3"), 1.0),  # Oxford comma list
    ("1,2,3", a("\\{1,2,3\\}"), 1.0),  # set
    ("\\text{(A)}", a("A"), 1.0),  # bare letter
    ("\\text{(A)}", a("(A) 5"), 1.0),  # letter and value
    ("\\text{(A)}", a("\\boxed{\\text{A}}"), 1.0),  # boxed text letter
    ("\\text{(A)}", a("The answer is (A)."), 1.0),  # declared letter
    ("\\text{(A)}", a("A or B"), 0.0),  # hedge between choices
    ("\\textbf{(A) }5", a("A"), 1.0),  # AMC gold with its value
    ("A", a("(A)"), 1.0),  # letter gold
    ("1000", a("1 000"), 1.0),  # space thousands separator
    ("1000", a("10^3"), 1.0),  # power of ten
    ("1000000", a("1,000,000"), 1.0),  # two separators
    ("1000000", a("10^6"), 1.0),  # power of ten
    ("1000000", a("1 million"), 0.0),  # number words are not read (strict)
    ("x=2", a("2"), 1.0),  # equation gold, value answer
    ("2", a("x=2, x=-2"), 0.0),  # an extra root for a single answer
    ("\\pm 2", a("x=2, x=-2"), 1.0),  # both roots
    ("\\pm 2", a("\\pm2"), 1.0),  # same notation
    ("-2, 2", a("x = \\pm 2"), 1.0),  # plus-minus against a list
    ("\\frac{\\pi}{3}", a("\\pi/3"), 1.0),  # slash
    ("\\frac{\\pi}{3}", a("60^\\circ"), 0.0),  # degrees for radians
    ("60", a("60^\\circ"), 1.0),  # degrees dropped
    ("e", a("e"), 1.0),  # Euler's number
    ("e", a("2.718"), 0.0),  # rounded
    ("\\infty", a("\\infty"), 1.0),  # infinity
    ("\\infty", a("infinity"), 1.0),  # spelled infinity
    ("\\text{no solution}", a("No solution"), 1.0),  # a phrase
    ("2^{100}", a("1267650600228229401496703205376"), 1.0),  # a big power
    ("\\frac{3}{8}", a("\\frac{3}{8} = 0.375"), 1.0),  # a value and its decimal
    ("5", a("5 \\text{ or } 5.0"), 1.0),  # the same value twice
    ("5", f"{T}<answer>\n5\n</answer>", 1.0),  # newlines in the block
    ("5", "<think>The answer is 5</think>", 0.0),  # only thinking
    ("5", a("\\boxed{5}") + "<answer>\\boxed{6}</answer>", 0.0),  # a later block changes the answer
    ("y=-\\frac{1}{2}x+3", a("y = -0.5x + 3"), 1.0),  # decimal slope
    ("y=-\\frac{1}{2}x+3", a("x + 2y = 6"), 1.0),  # standard form
    ("y=-\\frac{1}{2}x+3", a("y = -\\frac{x}{2} + 3"), 1.0),  # x over 2
    ("y=-\\frac{1}{2}x+3", a("y = \\frac{1}{2}x+3"), 0.0),  # sign of the slope
    ("f(x)=2x+1", a("2x+1"), 1.0),  # function gold, expression answer
    ("\\sqrt{13}", a("\\sqrt{13} \\approx 3.61"), 1.0),  # exact then approximate
    ("\\sqrt{13}", a("3.61"), 0.0),  # approximate only
    ("-\\frac{1}{2}", a("-1/2"), 1.0),  # slash
    ("-\\frac{1}{2}", a("\\frac{-1}{2}"), 1.0),  # sign in the numerator
    ("-\\frac{1}{2}", a("-\\frac12"), 1.0),  # brace-less
    ("-\\frac{1}{2}", a("\\frac{1}{-2}"), 1.0),  # sign in the denominator
    ("-\\frac{1}{2}", a("\\frac{1}{2}"), 0.0),  # sign flip
    ("2,3", f"{T}The roots are $\\boxed{{2}}$ and $\\boxed{{3}}$, i.e. $\\boxed{{2, 3}}$.", 1.0),  # twice
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", a("[[1, 2], [3, 4]]"), 1.0),  # plain-text matrix
    ("[2,5)", a("\\{x \\mid 2 \\le x < 5\\}"), 1.0),  # set-builder notation
    (GSM.format(18), f"{T}\n18", 1.0),  # no tags, but the whole response is the number
    (GSM.format(18), f"{T}\n17", 0.0),  # ... a wrong one
    (GSM.format(18), f"{T}\nShe makes 18 dollars a day.", 1.0),  # stated in the closing sentence
    (GSM.format(18), f"{T}\nShe makes 18 dollars a day, or maybe 20.", 0.0),  # hedged closing sentence
    (GSM.format(18), f"{T}\nSo far she has made 18 dollars and then", 0.0),  # cut off mid-sentence
]
CASES += MORE_CASES

IDS = [f"{i:03d}" for i in range(len(CASES))]


def test_enough_cases():
    assert len(CASES) >= 150


@pytest.mark.parametrize(("gold", "completion", "label"), CASES, ids=IDS)
def test_graded(gold, completion, label):
    result = math_accuracy.explain(completion, answer=gold)
    assert result.value == label, f"{result.reason} {result.detail}"
