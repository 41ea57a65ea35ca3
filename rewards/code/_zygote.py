"""The warm fork server ("zygote") of the local sandbox.

Started once per :class:`rewards.code.LocalSandbox` as ``python -S -m rewards.code._zygote`` (a separate,
small, single-threaded interpreter: the library's process, which may run trainer threads, is never forked).
At start-up it imports the judge, the child harness and the stdlib modules programs commonly use, and then:

- moves itself into a new network namespace (no interface is up, not even loopback: no network at all) and a
  new mount namespace with private, size-limited tmpfs over ``/tmp``, ``/var/tmp`` and ``/dev/shm``, when the
  kernel and privileges allow (root or CAP_SYS_ADMIN on Linux); it reports what it managed in its hello;
- bind-mounts, read-only, any part of the Python installation the sandbox uids could not traverse (a pyenv
  under ``/root``), so children keep importing after they drop root;
- becomes a child subreaper, and freezes its heap for the garbage collector (less copy-on-write in children).

``{"op": "lane"}`` plus two pipe ends (jobs in, results out) forks a persistent judge (``_judge.main``) with
its own range of 65536 never-shared sandbox uids. The zygote never sees a program or a test: those travel on
the lane's pipes straight to the judge. ``{"op": "kill", "pid"}`` kills a stuck lane and every process of
its uid range; a reaped lane's directory is removed. EOF on the control socket shuts everything down.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import random
import select
import shutil
import signal
import site
import socket
import sys
import tempfile
import time

from rewards.code import _child, _judge, _oslevel

# Warm imports: programs importing these pay nothing (the modules are inherited through fork).
_WARM = (
    "bisect",
    "collections",
    "copy",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "heapq",
    "itertools",
    "math",
    "operator",
    "re",
    "statistics",
    "string",
    "typing",
    "random",
    "json",
    "array",
    "enum",
    "textwrap",
    "unicodedata",
    "hashlib",
    "numbers",
    "cmath",
    "dataclasses",
    "contextlib",
    "struct",
    "traceback",
)

# Compiled at start-up but not imported (see _child.PrecompiledFinder): importing them would add at-fork work
# to every child.
_PRECOMPILED = ("threading", "queue")

UID_SPAN = 1 << 16  # sandbox uids per lane: a fresh one per child, reused only after 65536 children
_EXTRA_READ_ROOTS = ("/usr/share/zoneinfo", "/etc/localtime", "/usr/lib/locale")


def _read_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_EXTRA_READ_ROOTS}
    roots.update(p for p in site.getsitepackages() if os.path.isdir(p))
    return sorted(os.path.realpath(r) for r in roots)


def _isolate(tmpfs_size: str) -> dict[str, bool]:
    root = os.geteuid() == 0
    return {
        "root": root,
        "network_namespace": _oslevel.unshare(_oslevel.CLONE_NEWNET),
        "private_tmp": _oslevel.private_mounts(tmpfs_size),
        "subreaper": _oslevel.prctl(_oslevel.PR_SET_CHILD_SUBREAPER, 1),
        "unique_uids": root,
    }


class Zygote:
    """State of the fork server: running jobs and their deadlines."""

    def __init__(self, ctl: socket.socket, settings: dict) -> None:
        self.ctl = ctl
        self.isolation = _isolate(settings.get("tmpfs_size", "512m"))
        self.base = tempfile.mkdtemp(prefix="rlenv-sandbox-")
        os.chmod(self.base, 0o711)
        roots, moved = self._reachable_roots(_read_roots())
        root = self.isolation["root"] and moved is not None
        self.isolation["unique_uids"] = root
        self.uid_base = random.SystemRandom().randrange(1 << 24, 1 << 29) if root else None
        sys_path = [_moved(os.path.realpath(p), moved or {}) for p in sys.path if p]
        _remap_imports(moved or {})
        _install_precompiled(moved or {})
        self.child_common = {
            "read_roots": roots,
            "sys_path": [p for p in sys_path if any(_inside(p, r) for r in roots)],
        }
        self.limits = settings["limits"]
        self.limits_for_child = {k: self.limits[k] for k in ("memory_bytes", "file_bytes", "max_processes")}
        self.limits_for_child["max_frame"] = self.limits["max_frame"]
        self.counter = 0
        self.lanes: dict[int, tuple[int | None, str]] = {}  # judge pid -> (first uid, lane directory)

    def _reachable_roots(self, roots: list[str]) -> tuple[list[str], dict[str, str] | None]:
        """Makes the Python installation readable by the sandbox uids: a directory they cannot traverse
        (e.g. a pyenv under ``/root``) is bind-mounted read-only inside the zygote's private ``/tmp``.
        Returns the read roots and the {original: mount point} map, or None when that is impossible (the
        children then keep the zygote's uid)."""
        moved: dict[str, str] = {}
        mounts = ""  # never removed: it lives in the private tmpfs, which vanishes with the namespace
        for i, root in enumerate(roots):
            if not os.path.exists(root) or _oslevel.world_traversable(root):
                continue
            if not os.path.isdir(root):  # a file the sandbox could not read anyway
                continue
            if not (self.isolation["private_tmp"] and os.path.isdir(root)):
                return roots, None
            mounts = mounts or tempfile.mkdtemp(prefix="rlenv-python-")
            os.chmod(mounts, 0o755)
            target = os.path.join(mounts, str(i))
            os.mkdir(target, 0o755)
            if not _oslevel.bind_readonly(root, target):
                return roots, None
            moved[root] = target
        return sorted({*roots, *moved.values()}), moved

    def start_lane(self, fds: list[int]) -> dict:
        self.counter += 1
        uid_start = None if self.uid_base is None else self.uid_base + self.counter * UID_SPAN
        lanedir = os.path.join(self.base, f"lane-{self.counter}")
        os.mkdir(lanedir, 0o711)
        child = {**self.child_common, **self.limits_for_child}
        header = {
            "judge_uid": self.uid_base,
            "limits": self.limits,
            "spawner": {"uid_start": uid_start, "uid_span": UID_SPAN, "jobdir": lanedir, "child": child},
        }
        pid = os.fork()
        if pid == 0:
            self.ctl.close()
            _judge.main(fds[0], fds[1], header)  # never returns
        for fd in fds:
            os.close(fd)
        self.lanes[pid] = (uid_start, lanedir)
        return {"pid": pid}

    def kill_lane(self, pid: int) -> None:
        """Kills a lane (its judge and spawner share a process group) and every process of its uid range."""
        if pid not in self.lanes:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if self.lanes[pid][0] is not None:
            _kill_uid_range(self.lanes[pid][0], self.lanes[pid][0] + UID_SPAN)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            lane = self.lanes.pop(pid, None)
            if lane is not None:
                if status != 0 and lane[0] is not None:  # after a clean exit the spawner swept every child
                    _kill_uid_range(lane[0], lane[0] + UID_SPAN)
                shutil.rmtree(lane[1], ignore_errors=True)

    def answer(self, raw: bytes, fds: list[int]) -> None:
        request = json.loads(raw)
        if request["op"] == "lane":
            reply = self.start_lane(fds)
        elif request["op"] == "kill":
            self.kill_lane(int(request["pid"]))
            reply = {"ok": True}
        elif request["op"] == "stats":
            workdirs = [
                e for lane in os.listdir(self.base) for e in os.listdir(os.path.join(self.base, lane))
            ]
            uids = [self.uid_base, self.uid_base + (self.counter + 1) * UID_SPAN] if self.uid_base else None
            reply = {
                "lanes": len(self.lanes),
                "workdirs": workdirs,
                "uids": uids,
                "isolation": self.isolation,
            }
        else:
            reply = {"error": f"unknown op {request['op']!r}"}
        self.ctl.send(json.dumps(reply).encode())

    def loop(self) -> None:
        poller = select.poll()
        poller.register(self.ctl, select.POLLIN)
        while True:
            if poller.poll(500):
                raw, fds, _flags, _addr = socket.recv_fds(self.ctl, 1 << 20, 4)
                if not raw:
                    return
                self.reap()
                self.answer(raw, fds)
            self.reap()

    def shutdown(self) -> None:
        for pid in list(self.lanes):
            self.kill_lane(pid)
        end = time.monotonic() + 5
        while self.lanes and time.monotonic() < end:
            self.reap()
            time.sleep(0.005)
        shutil.rmtree(self.base, ignore_errors=True)


def _kill_uid_range(lo: int, hi: int) -> None:
    """SIGKILLs every process whose real uid is in [lo, hi) (a dead lane's children), found through /proc."""
    for _ in range(3):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid = int(f.read().split("\nUid:", 1)[1].split()[0])
            except (OSError, IndexError, ValueError):
                continue
            if lo <= uid < hi:
                found = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry), signal.SIGKILL)
        if not found:
            return


