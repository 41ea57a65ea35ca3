"""Math accuracy reward: exact final-answer extraction, symbolic equivalence, hard time budgets.

Public names:

* :data:`math_accuracy` / :func:`make_math_reward` — the TRL-style reward (column ``answer``).
* :func:`extract_answer` — the final answer of a completion, as a careful grader reads it.
* :func:`extract_gold` — the answer inside a raw dataset gold (GSM8K ``#### N``, MATH LaTeX, AMC floats).
* :func:`verify` — whether a prediction states the same answer as a gold.

Layout: :mod:`~rewards.math.extract` (where the answer is), :mod:`~rewards.math.normalize` (presentation),
:mod:`~rewards.math.lexer` / :mod:`~rewards.math.parser` (our own LaTeX/plain-math parser to a tuple AST),
:mod:`~rewards.math.fast` (exact rationals and float probing, in-process), :mod:`~rewards.math.compare`
(shapes: tuples, sets, intervals, equations, matrices), :mod:`~rewards.math.symbolic` (AST -> sympy, in the
workers only), :mod:`~rewards.math.pool` (killable workers), :mod:`~rewards.math.reward` (the reward).

Model text never reaches ``eval``, ``sympify``, ``parse_expr`` or ``latex2sympy``; sympy is imported only in
worker processes. See ``docs/math.md`` for the design and the benchmark against Math-Verify.
"""

from rewards.math.extract import extract_answer, extract_gold
from rewards.math.reward import MathReward, MathRewardConfig, make_math_reward, math_accuracy
from rewards.math.verify import verify

__all__ = [
    "MathReward",
    "MathRewardConfig",
    "extract_answer",
    "extract_gold",
    "make_math_reward",
    "math_accuracy",
    "verify",
]
