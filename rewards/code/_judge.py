"""The judge: one process per lane that runs the trusted tests and decides every verdict, job after job.

No model-written code ever runs here. For assert and HumanEval tests the judge executes the *dataset's* test
code in its own pristine interpreter (for APPS call-based tests it makes the calls and compares the returned
values itself, ``formats.call_output_matches``); every name the program defined is a :class:`RemoteObject`
whose calls are forwarded to the sandboxed child over a pipe. Arguments leave and results come back as strict
plain data (``_wire``): a result that is not an exact builtin value comes back as another remote handle, which
refuses ``==``, ``<``, ``bool()``, ``hash()`` and friends, so an always-equal object cannot satisfy an assert,
and no exception class, ``AssertionError`` rebinding, ``sys.exit``, ``atexit`` hook or monkeypatch in the
child can reach this process. For stdin/stdout tests the judge feeds stdin, caps and collects stdout, and
compares.

Each test runs under a wall-clock deadline (per test, and the program's total budget). A child that times
out, crashes or breaks the protocol is killed and, for the remaining tests, a fresh one is started, so one
slow test does not zero the others. Results stream to the library as one frame per test.

Left out: the judge cannot interrupt its *own* (dataset) test code; the zygote's hard deadline kills the
whole job if dataset code itself loops.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from rewards.code import _oslevel, _spawner
from rewards.code._stdio import run_stdio_tests
from rewards.code._wire import WireError, decode, encode, read_frame, write_frame
from rewards.code.formats import call_output_matches


class ChildTimeout(BaseException):
    """The sandboxed child missed the test's deadline (a BaseException: test code cannot swallow it)."""


class ChildDown(BaseException):
    """The sandboxed child died or broke the protocol."""


class ProgramError(Exception):
    """An exception raised inside the program whose type is not a builtin exception."""


