"""The per-lane spawner: forks sandboxed children for the judge and cleans up after each one.

Why a separate process: the judge holds the tests (and, for stdin/stdout problems, the expected outputs). A
child forked from the judge would inherit a copy of that memory. The spawner is forked from the judge *before*
the judge reads any job, so every sandboxed child starts from memory that never held a test. Each child gets a
fresh uid from the lane's range (per-child ``RLIMIT_NPROC`` accounting, and kill-by-uid reaches only it).

Protocol (``SOCK_SEQPACKET`` socketpair with the judge, file descriptors passed with ``SCM_RIGHTS``):
``S`` + the child's spec as JSON, + fds -> the pid as decimal digits; ``F`` + ``{"pid": n, "grace": s,
"reply": bool}`` -> waits up to ``grace`` seconds for the child to exit by itself, kills and reaps it, then
kills everything the job's user still owns, removes the child's working directory and answers with the wait
status in digits (nothing when ``reply`` is false: the judge of an assert job does not need it, and its next
request simply queues behind). On EOF it cleans up and exits.

Killing is by user, not only by process group: the program's process is killed and reaped; then, if the
spawner has any child besides the standby (it is a child subreaper: everything the program started that
still exists, even after ``setsid``, has been reparented to it or descends from such a child; read from
``/proc/<pid>/task/<pid>/children``, and assumed when unreadable), it switches to the child's uid and calls
``kill(-1, SIGKILL)`` three times, which reaches every process of that uid, and reaps (no zombies). In the
normal case (the program started nothing) that costs one small ``/proc`` read instead of two uid switches
and three scans of every process on the machine.

Per-program cost matters here (every page this process touches after a fork is a copy-on-write fault): the
per-child work that does not depend on the program (environment, signal dispositions, purging trusted
modules, reading hard limits, resolving the lane directory) is done once, replies are plain digits, and the
receive buffer is allocated once.
"""

from __future__ import annotations

import _socket
import array
import contextlib
import json
import mmap
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback

from rewards.code import _child, _oslevel
from rewards.code._wire import WireError

_MAX_MSG = 1 << 24
_FD_SIZE = array.array("i").itemsize


def _kill_all_of(uid: int) -> None:
    # One kill(-1) reaches every process the caller may signal (a fork racing with it fails: its parent has a
    # fatal signal pending); two more are cheap insurance. Linux answers ESRCH only when no other process
    # exists at all (it counts the ones it may not signal too), so the result says nothing about the uid.
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


def other_children(children_file: str, expected: int | None) -> bool:
    """True when the calling thread has a child other than ``expected`` (or when ``children_file``,
    ``/proc/<pid>/task/<tid>/children``, cannot be read: callers then clean up as if it had)."""
    try:
        fd = os.open(children_file, os.O_RDONLY)
        try:
            data = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
    except OSError:
        return True
    return any(int(pid) != expected for pid in data.split())


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


def _receive_buffer() -> mmap.mmap:
    """The spawner's receive buffer: allocated once (``socket.recv_fds`` maps and unmaps a fresh 16 MiB buffer
    per message), as an anonymous mapping that forked children do not get (``MADV_DONTFORK``). A buffer on
    the heap would add its resident pages to every fork and every child's exit: a zero-filled 16 MiB
    ``bytearray`` is 4,096 page-table entries to copy and unmap per program (``perf``: page-table copying
    and unmapping took 22% of the sandbox's CPU time with it, 15% without)."""
    buffer = mmap.mmap(-1, _MAX_MSG, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(AttributeError, OSError):  # not on every platform: then children share it
        buffer.madvise(mmap.MADV_DONTFORK)
    return buffer


def _recv(sock: socket.socket, buffer: mmap.mmap) -> tuple[bytes, list[int]]:
    """One message and its passed fds, received into ``buffer``."""
    while True:
        try:
            size, ancdata, _flags, _addr = sock.recvmsg_into([buffer], socket.CMSG_SPACE(8 * _FD_SIZE))
            break
        except InterruptedError:
            continue
        except OSError:
            return b"", []
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    view = memoryview(buffer)[:size]
    raw = bytes(view)
    view[:] = bytes(size)  # a standby child forked later must not find this request in the buffer
    return raw, list(fds)


class Spawner:
    """State of one spawner process (one lane)."""

    def __init__(self, sock: socket.socket, job: dict) -> None:
        self.sock = sock
        self.job = job
        self.children: dict[int, tuple[str, int | None]] = {}  # pid -> (working directory, uid)
        self.count = 0
        self.jobdir = os.path.realpath(job["jobdir"])  # children get real paths (their guard compares them)
        self.hard = _child.hard_limits()
        umask = os.umask(0)
        os.umask(umask)
        self.chmod = bool(umask & 0o700)  # mkdir(0o700) gives exactly 0o700 unless the umask hides owner bits
        self.buffer = _receive_buffer()
        self.children_file = f"/proc/{os.getpid()}/task/{os.getpid()}/children"  # single-threaded
        self.clean_modules = _child.purge_modules()
        self.standby: tuple[int, int | None, _socket.socket] | None = None

    def _workdir(self, pid: int, uid: int | None) -> str:
        """A fresh working directory, mode 0700, owned by the child's uid."""
        workdir = f"{self.jobdir}/run-{pid}"
        try:
            os.mkdir(workdir, 0o700)
        except FileExistsError:  # a leftover that could not be removed: pick a random name instead
            workdir = tempfile.mkdtemp(prefix="run-", dir=self.jobdir)
        if uid is not None:
            os.chown(workdir, uid, uid)
        if self.chmod:
            os.chmod(workdir, 0o700)
        return workdir

    def fork_standby(self) -> None:
        """Forks the next child ahead of time (``_child.standby``): its program-independent set-up then
        overlaps the current program's run. Called with no request in this process's frames or buffer."""
        uid = None
        if self.job["uid_start"] is not None:  # a fresh uid per child: RLIMIT_NPROC, kill(-1) are per child
            uid = self.job["uid_start"] + self.count % self.job["uid_span"]
        self.count += 1
        spec = {**self.job["child"], "uid": uid, "gid": uid}
        # The C socket type: the Python wrapper's constructor costs a getsockname per end (and page faults).
        ours, theirs = _socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if len(sys.modules) != self.clean_modules:  # the child's sys.modules must never list trusted code
            self.clean_modules = _child.purge_modules()
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            ours.close()
            _child.standby(theirs, spec, self.hard)  # never returns
        theirs.close()
        self.standby = (pid, uid, ours)

    def spawn(self, raw: bytes, fds: list[int]) -> int:
        """Hands the judge's child spec (JSON ``raw``) and the child's fds to the standby child."""
        if self.standby is None:
            self.fork_standby()
        pid, uid, ours = self.standby
        self.standby = None
        try:
            workdir = self._workdir(pid, uid)
            self.children[pid] = (workdir, uid)
            socket.send_fds(ours, [workdir.encode() + b"\0" + raw], fds)
        except OSError:  # the standby died (it is reaped by finish); the judge sees its channel close
            self.children.setdefault(pid, (None, uid))
        finally:
            ours.close()
            for fd in fds:
                os.close(fd)
        return pid

    def finish(self, pid: int, grace: float) -> int:
        if pid not in self.children:
            return 0
        workdir, uid = self.children.pop(pid)
        status = _reap(pid, grace)
        if status == -1:  # still running: kill it (it leads its own group: setsid) and reap it
            try:  # noqa: SIM105 - no context-manager objects per child (each touched page faults)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                status = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                status = 0
        # Then everything else it started. This process is a subreaper: once the program is reaped, whatever
        # it started that still exists (running or zombie) is a child of ours, or a descendant of one. Only
        # the standby child is expected; anything else -> kill everything its uid owns (or, without unique
        # uids, its process group) and reap.
        if uid is None or other_children(self.children_file, self.standby and self.standby[0]):
            kill_user(uid, pgid=pid if uid is None else None, in_place=True)
            _reap_orphans()
        if workdir is not None:
            try:
                os.rmdir(workdir)  # the common case: the program left nothing behind
            except OSError:
                shutil.rmtree(workdir, ignore_errors=True)
        return status

    def close(self) -> None:
        if self.standby is not None:
            pid, uid, ours = self.standby
            self.standby = None
            ours.close()  # EOF: it exits by itself; finish makes sure
            self.children[pid] = (None, uid)
        for pid in list(self.children):
            self.finish(pid, 0.0)

    def loop(self) -> None:
        while self.serve_one():
            if self.standby is None:
                self.fork_standby()  # from this frame: the request's objects are gone

    def serve_one(self) -> bool:
        """Answers one request; False on EOF."""
        raw, fds = _recv(self.sock, self.buffer)
        if not raw:
            return False
        op, body = raw[:1], raw[1:]
        if op == b"S":  # the spec is the standby child's to parse
            reply = self.spawn(body, fds)
        elif op == b"F":
            request = json.loads(body)
            reply = self.finish(request["pid"], float(request["grace"]))
            if not request.get("reply", True):
                return True
        else:
            raise WireError(f"unknown spawner request {raw[:40]!r}")
        self.sock.send(b"%d" % reply)  # a pid or a wait status: plain digits, no JSON encoder per reply
        return True


def main(sock: socket.socket, job: dict) -> None:
    """Entry point of the forked spawner; never returns."""
    code = 0
    try:
        _oslevel.prctl(_oslevel.PR_SET_CHILD_SUBREAPER, 1)
        _oslevel.prctl(_oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with its judge
        _child.prepare_spawner()
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
