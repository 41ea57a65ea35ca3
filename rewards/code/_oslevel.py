"""Linux system calls Python 3.11's ``os`` lacks (``unshare``, ``mount``, ``prctl``), through ``ctypes``.

Used only by the sandbox's trusted processes (the zygote and the per-job spawner), never by the library's own
process. Every function returns False instead of raising when the platform or privileges do not allow the
call, so the sandbox degrades to the layers it can build (see docs/sandbox.md, "what is done where").

The sandboxed child deletes this module and ``ctypes`` from ``sys.modules`` and clears this module's globals
before it loads a program (see ``_child.purge``), so a program cannot reach a ``ctypes`` handle through them.
"""

from __future__ import annotations

import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1

_LIBC: list = []


def _libc():
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def available() -> bool:
    """True on Linux, where the calls below exist."""
    return sys.platform.startswith("linux")


def unshare(flags: int) -> bool:
    """``unshare(2)``: moves this process into new namespaces; False when not permitted."""
    return available() and _libc().unshare(flags) == 0


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> bool:
    """``mount(2)``; False on failure."""
    if not available():
        return False
    args = [s.encode() if s is not None else None for s in (source, target, fstype)]
    return _libc().mount(*args, flags, data.encode() if data is not None else None) == 0


def prctl(option: int, arg: int) -> bool:
    """``prctl(2)`` with one argument; False on failure."""
    return available() and _libc().prctl(option, arg, 0, 0, 0) == 0


def private_mounts(tmpfs_size: str) -> bool:
    """In a fresh mount namespace: makes every mount private and puts fresh size-limited tmpfs over the
    world-writable directories (``/tmp``, ``/var/tmp``, ``/dev/shm``), so a sandboxed program that escaped
    the Python-level checks still cannot leave files in the host's shared temporary directories."""
    if not (unshare(CLONE_NEWNS) and mount("none", "/", None, MS_REC | MS_PRIVATE)):
        return False
    ok = True
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(path):
            ok &= mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_size},mode=1777")
    return ok


def bind_readonly(source: str, target: str) -> bool:
    """Bind-mounts ``source`` on ``target`` (an existing directory) read-only; False on failure."""
    if not mount(source, target, None, MS_BIND | MS_REC):
        return False
    if mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID):
        return True
    _libc().umount2(target.encode(), 2)  # MNT_DETACH: never leave a writable view behind
    return False


def world_traversable(path: str) -> bool:
    """True when every directory on the way to ``path`` lets any user through (``o+x``)."""
    import stat

    path = os.path.realpath(path)
    if not os.path.isdir(path):
        path = os.path.dirname(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent
