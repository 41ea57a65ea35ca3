"""Extraction tables: where the final answer of a completion is, and what the answer in a raw gold is."""

import pytest

from rewards.math import extract_answer, extract_gold

EXTRACT = [
    # --- answer blocks ---------------------------------------------------------------------------------
    ("<think>2+2</think><answer>4</answer>", "4"),  # plain R1-Zero layout
    ("<think>2+2</think><answer> 4 </answer>", "4"),  # whitespace stripped
    ("<think>\\boxed{3}</think><answer>4</answer>", "4"),  # a box inside thinking never counts
    ("<think>a</think><answer>1</answer><answer>2</answer>", "2"),  # the last block counts
    ("<think>a</think><answer>So \\boxed{7}.</answer>", "7"),  # a box inside the block wins over prose
    ("<think>a</think><answer>The answer is 7.</answer>", "7"),  # a declaration inside the block
    ("<think>a</think><answer>$\\frac{1}{2}$</answer>", "$\\frac{1}{2}$"),  # whole block (normalised later)
    ("<think>a</think><answer></answer>", None),  # empty block
    ("<think>a</think><answer>   </answer>", None),  # blank block
    ("<think>a</think><answer>5", None),  # unclosed block: truncated
    ("<think>I think <answer>3</answer> is right</think> <answer>4</answer>", "4"),  # block in thinking
    ("<think>never closed <answer>3</answer>", "3"),  # an answer block ends unclosed thinking
    ("reasoning</think><answer>9</answer>", "9"),  # prefilled <think> (lone closing tag)
    ("reasoning \\boxed{1}</think>The answer is \\boxed{2}", "2"),  # prefilled: the box before is thinking
    # --- boxes outside thinking ------------------------------------------------------------------------
    ("So the answer is $\\boxed{12}$.", "12"),  # one box
    ("\\boxed{\\frac{a}{b}}", "\\frac{a}{b}"),  # nested braces
    ("$\\boxed{2}$ and $\\boxed{3}$", "2, 3"),  # separate boxes form one list
    ("\\boxed{5} ... so again \\boxed{5}", "5"),  # the same box twice is one answer
    ("\\boxed{5} or maybe \\boxed{6}", "5, 6"),  # alternatives form a list (a hedge fails to verify)
    ("\\fbox{8}", "8"),  # \fbox
    ("\\boxed 8", "8"),  # brace-less box
    ("<think>\\boxed{1}</think>", None),  # only thinking
    ("<think>truncated \\boxed{1}", None),  # truncated thinking
    ("\\boxed{unclosed", None),  # an unclosed box is no answer
    # --- declared answers ------------------------------------------------------------------------------
    ("Work.\n#### 1,234", "1,234"),  # GSM8K
    ("Work.\nA: 18", "18"),  # GSM8K model solutions
    ("The answer is 42.", "42"),  # sentence
    ("The answer is 3.5 hours.", "3.5 hours"),  # a decimal point is not the sentence end
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),  # Minerva
    ("**Answer:** 17", "17"),  # markdown label
    ("**Answer: 17**", "17"),  # markdown around
    ("Answer: $x = 2$ or $x = 3$", "x = 2 or x = 3"),  # hedged declaration keeps both
    ("The answer is 9. Wait.\nThe answer is 10.", "10"),  # the last declaration
    ("The answer is 7, because 3 + 4 = 7.", "7"),  # justification cut off
    ("Let me check the answer: it works. The answer is 7. Done", "7"),  # a non-math declaration skipped
    ("**Final Answer**\n31", "31"),  # heading then the value
    # --- closing sentence math -------------------------------------------------------------------------
    ("So the area is $\\frac{11}{2}$.", "\\frac{11}{2}"),  # math of the last sentence
    ("So the area is \\(6\\). Hope this helps!", "6"),  # pleasantry afterwards
    ("Thus $x = 3$", "x = 3"),  # ends in math mode
    ("The total is $18$ dollars", "18"),  # no final period, but a complete statement
    ("We get $3 + 4 = 7$. Then we", None),  # cut off mid-sentence
    ("First, we compute $3 + 4 = 7$.", None),  # a first step is not a conclusion
    ("The area is 6.", "6"),  # the one number of a complete closing sentence
    ("The area is 6", None),  # no closing punctuation: possibly truncated, no answer
    ("So 2 + 4 = 6 in total.", None),  # several numbers in the closing sentence: no single answer
    ("<think>a</think>First, we find that there are 12 eggs.", None),  # a first step, then cut off
    # --- a bare one-line response ----------------------------------------------------------------------
    ("<think>a</think>\n\n18", "18"),  # the whole response is the number
    ("<think>a</think> x = 5 ", "x = 5"),  # an equation
    ("<think>a</think>Hmm.", None),  # a word is not an answer
    ("18\n19", None),  # two lines are not one answer
    ("", None),  # empty completion
]


@pytest.mark.parametrize(("text", "expected"), EXTRACT)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


GOLDS = [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 1,234", "1,234"),  # GSM8K solution
    ("\\frac{3}{4}", "\\frac{3}{4}"),  # MATH LaTeX without $
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)"),  # tuple
    ("$\\frac{1}{2}$", "$\\frac{1}{2}$"),  # dollars are stripped later, by normalisation
    ("We get \\boxed{10\\%}.", "10\\%"),  # a MATH solution used as gold
    (27.0, "27"),  # AMC float
    (2.5, "2.5"),  # non-integral float
    (12, "12"),  # int
    ("", None),  # empty
    (None, None),  # missing
    ("Step one.\nStep two.\nA: 18", "18"),  # model-solution ground truth
]


@pytest.mark.parametrize(("gold", "expected"), GOLDS)
def test_extract_gold(gold, expected):
    assert extract_gold(gold) == expected


def test_extract_rejects_non_strings():
    with pytest.raises(TypeError, match="expects a string"):
        extract_answer(42)
