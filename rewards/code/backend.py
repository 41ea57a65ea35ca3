"""The sandbox backend interface: limits, per-test outcomes, and the protocol every backend implements.

Key idea: a backend turns :class:`~rewards.code.formats.Job` objects into :class:`JobResult` objects (one
:class:`TestOutcome` per test); the reward only turns outcomes into a score. The local sandbox
(:class:`rewards.code.LocalSandbox`) is the default; :class:`rewards.code.HttpSandbox` speaks to a
SandboxFusion-compatible service. Anything with a ``run(jobs) -> list[JobResult]`` method can be plugged in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rewards.code.formats import Job

__all__ = ["STATUSES", "JobResult", "SandboxBackend", "SandboxLimits", "TestOutcome"]

STATUSES = ("passed", "failed", "error", "timeout", "crashed", "output_limit", "not_run", "bad_tests")


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Resource limits of one sandboxed program.

    Example:
        >>> SandboxLimits(test_timeout_s=1.0).memory_bytes
        1073741824
    """

    test_timeout_s: float = 3.0
    """Wall-clock seconds one test may take (a stdin/stdout run, or one assert / ``check`` call)."""
    program_timeout_s: float = 20.0
    """Wall-clock seconds all tests of one program may take together; later tests are ``not_run``."""
    memory_mb: int = 1024
    """Address-space limit of the program's process (``RLIMIT_AS``), in MiB."""
    max_output_bytes: int = 4 << 20
    """Combined stdout+stderr bytes a stdin/stdout run may write before it is killed (``output_limit``)."""
    max_file_bytes: int = 16 << 20
    """Largest file the program may write in its working directory (``RLIMIT_FSIZE``)."""
    max_processes: int = 32
    """Processes + threads of the program's sandbox user (``RLIMIT_NPROC``; enforced when run as root)."""
    max_frame_bytes: int = 16 << 20
    """Largest single value (encoded) a program may return to the judge."""

    def __post_init__(self) -> None:
        for name in ("test_timeout_s", "program_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value <= 3600):
                raise ValueError(f"SandboxLimits.{name}={value!r}; allowed: a number in (0, 3600]")
        ints = {
            "memory_mb": (64, 1 << 20),
            "max_output_bytes": (1, 1 << 34),
            "max_file_bytes": (0, 1 << 40),
            "max_processes": (1, 4096),
            "max_frame_bytes": (1 << 10, 1 << 31),
        }
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"SandboxLimits.{name}={value!r}; allowed: an int in [{lo}, {hi}]")

    @property
    def memory_bytes(self) -> int:
        """``memory_mb`` in bytes."""
        return self.memory_mb << 20

    def to_wire(self) -> dict[str, float | int]:
        """The limits as the local judge reads them."""
        return {
            "test_timeout_s": float(self.test_timeout_s),
            "program_timeout_s": float(self.program_timeout_s),
            "memory_bytes": self.memory_bytes,
            "max_output_bytes": self.max_output_bytes,
            "file_bytes": self.max_file_bytes,
            "max_processes": self.max_processes,
            "max_frame": self.max_frame_bytes,
        }


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """The verdict of one test.

    Attributes:
        status: One of :data:`STATUSES`; only ``"passed"`` passes.
        message: Why it did not pass (the failing assert, the exception, expected vs actual output).
    """

    __test__ = False  # not a pytest test class
    status: str
    message: str = ""

    @property
    def passed(self) -> bool:
        """True only for status ``"passed"``."""
        return self.status == "passed"


@dataclass(frozen=True, slots=True)
class JobResult:
    """All test outcomes of one job, in test order.

    Attributes:
        outcomes: One :class:`TestOutcome` per test.
        error: Set when the job could not be judged at all: ``"bad_tests"`` (the reference tests do not
            compile) or ``"sandbox_error"`` (the backend failed); the reward then returns None.
    """

    outcomes: tuple[TestOutcome, ...]
    error: str = ""

    @property
    def n_passed(self) -> int:
        """How many tests passed."""
        return sum(o.passed for o in self.outcomes)

    @property
    def pass_rate(self) -> float:
        """Fraction of tests passed (0.0 for no tests)."""
        return self.n_passed / len(self.outcomes) if self.outcomes else 0.0


@runtime_checkable
class SandboxBackend(Protocol):
    """What the code reward needs from a sandbox: run jobs, return one result per job, in order.

    Implementations must be thread-safe (rewards are called from trainer worker threads) and must never
    raise for a misbehaving program (that is a test outcome), only for caller errors.
    """

    def run(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Runs every job and returns their results in the same order."""
        ...
