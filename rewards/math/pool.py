"""A pool of killable worker processes that run the sympy check under a hard per-sample time budget.

Key idea: each worker is a plain ``python -c`` subprocess (not ``multiprocessing``) speaking JSON lines over
its stdin/stdout, so the pool works from any thread, from daemonic ``multiprocessing`` workers (which may not
have ``multiprocessing`` children) and after ``fork``. The parent waits for a reply with ``select``; a worker
over budget is killed (SIGKILL) and replaced on next use, and the sample is reported as ``timeout``. No
``signal.alarm`` anywhere, so calls from non-main threads keep their budget.

Workers start lazily (the first undecided sample pays about a second for ``import sympy``), are reused, run
in their own session (a Ctrl-C in the trainer does not kill them mid-reply), cap their address space, exit on
EOF when the parent dies, and are stopped at interpreter exit. A forked child starts with an empty pool of its
own.

Left out on purpose: no work stealing or batching per message; one sample per round trip keeps the budget
exact per sample.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from rewards.math.verify import Verdict

__all__ = ["WorkerPool", "shared_pool"]

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from rewards.math._worker import main; main()"
_STARTUP_TIMEOUT_S = 120.0


class _Timeout(Exception):
    pass


class _Worker:
    """One subprocess and its line-buffered reply stream."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, _ROOT, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self.buffer = b""
        self.ready = False

    def send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float) -> Any:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                raise _Timeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("worker exited")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def ensure_ready(self) -> None:
        if not self.ready:
            if self.recv(_STARTUP_TIMEOUT_S) != "ready":
                raise EOFError("worker failed to start")
            self.ready = True

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


class WorkerPool:
    """Up to ``size`` sympy workers shared by every thread of this process.

    Example:
        >>> pool = WorkerPool(size=1)
        >>> pool.check("\\\\sqrt{8}", "2\\\\sqrt{2}", timeout=30.0).value
        True
        >>> pool.close()
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"WorkerPool size must be >= 1, got {size}")
        self.size = size
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live = 0
        self._pid = os.getpid()
        self.timeouts = 0
        """How many samples went over budget (their workers were killed)."""

    def _acquire(self) -> _Worker:
        with self._cond:
            self._reset_after_fork()
            while not self._idle and self._live >= self.size:
                self._cond.wait()
            while self._idle:
                worker = self._idle.pop()
                if worker.proc.poll() is None:
                    return worker
                worker.kill()  # died while idle (killed from outside, OOM): replace it
                self._live -= 1
            self._live += 1
        try:
            return _Worker()
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is None:
                self._live -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def _reset_after_fork(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's workers are not ours to use
            self._idle, self._live, self._pid = [], 0, os.getpid()

    def check(self, gold: str | None, pred: str | None, *, timeout: float, rel_tol: float = 1e-9) -> Verdict:
        """Runs the full (sympy) check of one pair in a worker, within ``timeout`` seconds.

        Returns:
            The verdict; reason ``timeout`` (value False) when over budget, ``worker_died`` when the worker
            crashed (for example out of memory).
        """
        try:
            worker: _Worker | None = self._acquire()
        except OSError:  # no worker could be started (file descriptors, memory): this sample is unjudged
            return Verdict(False, "worker_died")
        assert worker is not None
        try:
            worker.ensure_ready()
            worker.send([gold, pred, rel_tol])
            value, reason = worker.recv(timeout)
            return Verdict(value, reason)
        except _Timeout:
            self.timeouts += 1
            worker = self._replace(worker)
            return Verdict(False, "timeout")
        except (EOFError, OSError, ValueError):
            worker = self._replace(worker)
            return Verdict(False, "worker_died")
        except BaseException:  # interrupted mid-sample: its reply may still come, so the worker is not reused
            worker.kill()
            worker = None
            raise
        finally:
            self._release(worker)

    @staticmethod
    def _replace(worker: _Worker) -> _Worker | None:
        """Kills ``worker`` and starts its successor now, so it imports sympy while the caller moves on."""
        worker.kill()
        try:
            return _Worker()
        except OSError:
            return None

    def close(self) -> None:
        """Stops every idle worker (busy ones are stopped by their caller's timeout or at exit)."""
        with self._cond:
            self._reset_after_fork()
            idle, self._idle = self._idle, []
            self._live -= len(idle)
        for worker in idle:
            worker.kill()


_SHARED: dict[int, WorkerPool] = {}
_SHARED_LOCK = threading.Lock()


def default_size() -> int:
    """Two workers, or one per core when fewer: the symbolic path is rare, trainers need their cores."""
    return max(1, min(2, os.cpu_count() or 1))


def shared_pool(size: int | None = None) -> WorkerPool:
    """The process-wide pool of ``size`` workers (created on first use)."""
    size = size or default_size()
    with _SHARED_LOCK:
        pool = _SHARED.get(size)
        if pool is None or pool._pid != os.getpid():
            pool = _SHARED[size] = WorkerPool(size)
        return pool


def _close_all() -> None:
    for pool in list(_SHARED.values()):
        if pool._pid == os.getpid():
            pool.close()


def _after_fork_in_child() -> None:
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()
    _SHARED.clear()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
