"""Gymnasium environments for LLM reasoning: countdown, math and code, single- and multi-turn.

``import rlenv`` registers ``rlenv/Countdown-v0``, ``rlenv/Math-v0``, ``rlenv/Code-v0`` and
``rlenv/CodeFeedback-v0`` with gymnasium (string entry points, so nothing heavy is imported until
``gym.make``). Observations are prompts, actions are completions, rewards come from :mod:`rewards`.

Quickstart::

    import gymnasium as gym, rlenv
    env = gym.make("rlenv/Countdown-v0")
    prompt, info = env.reset(seed=42)            # info["nums"], info["target"]
    _, reward, terminated, _, info = env.step("<think>...</think><answer>(44 - 19) * 3</answer>")
    vec = rlenv.make_vec("rlenv/Math-v0", 8)     # SAME_STEP autoreset, Text-safe async
    ds = rlenv.to_hf_dataset("rlenv/Math-v0", 1000, seed=0)   # TRL GRPOTrainer-ready

Public names are resolved lazily (PEP 562); ``import rlenv`` never loads torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gymnasium.envs.registration import register, registry

# env id -> (entry point, vector entry point, one-line description)
ENV_IDS: dict[str, tuple[str, str, str]] = {
    "rlenv/Countdown-v0": ("rlenv.envs.countdown:CountdownEnv", "rlenv.vector:countdown_vector",
                           "reach a target with + - * / (TinyZero)"),
    "rlenv/Math-v0": ("rlenv.envs.math:MathEnv", "rlenv.vector:math_vector",
                      "arithmetic, fractions, equations, word problems; GSM8K / MATH files"),
    "rlenv/Code-v0": ("rlenv.envs.code:CodeEnv", "rlenv.vector:code_vector",
                      "write a Python function that passes hidden tests; HumanEval / MBPP files"),
    "rlenv/CodeFeedback-v0": ("rlenv.envs.code_feedback:CodeFeedbackEnv", "rlenv.vector:code_feedback_vector",
                              "multi-turn code: failing tests come back, up to N attempts"),
}

for _env_id, (_entry_point, _vector_entry_point, _) in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point, vector_entry_point=_vector_entry_point,
                 nondeterministic=False)

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "CountdownEnv": "rlenv.envs.countdown",
    "MathEnv": "rlenv.envs.math",
    "CodeEnv": "rlenv.envs.code",
    "CodeFeedbackEnv": "rlenv.envs.code_feedback",
    "CodeFeedbackTool": "rlenv.envs.code_feedback",
    "UnicodeText": "rlenv.envs._base",
    "make_vec": "rlenv.vector",
    "to_hf_dataset": "rlenv.export",
    "to_jsonl": "rlenv.export",
    "export_rows": "rlenv.export",
    "regenerate": "rlenv.export",
    "CurriculumWrapper": "rlenv.curriculum",
    "FixedSchedule": "rlenv.curriculum",
    "AdaptiveSchedule": "rlenv.curriculum",
}

__all__ = [  # noqa: RUF022 - grouped as in _LAZY
    "ENV_IDS",
    "CountdownEnv",
    "MathEnv",
    "CodeEnv",
    "CodeFeedbackEnv",
    "CodeFeedbackTool",
    "UnicodeText",
    "make_vec",
    "to_hf_dataset",
    "to_jsonl",
    "export_rows",
    "regenerate",
    "CurriculumWrapper",
    "FixedSchedule",
    "AdaptiveSchedule",
]
assert set(__all__[1:]) == set(_LAZY), "keep __all__ and _LAZY in step"

if TYPE_CHECKING:  # pragma: no cover
    from rlenv.curriculum import AdaptiveSchedule, CurriculumWrapper, FixedSchedule
    from rlenv.envs._base import UnicodeText
    from rlenv.envs.code import CodeEnv
    from rlenv.envs.code_feedback import CodeFeedbackEnv, CodeFeedbackTool
    from rlenv.envs.countdown import CountdownEnv
    from rlenv.envs.math import MathEnv
    from rlenv.export import export_rows, regenerate, to_hf_dataset, to_jsonl
    from rlenv.vector import make_vec


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rlenv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
