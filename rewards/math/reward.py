"""The math accuracy reward: ``math_accuracy(completions, answer=[...])`` and its factory.

Key idea: every sample goes through the in-process fast path (extraction, our parser, exact rationals);
only the few it cannot decide are sent, concurrently, to the shared pool of killable sympy workers, each
under the per-sample budget ``timeout_s``. A sample over budget scores 0.0 with reason ``timeout``.

References: TRL's ``accuracy_reward`` (trl/rewards/accuracy_rewards.py) for the contract and the ``None``
convention for unparseable golds; DeepSeek-R1 (arXiv:2501.12948) rule-based accuracy rewards.

Left out on purpose: no partial credit, no format requirement (combine with ``rewards.think_format`` through
``rewards.combine`` with a gate for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from rewards._contract import Completion, Reward, RewardResult
from rewards.math.extract import extract_answer, extract_gold
from rewards.math.fast import FastComparator
from rewards.math.verify import Verdict, check

__all__ = ["MathReward", "MathRewardConfig", "make_math_reward", "math_accuracy"]


@dataclass(frozen=True, kw_only=True)
class MathRewardConfig:
    """Settings of the math accuracy reward."""

    timeout_s: float = 1.5
    """Per-sample budget in seconds for the symbolic (sympy) check; over budget scores 0 (reason timeout)."""
    rel_tol: float = 1e-9
    """Relative tolerance, used only where one side is a hand-written decimal and the other irrational."""
    workers: int = 0
    """Sympy worker processes shared by the whole process; 0 = min(2, CPU count)."""

    def __post_init__(self) -> None:
        if not 0.01 <= self.timeout_s <= 600:
            raise ValueError(f"timeout_s must be in [0.01, 600] seconds, got {self.timeout_s}")
        if not 0 <= self.rel_tol < 1e-3:
            raise ValueError(f"rel_tol must be in [0, 1e-3), got {self.rel_tol}")
        if not 0 <= self.workers <= 256:
            raise ValueError(f"workers must be in [0, 256] (0 = automatic), got {self.workers}")


class MathReward(Reward):
    """1.0 when the completion's final answer is equivalent to the gold ``answer``, else 0.0.

    ``None`` only when the gold itself cannot be parsed. ``explain`` gives the reason (``ok``,
    ``wrong_value``, ``no_answer``, ``unparseable_answer``, ``too_large``, ``timeout``, ...) and the
    extracted answer.
    """

    columns = ("answer",)

    def __init__(self, config: MathRewardConfig | None = None, *, name: str = "math_accuracy") -> None:
        self.config = config or MathRewardConfig()
        self.__name__ = name

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        return self.explain_batch([completion], [row])[0]

    def explain_batch(
        self, completions: Sequence[Completion], rows: Sequence[dict[str, Any]]
    ) -> list[RewardResult]:
        cmp = FastComparator(self.config.rel_tol)
        pairs = [
            (extract_gold(row["answer"]), extract_answer(c.full_text))
            for c, row in zip(completions, rows, strict=False)
        ]
        verdicts: list[Verdict | None] = []
        slow: list[int] = []
        for i, (gold, pred) in enumerate(pairs):
            verdict = check(gold, pred, cmp)
            if verdict.reason == "undecided":
                slow.append(i)
                verdicts.append(None)
            else:
                verdicts.append(verdict)
        if slow:
            for i, verdict in zip(slow, self._check_slow([pairs[i] for i in slow]), strict=False):
                verdicts[i] = verdict
        return [_result(v, pred) for v, (_, pred) in zip(verdicts, pairs, strict=False)]

    def _check_slow(self, pairs: list[tuple[str | None, str | None]]) -> list[Verdict]:
        from rewards.math.pool import shared_pool

        pool = shared_pool(self.config.workers or None)

        def one(pair: tuple[str | None, str | None]) -> Verdict:
            return pool.check(pair[0], pair[1], timeout=self.config.timeout_s, rel_tol=self.config.rel_tol)

        if len(pairs) == 1 or pool.size == 1:
            return [one(p) for p in pairs]
        with ThreadPoolExecutor(max_workers=min(pool.size, len(pairs))) as executor:
            return list(executor.map(one, pairs))


def _result(verdict: Verdict | None, pred: str | None) -> RewardResult:
    assert verdict is not None, "every sample gets a verdict"
    value = None if verdict.value is None else float(verdict.value)
    return RewardResult(value, verdict.reason, "" if pred is None else f"answer={pred[:200]!r}")


def make_math_reward(
    *, timeout_s: float = 1.5, rel_tol: float = 1e-9, workers: int = 0, name: str = "math_accuracy"
) -> MathReward:
    """Builds a math accuracy reward (TRL signature, column ``answer``).

    Args:
        timeout_s: Per-sample budget for the symbolic check.
        rel_tol: Relative tolerance where one side is a decimal and the other irrational.
        workers: Sympy worker processes (0 = min(2, CPU count)).
        name: The reward's ``__name__`` (the metric key ``reward/<name>``).

    Returns:
        The reward object (picklable).

    Raises:
        ValueError: On an out-of-range setting.

    Example:
        >>> reward = make_math_reward(timeout_s=1.0)
        >>> reward(["<think>hmm</think><answer>\\\\frac{1}{2}</answer>", "The answer is 0.4"],
        ...        answer=["0.5", "0.5"])
        [1.0, 0.0]
    """
    return MathReward(MathRewardConfig(timeout_s=timeout_s, rel_tol=rel_tol, workers=workers), name=name)


math_accuracy = make_math_reward()
"""The default math accuracy reward: ``math_accuracy(completions, answer=[...]) -> list[float | None]``."""
