"""The local sandbox backend: a warm fork server plus one judge, spawner and sandboxed child per program.

Process tree (see docs/sandbox.md for the full design and the attack table)::

    library process (any threads)            never forks, never runs model code
    └── zygote  (python -m rewards.code._zygote: no network, private /tmp, subreaper)
        └── judge   one per program: runs the dataset's tests, decides verdicts   (sandbox judge uid)
            └── spawner   forked before the judge reads its job: holds no test    (root, subreaper)
                └── child   runs the program (unique uid, rlimits, audit hook)    (job uid, own session)

Key idea: the verdict is decided in the judge, which shares no process with model code; the program's
process can only send plain data back. Throughput comes from the warm zygote (all imports done once, each
program costs three ``fork`` calls) and from running ``workers`` programs at once (default: usable cores).

The library talks to the zygote over a ``SOCK_SEQPACKET`` socket (guarded by a lock, so any number of
threads can call :meth:`LocalSandbox.run` at once) and to each judge over its own pair of pipes. A dead
zygote is detected and restarted on the next job.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from rewards.code._wire import WireError, read_frame, write_frame
from rewards.code.backend import JobResult, SandboxLimits, TestOutcome
from rewards.code.formats import Job

__all__ = ["LocalSandbox"]

_PACKAGE_ROOT = str(pathlib.Path(__file__).resolve().parents[2])


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class LocalSandbox:
    """Runs programs on this machine, isolated (see the module docstring); a :class:`SandboxBackend`.

    Args:
        limits: Resource limits per program (defaults: :class:`SandboxLimits`).
        workers: Programs run at once; defaults to the usable CPU cores.

    Example:
        >>> from rewards.code import Job
        >>> job = Job(program="x = 1", kind="asserts", tests=("assert x == 1",))
        >>> with LocalSandbox() as box:  # doctest: +SKIP
        ...     [r.pass_rate for r in box.run([job])]
        [1.0]
    """

    def __init__(self, limits: SandboxLimits | None = None, *, workers: int | None = None) -> None:
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise TypeError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
        if workers is not None and not (isinstance(workers, int) and 1 <= workers <= 1024):
            raise ValueError(f"workers={workers!r}; allowed: an int in [1, 1024] or None (usable cores)")
        self.limits = limits or SandboxLimits()
        self.workers = workers or _usable_cores()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._ctl: socket.socket | None = None
        self._hello: dict[str, Any] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- pickling: a sandbox travels as its settings and restarts lazily ----------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"limits": self.limits, "workers": self.workers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["limits"], workers=state["workers"])

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:  # noqa: SIM105 - contextlib may already be gone at interpreter shutdown
            self.close()
        except Exception:
            pass

    # -- the zygote -----------------------------------------------------------------------------------------

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": _PACKAGE_ROOT,
            "MALLOC_ARENA_MAX": "2",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        settings = json.dumps({"tmpfs_size": "1g"})
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "rewards.code._zygote", str(theirs.fileno()), settings],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        ours.settimeout(60)
        raw = ours.recv(1 << 16)
        if not raw:
            raise RuntimeError("the sandbox fork server failed to start (see its stderr above)")
        self._hello = json.loads(raw)
        ours.settimeout(None)
        self._ctl = ours

    def _ask(self, request: dict, fds: Sequence[int] = ()) -> dict:
        """Sends one control request to the zygote, starting or restarting it as needed."""
        with self._lock:
            for attempt in range(2):
                if self._proc is None or self._proc.poll() is not None:
                    self._stop_locked()
                    self._start()
                try:
                    socket.send_fds(self._ctl, [json.dumps(request).encode()], list(fds))
                    raw = self._ctl.recv(1 << 20)
                    if raw:
                        return json.loads(raw)
                except OSError:
                    if attempt:
                        raise
                self._stop_locked()  # the zygote died mid-request: restart it once
            raise RuntimeError("the sandbox fork server keeps dying")

    @property
    def isolation(self) -> dict[str, bool]:
        """What the zygote could set up on this machine (network namespace, private /tmp, unique uids...)."""
        if not self._hello:
            self._ask({"op": "stats"})
        return dict(self._hello.get("isolation", {}))

    @property
    def zygote_pid(self) -> int | None:
        """The fork server's pid (for tests), or None when not running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stats(self) -> dict[str, Any]:
        """Running jobs and leftover entries in the zygote's work directory (for tests and monitoring)."""
        return self._ask({"op": "stats"})

    # -- running jobs ---------------------------------------------------------------------------------------

    def _run_one(self, job: Job) -> JobResult:
        n = len(job.tests)
        hard = self.limits.program_timeout_s + self.limits.test_timeout_s + 10.0
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            request = {"op": "job", "limits": self.limits.to_wire(), "hard_timeout_s": hard}
            self._ask(request, [job_r, res_w])
        finally:
            os.close(job_r)
            os.close(res_w)
        outcomes: dict[int, TestOutcome] = {}
        error = ""
        try:
            try:
                write_frame(job_w, job.to_wire())
            except BrokenPipeError:
                pass
            finally:
                os.close(job_w)
            deadline = time.monotonic() + hard + 5.0
            while True:
                frame = read_frame(res_r, max_bytes=1 << 24, deadline=deadline)
                if frame.get("done"):
                    break
                if frame["i"] < 0:
                    error = str(frame["status"])
                    break
                outcomes[int(frame["i"])] = TestOutcome(str(frame["status"]), str(frame["message"]))
        except (EOFError, TimeoutError, WireError):
            pass  # the judge was killed at the hard deadline: unreported tests count as timeouts
        finally:
            os.close(res_r)
        filler = TestOutcome("timeout", "the program's job was killed at its hard deadline")
        return JobResult(tuple(outcomes.get(i, filler) for i in range(n)), error=error)

    def run(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Runs the jobs, ``workers`` at a time, and returns their results in order.

        Raises:
            TypeError: If an item is not a :class:`Job`.
        """
        jobs = list(jobs)
        for job in jobs:
            if not isinstance(job, Job):
                raise TypeError(f"LocalSandbox.run expects Job objects, got {type(job).__name__}")
        if not jobs:
            return []
        if len(jobs) == 1:
            return [self._run_one(jobs[0])]
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, "rlenv-sandbox")
            pool = self._pool
        return list(pool.map(self._run_one, jobs))

    def _stop_locked(self) -> None:
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stops the fork server (killing any running job) and the worker threads; the sandbox restarts on
        the next :meth:`run`."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            self._stop_locked()
