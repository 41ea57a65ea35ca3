"""The local sandbox backend: a warm fork server, persistent judge lanes, one sandboxed child per program.

Process tree (see docs/sandbox.md for the full design and the attack table)::

    library process (any threads)          never forks, never runs model code
    └── zygote   python -S -m rewards.code._zygote: own network + mount namespace, subreaper
        └── judge    one per lane, persistent: runs the dataset's tests, decides verdicts   (judge uid)
            └── spawner   forked before the judge read any job: never holds a test         (root)
                └── child   one per program (per test for stdin/stdout): runs the program   (fresh uid)

Key idea: the verdict is decided in the judge, which shares no process with model code; the program's
process can only send plain data back. Throughput comes from the warm zygote (imports done once), from
persistent lanes (a program costs one ``fork`` of a small process) and from running ``workers`` lanes at once.

The library talks to the zygote over a ``SOCK_SEQPACKET`` socket (guarded by a lock) and to each lane over
its own pair of pipes; a lane serves one job at a time, so any number of threads may call
:meth:`LocalSandbox.run` at once. A lane that misses a job's hard deadline is killed (with every process of
its uid range); a dead zygote takes its lanes with it (``PR_SET_PDEATHSIG``) and is restarted on the next job.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
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


@dataclasses.dataclass
class _Lane:
    """A persistent judge (+ spawner) in the zygote, serving one job at a time over its two pipes."""

    pid: int
    job_w: int
    res_r: int
    generation: int


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
        workers: Lanes, i.e. programs run at once; default two per usable CPU core (a lane spends most of
            its time waiting on pipes and process start-up, so one per core leaves the cores half idle on
            short programs). Use one per core for CPU-heavy tests with tight wall-clock timeouts.

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
        self.workers = workers or 2 * _usable_cores()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._ctl: socket.socket | None = None
        self._hello: dict[str, Any] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._owner = os.getpid()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._idle: list[_Lane] = []
        self._generation = 0

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
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": _PACKAGE_ROOT,
               "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}  # fmt: skip
        settings = json.dumps({"tmpfs_size": "1g", "limits": self.limits.to_wire()})
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "rewards.code._zygote", str(theirs.fileno()), settings],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            env=env, cwd="/", start_new_session=True,
        )  # fmt: skip
        theirs.close()
        ours.settimeout(60)
        raw = ours.recv(1 << 16)
        if not raw:
            raise RuntimeError("the sandbox fork server failed to start (see its stderr above)")
        self._hello = json.loads(raw)
        ours.settimeout(None)
        self._ctl = ours
        self._generation += 1

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
        """Lanes and leftover working directories in the zygote (for tests and monitoring)."""
        return self._ask({"op": "stats"})

    # -- running jobs ---------------------------------------------------------------------------------------

    def _new_lane(self) -> _Lane:
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            pid = int(self._ask({"op": "lane"}, [job_r, res_w])["pid"])
        except BaseException:
            os.close(job_w)
            os.close(res_r)
            raise
        finally:
            os.close(job_r)
            os.close(res_w)
        return _Lane(pid, job_w, res_r, self._generation)

    def _drop_lane(self, lane: _Lane, *, kill: bool) -> None:
        os.close(lane.job_w)  # the judge sees EOF and exits after its current job
        os.close(lane.res_r)
        if kill and lane.generation == self._generation:
            with contextlib.suppress(OSError, RuntimeError):
                self._ask({"op": "kill", "pid": lane.pid})

    def _on_lane(self, lane: _Lane, job: Job) -> tuple[dict[int, TestOutcome], str, bool]:
        """Runs one job on a lane; returns the outcomes, the job error and whether the lane is still sound."""
        outcomes: dict[int, TestOutcome] = {}
        hard = self.limits.program_timeout_s + self.limits.test_timeout_s + 10.0
        try:
            write_frame(lane.job_w, job.to_wire())
            deadline = time.monotonic() + hard
            while True:
                frame = read_frame(lane.res_r, max_bytes=1 << 24, deadline=deadline)
                if frame.get("done"):
                    return outcomes, "", True
                if frame["i"] < 0:
                    return outcomes, str(frame["status"]), False
                outcomes[int(frame["i"])] = TestOutcome(str(frame["status"]), str(frame["message"]))
        except (OSError, EOFError, TimeoutError, WireError):
            return outcomes, "", False  # a stuck or dead lane: killed, unreported tests count as timeouts

    def _run_one(self, job: Job) -> JobResult:
        with self._slots:
            with self._lock:
                if self._proc is not None and self._proc.poll() is not None:
                    self._stop_locked()  # the zygote died: its lanes died with it (PDEATHSIG)
                lane = self._idle.pop() if self._idle else None
            lane = lane or self._new_lane()
            outcomes, error, sound = self._on_lane(lane, job)
            with self._lock:
                if sound and lane.generation == self._generation:
                    self._idle.append(lane)
                    lane = None
            if lane is not None:
                self._drop_lane(lane, kill=not sound)
        filler = TestOutcome("timeout", "the program's job was killed at its hard deadline")
        return JobResult(tuple(outcomes.get(i, filler) for i in range(len(job.tests))), error=error)

    def run(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Runs the jobs, ``workers`` at a time, and returns their results in order.

        Raises:
            TypeError: If an item is not a :class:`Job`.
        """
        jobs = list(jobs)
        for job in jobs:
            if not isinstance(job, Job):
                raise TypeError(f"LocalSandbox.run expects Job objects, got {type(job).__name__}")
        if self._owner != os.getpid():  # we were forked (e.g. a data-loader worker): start our own zygote
            self._forget_inherited()
        if not jobs:
            return []
        if len(jobs) == 1:
            return [self._run_one(jobs[0])]
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, "rlenv-sandbox")
            pool = self._pool
        return list(pool.map(self._run_one, jobs))

    def _forget_inherited(self) -> None:
        """In a forked copy: drops the parent's zygote and lanes (closing only our copies of their fds)."""
        for lane in self._idle:
            for fd in (lane.job_w, lane.res_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._ctl is not None:
            self._ctl.close()
        self.__init__(self.limits, workers=self.workers)

    def _stop_locked(self) -> None:
        for lane in self._idle:
            os.close(lane.job_w)
            os.close(lane.res_r)
        self._idle.clear()
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
