"""Property-testing kit for reward functions: Hypothesis strategies and :func:`check_reward`.

Use it to prove a reward keeps TRL's contract on whatever a model writes::

    from rewards.testing import check_reward, countdown_problems
    check_reward(my_reward, columns=countdown_problems())      # correlated columns: a strategy of rows
    check_reward(my_math_reward, columns={"answer": "42"})      # or column -> strategy | constant

Key idea: a thin public module over private internals (as Hypothesis itself is laid out). Importing it loads
Hypothesis, so ``import rewards`` never does.

Left out on purpose: nothing here runs automatically; call it from your tests.
"""

from rewards.testing._check import CheckReport, check_reward
from rewards.testing._strategies import (
    adversarial_completions,
    any_completions,
    chat_completions,
    countdown_problems,
    r1_completions,
    texts,
)

__all__ = [
    "CheckReport",
    "adversarial_completions",
    "any_completions",
    "chat_completions",
    "check_reward",
    "countdown_problems",
    "r1_completions",
    "texts",
]
