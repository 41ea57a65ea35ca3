"""Code accuracy reward on a real local sandbox (and a backend interface for remote ones).

``code_accuracy(completions, **columns)`` runs the last fenced Python block of each completion (outside the
thinking) against the row's tests and returns the fraction passed; ``make_code_reward(mode="binary")`` gives
all-or-nothing. Columns pick the format: ``tests`` (MBPP asserts, optional ``test_setup_code``), ``test`` +
``entry_point`` (HumanEval), ``inputs`` + ``outputs`` (stdin/stdout), or ``inputs`` + ``outputs`` +
``fn_name`` (APPS call-based).

Programs run in :class:`LocalSandbox` by default: a separate process per program under a unique unprivileged
uid, rlimits, no network, a private temporary directory, an audit hook, and verdicts decided in another
process that no model code shares (design and attack table: docs/sandbox.md). :class:`HttpSandbox` talks to a
SandboxFusion-compatible service instead.

Example:
    >>> from rewards.code import extract_program
    >>> extract_program("<think>...</think>```python\\ndef f():\\n    return 1\\n```")
    'def f():\\n    return 1\\n'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Lazy (PEP 562): the sandbox's fork server imports this package and must stay small (fork cost grows).
_LAZY = {
    "JobResult": "backend", "SandboxBackend": "backend", "SandboxLimits": "backend", "TestOutcome": "backend",
    "Job": "formats", "call_output_matches": "formats",
    "extract_program": "formats", "job_from_row": "formats", "normalise_output": "formats",
    "outputs_match": "formats", "HttpSandbox": "http", "LocalSandbox": "local", "CodeReward": "reward",
    "code_accuracy": "reward", "make_code_reward": "reward",
}  # fmt: skip

if TYPE_CHECKING:  # pragma: no cover
    from rewards.code.backend import JobResult, SandboxBackend, SandboxLimits, TestOutcome
    from rewards.code.formats import (
        Job,
        call_output_matches,
        extract_program,
        job_from_row,
        normalise_output,
        outputs_match,
    )
    from rewards.code.http import HttpSandbox
    from rewards.code.local import LocalSandbox
    from rewards.code.reward import CodeReward, code_accuracy, make_code_reward

__all__ = [
    "CodeReward",
    "HttpSandbox",
    "Job",
    "JobResult",
    "LocalSandbox",
    "SandboxBackend",
    "SandboxLimits",
    "TestOutcome",
    "call_output_matches",
    "code_accuracy",
    "extract_program",
    "job_from_row",
    "make_code_reward",
    "normalise_output",
    "outputs_match",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewards.code' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rewards.code.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