def _program_exception(name: Any, message: Any) -> Exception:
    cls = getattr(builtins, str(name), None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(str(message))
        except Exception:
            pass
    return ProgramError(f"{name}: {message}")


_INLINE_PROGRAM_CHARS = 1 << 16  # larger programs travel in a file (see SpawnerClient.spawn)


def _file_with(data: bytes) -> int:
    """A read-write fd on an unlinked temporary file holding ``data``, positioned at its start."""
    import tempfile  # only for large programs: kept out of the images the spawners fork

    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        f.seek(0)
        return os.dup(f.fileno())  # the dup shares the file offset, at 0


class SpawnerClient:
    """The judge's end of the spawner socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.null_r, self.null_w = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_WRONLY)

    def _send(self, op: bytes, message: dict, fds: Sequence[int] = ()) -> None:
        socket.send_fds(self.sock, [op + json.dumps(message).encode()], list(fds))

    def spawn(self, spec: dict, fds: list[int], *, owned: Sequence[int] = ()) -> int:
        """Starts a child on ``fds`` (its 0, 1, 2, ...); closes ``owned`` (this judge's copies) afterwards.

        A large program (and setup code) travels in an unlinked temporary file passed as one more fd
        (``program_fd`` in the spec): a socket message is capped by the socket's send buffer (~208 KiB by
        default), and a 250 KB program made the send fail."""
        owned = list(owned)
        try:
            if len(spec.get("program", "")) + len(spec.get("setup", "")) > _INLINE_PROGRAM_CHARS:
                text = {k: spec[k] for k in ("program", "setup") if k in spec}
                fd = _file_with(json.dumps(text).encode())
                owned.append(fd)
                spec = {**{k: v for k, v in spec.items() if k not in text}, "program_fd": len(fds)}
                fds = [*fds, fd]
            self._send(b"S", spec, fds)
            return int(self.sock.recv(64))
        finally:
            for fd in owned:
                os.close(fd)

    def finish(self, pid: int, grace: float, *, reply: bool = True) -> int:
        """Ends a child (waiting up to ``grace`` s for it to exit) and cleans up after it; returns its wait
        status, or 0 without waiting for the spawner when ``reply`` is False (later requests queue behind)."""
        self._send(b"F", {"pid": pid, "grace": grace, "reply": reply})
        return int(self.sock.recv(64)) if reply else 0


class Child:
    """A running sandboxed child serving calls (assert and HumanEval tests)."""

    def __init__(self, spawner: SpawnerClient, job: dict, cpu_s: float, deadline: float) -> None:
        self.spawner, self.max_frame = spawner, job["limits"]["max_frame"]
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        spec = {"mode": "rpc", "program": job["program"], "setup": job.get("setup", ""), "cpu_s": cpu_s}
        null_r, null_w = spawner.null_r, spawner.null_w
        self.pid = spawner.spawn(spec, [null_r, null_w, null_w, req_r, rep_w], owned=[req_r, rep_w])
        self.deadline, self.alive = deadline, True
        try:
            hello = read_frame(self.rep_r, max_bytes=self.max_frame, deadline=deadline)
        except TimeoutError:
            self.close()
            raise ChildTimeout("the program did not finish loading in time") from None
        except (EOFError, WireError) as exc:
            self.close()
            raise ChildDown(f"the program crashed while loading ({exc})") from None
        self.load_error = hello.get("error")
        self.names = hello.get("names") if isinstance(hello.get("names"), dict) else {}

    def ask(self, message: dict) -> Any:
        if not self.alive:
            raise ChildDown("the program's process is gone")
        try:
            write_frame(self.req_w, message)
            reply = read_frame(self.rep_r, max_bytes=self.max_frame, deadline=self.deadline)
        except TimeoutError:
            raise ChildTimeout("time limit exceeded") from None
        except (OSError, EOFError, WireError) as exc:
            raise ChildDown(f"the program's process died or misbehaved ({exc})") from None
        return self.value(reply)

    def value(self, reply: Any) -> Any:
        if type(reply) is not dict:
            raise ChildDown("malformed reply")
        try:
            if "v" in reply:
                return decode(reply["v"])
            if "ref" in reply:
                return RemoteObject(self, int(reply["ref"]), str(reply.get("type", "object"))[:80])
            error = reply["raise"]
        except (WireError, KeyError, TypeError, ValueError) as exc:
            raise ChildDown(f"malformed reply ({exc})") from None
        raise _program_exception(*error[:2]) if type(error) is list and len(error) >= 2 else ChildDown("bad")

    def close(self) -> None:
        if self.alive:
            self.alive = False
            for fd in (self.req_w, self.rep_r):
                os.close(fd)
            self.spawner.finish(self.pid, 0.0, reply=False)  # the status does not matter here


def _arg(child: Child, value: Any) -> dict:
    def ref(obj: Any) -> int | None:  # program objects inside containers travel as references
        if type(obj) is RemoteObject:
            if obj._child is not child:
                raise ChildDown("an object from a previous run of the program")
            return obj._ref
        return None

    if type(value) is RemoteObject:
        return {"ref": ref(value)}
    try:
        return {"v": encode(value, ref=ref)}
    except WireError as exc:
        raise TypeError(f"cannot pass this argument to the sandboxed program: {exc}") from None


class RemoteObject:
    """A program object living in the sandboxed child: callable and attribute access are forwarded;
    comparison, truth, hashing and arithmetic are refused (tests must compare plain values)."""

    __slots__ = ("_child", "_ref", "_type")

    def __init__(self, child: Child, ref: int, type_name: str) -> None:
        object.__setattr__(self, "_child", child)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        child = self._child
        return child.ask(
            {
                "op": "call",
                "ref": self._ref,
                "args": [_arg(child, a) for a in args],
                "kwargs": {str(k): _arg(child, v) for k, v in kwargs.items()},
            }
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._child.ask({"op": "getattr", "ref": self._ref, "name": name})

    def __iter__(self):
        items = self._child.ask({"op": "list", "ref": self._ref})
        if type(items) is not list:
            raise TypeError(f"iterating a {self._type} from the program did not give plain values")
        return iter(items)

    def _refuse(self, *_args: Any) -> Any:
        raise TypeError(
            f"a {self._type!r} object returned by the program is not a plain value; "
            "only builtin values (numbers, strings, lists, dicts, ...) can be compared"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __hash__ = __len__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __abs__ = __neg__ = _refuse
    __contains__ = __getitem__ = __index__ = __int__ = __float__ = __setattr__ = _refuse

    def __repr__(self) -> str:
        return f"<program {self._type}>"


def _namespace(child: Child) -> dict[str, Any]:
    namespace: dict[str, Any] = {
        "__name__": "__test__",
        "__builtins__": builtins,
        "__assert_equal__": _assert_equal,
    }
    for name, item in child.names.items():
        if type(item) is not dict or not str(name).isidentifier():
            continue
        if "module" in item:
            module = str(item["module"])
            if module.split(".")[0] in sys.stdlib_module_names:
                try:
                    namespace[name] = importlib.import_module(module)
                except Exception:
                    continue
        else:
            try:
                namespace[name] = child.value(item)
            except (ChildDown, Exception):
                continue
    return namespace


def _short(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _call_target(namespace: dict, name: str) -> RemoteObject:
    """The program's function ``name``, or the method ``name`` of a fresh ``Solution()`` (LeetCode style)."""
    entry = namespace.get(name)
    if type(entry) is RemoteObject:
        return entry
    solution = namespace.get("Solution")
    if type(solution) is RemoteObject:
        method = getattr(solution(), name)
        if type(method) is RemoteObject:
            return method
    raise NameError(f"the program defines neither {name!r} nor a class Solution with that method")


def _call_test(job: dict, test: tuple[list, Any], namespace: dict) -> None:
    """One APPS call-based test: call, then compare here (plain values only, APPS leniency)."""
    args, expected = test
    got = _call_target(namespace, job["entry_point"])(*args)
    if type(got) is RemoteObject:
        raise TypeError(f"the program returned a {got._type!r} object, not a plain value")
    if not call_output_matches(got, expected):
        raise AssertionError(f"got {_short(repr(got), 150)}, expected {_short(repr(expected), 150)}")


def _label(job: dict, i: int) -> str:
    if job["kind"] == "asserts":
        return _short(job["tests"][i], 200)
    if job["kind"] == "call":
        return f"{job['entry_point']}(*{_short(job['tests'][i], 120)})"
    return f"check({job['entry_point']})"


def _run_one(test: Any, job: dict, i: int, namespace: dict) -> tuple[str, str]:
    """Runs test ``i`` (a code object, or the decoded arguments and expected value of a call)."""
    label = _label(job, i)
    try:
        if job["kind"] == "asserts":
            exec(test, namespace)
        elif job["kind"] == "call":
            _call_test(job, test, namespace)
        else:
            entry = namespace.get(job["entry_point"])
            if type(entry) is not RemoteObject:
                return "failed", f"the program does not define {job['entry_point']!r}"
            exec(test, namespace)
            namespace["check"](entry)
    except AssertionError as exc:
        return "failed", f"{label} failed" + (f": {_short(str(exc))}" if str(exc) else "")
    except ChildTimeout:
        return "timeout", f"{label}: time limit exceeded"
    except ChildDown as exc:
        return "crashed", f"{label}: {exc}"
    except Exception as exc:
        return "error", f"{label}: {type(exc).__name__}: {_short(str(exc))}"
    return "passed", ""


def _assert_equal(left: Any, right: Any) -> None:
    if not left == right:
        raise AssertionError(f"got {_short(repr(left), 150)}, expected {_short(repr(right), 150)}")


class _ExplainEquality(ast.NodeTransformer):
    """Rewrites the dataset's ``assert a == b`` into ``__assert_equal__(a, b)`` so a failure says what the
    program returned (the comparison itself is the same ``==``, run here, on plain values)."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        test = node.test
        if (
            node.msg is None
            and isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
        ):
            call = ast.Call(ast.Name("__assert_equal__", ast.Load()), [test.left, test.comparators[0]], [])
            return ast.copy_location(ast.Expr(call), node)
        return node


_COMPILED: dict[tuple[str, int], Any] = {}  # GRPO groups run the same tests for every completion


def _compile_test(source: str, i: int) -> Any:
    code = _COMPILED.get((source, i))
    if code is None:
        tree = ast.fix_missing_locations(_ExplainEquality().visit(ast.parse(source, f"<test {i}>")))
        code = compile(tree, f"<test {i}>", "exec")
        if len(source) <= 1 << 16:  # bounded: at most 1024 entries of at most 64 KiB of source
            if len(_COMPILED) >= 1024:
                _COMPILED.pop(next(iter(_COMPILED)))  # oldest first
            _COMPILED[(source, i)] = code
    return code


def _prepare(job: dict) -> list[Any]:
    """Each test ready to run: compiled assert / check code, or (arguments, expected) of a call."""
    if job["kind"] != "call":
        return [_compile_test(t, i) for i, t in enumerate(job["tests"])]
    tests = [(json.loads(t), json.loads(e)) for t, e in zip(job["tests"], job["expected"], strict=True)]
    if any(type(args) is not list for args, _ in tests):
        raise ValueError("each input of a call-based test must be a list of positional arguments")
    return tests


def run_call_tests(job: dict, spawner: SpawnerClient, report) -> None:
    """Runs assert / HumanEval / call-based tests, restarting the child after a timeout or crash."""
    limits = job["limits"]
    try:
        prepared = _prepare(job)
    except (SyntaxError, ValueError) as exc:  # JSONDecodeError is a ValueError
        report(-1, "bad_tests", f"the reference tests do not compile: {exc}")
        return
    budget_end = time.monotonic() + limits["program_timeout_s"]
    child, namespace = None, {}
    for i, test in enumerate(prepared):
        now = time.monotonic()
        if now >= budget_end:
            report(i, "not_run", "the program's time budget was used up by earlier tests")
            continue
        deadline = min(now + limits["test_timeout_s"], budget_end)
        try:
            if child is None:
                child = Child(spawner, job, budget_end - now, deadline)
                namespace = _namespace(child)
            child.deadline = deadline
            status, message = _run_one(test, job, i, namespace)
        except ChildTimeout:
            status, message = "timeout", "the program did not finish loading in time"
        except ChildDown as exc:
            status, message = "crashed", str(exc)
        if child is not None and (status in ("timeout", "crashed") or not child.alive):
            child.close()
            child = None
        if child is not None and child.load_error and status != "passed":
            message += f" (loading the program raised {': '.join(map(str, child.load_error))})"[:600]
        report(i, status, message)
    if child is not None:
        child.close()


def main(job_fd: int, result_fd: int, header: dict) -> None:
    """Entry point of a forked judge (one lane): starts its spawner, then reads jobs and reports verdicts
    until the library closes the job pipe; never returns."""
    code = 0
    try:
        os.setsid()  # the zygote kills the judge and its spawner together with killpg
        zygote = os.getppid()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            for fd in (job_fd, result_fd):
                os.close(fd)
            _spawner.main(theirs, header["spawner"])  # never returns
        theirs.close()
        if header["judge_uid"] is not None:
            os.setgroups([])
            os.setresgid(header["judge_uid"], header["judge_uid"], header["judge_uid"])
            os.setresuid(header["judge_uid"], header["judge_uid"], header["judge_uid"])
        # Die with the zygote (set after the uid change, which clears it); the spawner and children follow.
        _oslevel.prctl(_oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:
            return

        def report(i: int, status: str, message: str) -> None:
            write_frame(result_fd, {"i": i, "status": status, "message": message[:2000]})

        client = SpawnerClient(ours)
        while True:  # one job at a time until the library closes the lane
            try:
                job = read_frame(job_fd, max_bytes=1 << 30)
            except EOFError:
                break
            job["limits"] = header["limits"]
            if job["kind"] == "stdio":
                run_stdio_tests(job, client, report)
            else:
                run_call_tests(job, client, report)
            write_frame(result_fd, {"done": True})
        ours.close()
        os.waitpid(pid, 0)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)