def _remap_imports(moved: dict[str, str]) -> None:
    """Points ``sys.path`` and every imported package's ``__path__`` at the read-only mounts (once, here,
    instead of in every child), so the lanes and children import not yet imported modules (``encodings.idna``,
    ``json.tool``...) from where the sandbox uids can read them: the same files, read-only."""
    if not moved:
        return
    sys.path[:] = [_moved(os.path.realpath(p), moved) if p else p for p in sys.path]
    for module in list(sys.modules.values()):
        path = getattr(module, "__path__", None)
        if isinstance(path, list):
            path[:] = [_moved(entry, moved) if isinstance(entry, str) else entry for entry in path]
    sys.path_importer_cache.clear()


def _install_precompiled(moved: dict[str, str]) -> None:
    """Compiles the ``_PRECOMPILED`` modules from source and serves them to imports from memory."""
    codes = {}
    for name in _PRECOMPILED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or name in sys.modules:
            continue
        origin = _moved(spec.origin, moved)
        codes[name] = (origin, compile(spec.loader.get_source(name), origin, "exec"))
    sys.meta_path.insert(0, _child.PrecompiledFinder(codes))


def _moved(path: str, moved: dict[str, str]) -> str:
    for source, target in moved.items():
        if _inside(path, source):
            return target + path[len(source) :]
    return path


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def main() -> None:
    """Runs the fork server on the control socket whose fd is ``argv[1]``; ``argv[2]`` is JSON settings."""
    ctl = socket.socket(fileno=int(sys.argv[1]))
    for name in _WARM:
        importlib.import_module(name)
    # Started with -S (no .pth processing: smaller, faster to fork); programs still import site-packages.
    sys.path.extend(p for p in site.getsitepackages() if os.path.isdir(p) and p not in sys.path)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the library's Ctrl-C is the library's business
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean up the job directories on SIGTERM
    zygote = Zygote(ctl, json.loads(sys.argv[2]))
    gc.collect()
    gc.freeze()  # forked children's collections skip the inherited objects: fewer copy-on-write page faults
    ctl.send(json.dumps({"pid": os.getpid(), "isolation": zygote.isolation, "base": zygote.base}).encode())
    try:
        zygote.loop()
    finally:
        zygote.shutdown()


if __name__ == "__main__":
    main()
