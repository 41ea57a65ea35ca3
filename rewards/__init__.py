"""Rule-based rewards for R1-Zero-style RL, usable from any trainer.

Every reward follows TRL's contract ``fn(completions, **columns) -> list[float | None]`` (see
:mod:`rewards._contract`), explains itself through ``.explain(...)``, is picklable, and is bounded in time and
memory. Model output is treated as hostile: it never reaches ``eval``, ``exec``, ``sympify`` or
``parse_expr``.

Public names are resolved lazily (PEP 562) so ``import rewards`` stays cheap: sympy is loaded only by the math
reward, and nothing here imports torch, numpy, gymnasium or a trainer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rewards._contract import Completion, Reward, RewardResult, prompt_prefills_think, to_completion

# Eager on purpose: importing the submodule ``rewards.combine`` binds the attribute ``rewards.combine`` to the
# module, which would shadow the lazy function of the same name. The module only needs the stdlib.
from rewards.combine import CombinedReward, combine

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # format rewards
    "think_format": "rewards.format",
    "tag_count": "rewards.format",
    "make_think_format_reward": "rewards.format",
    # countdown
    "countdown_accuracy": "rewards.countdown",
    "make_countdown_reward": "rewards.countdown",
    # math
    "math_accuracy": "rewards.math",
    "make_math_reward": "rewards.math",
    # code
    "code_accuracy": "rewards.code",
    "make_code_reward": "rewards.code",
    # shaping
    "make_cosine_length_reward": "rewards.shaping",
    "make_repetition_penalty": "rewards.shaping",
    "make_soft_overlong_reward": "rewards.shaping",
    "reasoning_steps": "rewards.shaping",
    "make_language_consistency_reward": "rewards.shaping",
    # composition
    "combine": "rewards.combine",
    "CombinedReward": "rewards.combine",
}

__all__ = [  # noqa: RUF022 - grouped as in _LAZY
    "Completion",
    "Reward",
    "RewardResult",
    "to_completion",
    "prompt_prefills_think",
    "think_format",
    "tag_count",
    "make_think_format_reward",
    "countdown_accuracy",
    "make_countdown_reward",
    "math_accuracy",
    "make_math_reward",
    "code_accuracy",
    "make_code_reward",
    "make_cosine_length_reward",
    "make_repetition_penalty",
    "make_soft_overlong_reward",
    "reasoning_steps",
    "make_language_consistency_reward",
    "combine",
    "CombinedReward",
]
assert set(__all__[5:]) == set(_LAZY), "keep __all__ and _LAZY in step"

if TYPE_CHECKING:  # pragma: no cover
    from rewards.code import code_accuracy, make_code_reward
    from rewards.countdown import countdown_accuracy, make_countdown_reward
    from rewards.format import make_think_format_reward, tag_count, think_format
    from rewards.math import make_math_reward, math_accuracy
    from rewards.shaping import (
        make_cosine_length_reward,
        make_language_consistency_reward,
        make_repetition_penalty,
        make_soft_overlong_reward,
        reasoning_steps,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewards' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
