"""The per-lane spawner: forks sandboxed children for the judge and cleans up after each one.

Why a separate process: the judge holds the tests (and, for stdin/stdout problems, the expected outputs). A
child forked from the judge would inherit a copy of that memory. The spawner is forked from the judge *before*
the judge reads any job, so every sandboxed child starts from memory that never held a test. Each child gets a
fresh uid from the lane's range (per-child ``RLIMIT_NPROC`` accounting, and kill-by-uid reaches only it).

Protocol (``SOCK_SEQPACKET`` socketpair with the judge, file descriptors passed with ``SCM_RIGHTS``):
``{"op": "spawn", ...}`` + fds -> ``{"pid": n}``; ``{"op": "finish", "pid": n, "grace": s}`` -> waits up to
``grace`` seconds for the child to exit by itself, then kills everything the job's user owns, reaps,
removes the child's working directory and answers ``{"status": wait_status}``. On EOF it cleans up and exits.

Killing is by user, not only by process group: the spawner switches to the child's uid and calls
``kill(-1, SIGKILL)`` (three times), which also reaches descendants that called ``setsid`` to
leave the group. The spawner is a child subreaper, so such orphans are reparented to it and reaped
(no zombies).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import tempfile
import time
import traceback

from rewards.code import _child, _oslevel
from rewards.code._wire import WireError

_MAX_MSG = 1 << 24


def _kill_all_of(uid: int) -> None:
    # One kill(-1) reaches every process the caller may signal (a fork racing with it fails: its parent has a
    # fatal signal pending); two more are cheap insurance. Zombies count too, so no loop until ESRCH.
    for _ in range(3):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return


def kill_user(uid: int | None, pgid: int | None = None, *, in_place: bool = False) -> None:
    """SIGKILLs group ``pgid`` (if given) and every process of ``uid`` (the sandbox user of one job).

    ``in_place`` (the per-job spawner): switch this process's real and effective uid to ``uid`` (saved uid
    stays root, to switch back), so ``kill(-1)`` reaches exactly that user's processes, without a fork. Both
    must change: with real uid 0, ``kill(-1)`` would reach every root process. Otherwise (the zygote, shared
    by all jobs, which must never be signalable by a job) a forked helper does it.
    """
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if uid is None:
        return
    if in_place:
        os.setresuid(uid, uid, 0)
        try:
            _kill_all_of(uid)
        finally:
            os.setresuid(0, 0, 0)
        return
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setresuid(uid, uid, uid)
            _kill_all_of(uid)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _reap(pid: int, grace: float) -> int:
    """Waits for ``pid`` up to ``grace`` seconds (polling); returns its wait status or -1 if still running."""
    end = time.monotonic() + grace
    delay = 0.0005
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= end:
            return -1
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Spawner:
    """State of one spawner process (one job)."""

    def __init__(self, sock: socket.socket, job: dict) -> None:
        self.sock = sock
        self.job = job
        self.children: dict[int, tuple[str, int | None]] = {}  # pid -> (working directory, uid)
        self.count = 0

    def spawn(self, request: dict, fds: list[int]) -> dict:
        workdir = tempfile.mkdtemp(prefix="run-", dir=self.job["jobdir"])
        uid = None
        if (
            self.job["uid_start"] is not None
        ):  # a fresh uid per child: RLIMIT_NPROC and kill(-1) are per child
            uid = self.job["uid_start"] + self.count % self.job["uid_span"]
            self.count += 1
            os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)
        spec = {**self.job["child"], **request, "workdir": workdir, "uid": uid, "gid": uid}
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            _child.enter(spec, fds)  # never returns
        for fd in fds:
            os.close(fd)
        self.children[pid] = (workdir, uid)
        return {"pid": pid}

    def finish(self, pid: int, grace: float) -> dict:
        if pid not in self.children:
            return {"status": 0}
        workdir, uid = self.children.pop(pid)
        status = _reap(pid, grace)
        kill_user(uid, pgid=pid, in_place=True)
        if status == -1:  # it was SIGKILLed just now: a blocking wait is short
            try:
                status = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                status = 0
        _reap_orphans()
        shutil.rmtree(workdir, ignore_errors=True)
        return {"status": status}

    def close(self) -> None:
        for pid in list(self.children):
            self.finish(pid, 0.0)

    def loop(self) -> None:
        while True:
            try:
                raw, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX_MSG, 8)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raw, fds = b"", []
            if not raw:
                return
            request = json.loads(raw)
            if request["op"] == "spawn":
                reply = self.spawn(request["spec"], fds)
            elif request["op"] == "finish":
                reply = self.finish(request["pid"], float(request["grace"]))
            else:
                raise WireError(f"unknown spawner op {request['op']!r}")
            self.sock.send(json.dumps(reply).encode())


def main(sock: socket.socket, job: dict) -> None:
    """Entry point of the forked spawner; never returns."""
    code = 0
    try:
        _oslevel.prctl(_oslevel.PR_SET_CHILD_SUBREAPER, 1)
        _oslevel.prctl(_oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with its judge
        spawner = Spawner(sock, job)
        try:
            spawner.loop()
        finally:
            spawner.close()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)
