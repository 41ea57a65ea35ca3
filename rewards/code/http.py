"""A sandbox backend that runs programs on a SandboxFusion-compatible HTTP service.

SandboxFusion (bytedance/SandboxFusion) exposes ``POST /run_code`` taking ``{"code", "language", "stdin",
"run_timeout", "memory_limit_MB"}`` and answering ``{"status", "message", "run_result": {"status",
"return_code", "stdout", "stderr", ...}}``. One request per test (stdlib ``urllib``, a thread pool for
parallelism, no retries on a program's failure, one retry on a transport error).

Verdicts: stdin/stdout tests are compared here, in the library (``outputs_match``), so the service only has
to run the program (as ``__main__``); so are call-based tests (the service prints the returned value as JSON
after a per-request token; the expected value never leaves the library). Assert and HumanEval tests run
*inside* the service, in the same process as the program; the verdict is "exited 0 and the stdout ends with a
per-request random token, on its own line, printed after the tests". For these three formats the script sent
runs the program as the local sandbox does: with ``exec`` in a namespace named ``__sandbox__`` (its ``if
__name__ == "__main__":`` block does not run) and its stdout (fd 1) on ``/dev/null``; the token is written to
the saved real stdout, so output the program prints (unterminated, or more than the service keeps) cannot
hide it. That stops ``sys.exit(0)`` / ``os._exit(0)`` before the tests (the token is never printed) and
``atexit`` tricks, but a program that reads its own source file or its frames can find the token and print
it: with this backend, assert verdicts are only as unforgeable as the remote service makes them. The local
sandbox does not have this weakness (its judge runs in another process).

A request that fails (unreachable, HTTP error, malformed or truncated reply, ``SandboxError``) makes the job's
result ``error="sandbox_error"`` (the reward gives None, not 0.0).

Left out: SandboxFusion's dataset endpoints (``/submit``), languages other than Python, file uploads.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Sequence

from rewards.code.backend import JobResult, TestOutcome
from rewards.code.formats import Job, call_output_matches, outputs_match

__all__ = ["HttpSandbox", "ServiceError"]


class HttpSandbox:
    """A :class:`~rewards.code.SandboxBackend` for a SandboxFusion-compatible service.

    Args:
        url: Base URL of the service, e.g. ``"http://127.0.0.1:8080"`` (``/run_code`` is appended).
        run_timeout_s: Per-test run timeout sent to the service.
        memory_mb: Memory limit sent to the service.
        request_timeout_s: Client-side timeout of one HTTP request.
        workers: Concurrent requests.

    Example:
        >>> HttpSandbox("http://127.0.0.1:8080").endpoint
        'http://127.0.0.1:8080/run_code'
    """

    def __init__(
        self,
        url: str,
        *,
        run_timeout_s: float = 3.0,
        memory_mb: int = 1024,
        request_timeout_s: float = 30.0,
        workers: int = 8,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url={url!r}; allowed: an http:// or https:// URL")
        if not (0 < run_timeout_s <= 3600 and 0 < request_timeout_s <= 3600):
            raise ValueError(f"timeouts must be in (0, 3600], got {run_timeout_s!r}, {request_timeout_s!r}")
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers={workers!r}; allowed: an int >= 1")
        self.endpoint = url.rstrip("/") + "/run_code"
        self.run_timeout_s, self.memory_mb = float(run_timeout_s), int(memory_mb)
        self.request_timeout_s, self.workers = float(request_timeout_s), workers

    def _post(self, code: str, stdin: str) -> dict:
        """One ``/run_code`` request; raises :class:`ServiceError` when the service fails to answer."""
        body = json.dumps(
            {
                "code": code,
                "language": "python",
                "stdin": stdin,
                "run_timeout": self.run_timeout_s,
                "memory_limit_MB": self.memory_mb,
            }
        ).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={"Content-Type": "application/json"}
        )
        for attempt in range(2):
            try:
                with urllib.request.urlopen(request, timeout=self.request_timeout_s) as response:
                    reply = json.loads(response.read(1 << 26))
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                if attempt:  # HTTPError is a URLError; IncompleteRead, BadStatusLine are HTTPExceptions
                    raise ServiceError(f"{type(exc).__name__}: {exc}"[:300]) from None
        if not isinstance(reply, dict) or not isinstance(reply.get("run_result", {}), (dict, type(None))):
            raise ServiceError(f"malformed reply: {json.dumps(reply)[:200]}")
        if reply.get("status") == "SandboxError":
            raise ServiceError(f"SandboxError: {str(reply.get('message'))[:200]}")
        return reply

    def _outcome(self, job: Job, i: int) -> tuple[TestOutcome, bool]:
        """Test ``i`` of ``job``, and whether the service failed (the job then cannot be judged)."""
        token = secrets.token_hex(16)
        code, stdin = (job.program, job.tests[i]) if job.kind == "stdio" else (_harness(job, i, token), "")
        try:
            reply = self._post(code, stdin)
        except ServiceError as exc:
            return TestOutcome("crashed", f"test {i}: sandbox service failed: {exc}"), True
        return _verdict(job, i, token, reply.get("run_result") or {}, reply.get("message")), False

    def run(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Runs every test of every job on the service; one request per test."""
        jobs = list(jobs)
        for job in jobs:
            if not isinstance(job, Job):
                raise TypeError(f"HttpSandbox.run expects Job objects, got {type(job).__name__}")
        tasks = [(j, i) for j, job in enumerate(jobs) for i in range(len(job.tests))]
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            outcomes = list(pool.map(lambda t: self._outcome(jobs[t[0]], t[1]), tasks))
        results: list[list[TestOutcome]] = [[] for _ in jobs]
        failed = [False] * len(jobs)
        for (j, _i), (outcome, service_failed) in zip(tasks, outcomes, strict=True):
            results[j].append(outcome)
            failed[j] = failed[j] or service_failed
        errors = ["sandbox_error" if f else "" for f in failed]
        return [JobResult(tuple(r), error=e) for r, e in zip(results, errors, strict=True)]


class ServiceError(Exception):
    """The service did not answer a request (unreachable, HTTP error, malformed reply, ``SandboxError``)."""


# The program runs with exec() in its own namespace named "__sandbox__" (as in the local sandbox: its
# `if __name__ == "__main__":` block does not run) with fd 1 on /dev/null (its prints, however large or
# unterminated, cannot push the verdict out of the service's capped stdout); the verdict goes to the saved
# real stdout after a newline.
_HARNESS = """import os as _rlenv_os, sys as _rlenv_sys, json as _rlenv_json
_rlenv_fd = _rlenv_os.dup(1)
_rlenv_os.dup2(_rlenv_os.open(_rlenv_os.devnull, _rlenv_os.O_WRONLY), 1)
_rlenv_ns = {{"__name__": "__sandbox__", "__builtins__": __builtins__}}
exec(compile({program!r}, "<program>", "exec"), _rlenv_ns)
{tests}
def _rlenv_say(text):
    try:
        _rlenv_sys.stdout.flush()
    except BaseException:
        pass
    data = text.encode("utf-8", "backslashreplace")
    while data:
        data = data[_rlenv_os.write(_rlenv_fd, data):]
_rlenv_say("\\n" + {token!r} + "\\n" + {result})
"""
_RUN = 'exec(compile({source!r}, {name!r}, "exec"), _rlenv_ns)'
# Call-based: the result leaves as JSON (the comparison happens in the library); a dict key that is not a
# string fails (JSON would turn it into one; the local sandbox compares the real keys); numpy scalars and
# builtin-container subclasses are plain data, as in the local sandbox.
_CALL = """def _rlenv_keys(value, depth=0):
    if depth > 100:
        raise TypeError("nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"dict key {{key!r}} is not a string")
            _rlenv_keys(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _rlenv_keys(item, depth + 1)
def _rlenv_item(value):
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{{type(value).__name__}} is not JSON")
_rlenv_f = _rlenv_ns.get({name!r})
if _rlenv_f is None:
    _rlenv_f = getattr(_rlenv_ns["Solution"](), {name!r})
_rlenv_value = _rlenv_f(*_rlenv_json.loads({args!r}))
_rlenv_keys(_rlenv_value)
_rlenv_out = _rlenv_json.dumps(_rlenv_value, default=_rlenv_item) + "\\n"
"""


def _harness(job: Job, i: int, token: str) -> str:
    """The script sent for an assert, HumanEval or call-based test: the program, then the test, then the
    token (and, for a call, the JSON result) on the real stdout. The expected value of a call never goes to
    the service: the comparison happens here, in the library."""
    if job.kind == "asserts":
        parts = [_RUN.format(source=job.setup, name="<test_setup_code>")] if job.setup else []
        tests = "\n".join([*parts, _RUN.format(source=job.tests[i], name=f"<test {i}>")])
        result = '""'
    elif job.kind == "function":
        check = f"_rlenv_ns['check'](_rlenv_ns[{job.entry_point!r}])"
        tests, result = _RUN.format(source=job.tests[i], name="<test>") + "\n" + check, '""'
    else:
        tests, result = _CALL.format(name=job.entry_point, args=job.tests[i]), "_rlenv_out"
    return _HARNESS.format(program=job.program, tests=tests, token=token, result=result)


def _verdict(job: Job, i: int, token: str, run: dict, message: object) -> TestOutcome:
    """The outcome of one test from the service's ``run_result``."""
    status, stdout = run.get("status"), str(run.get("stdout") or "")
    stderr = " ".join(str(run.get("stderr") or "").split())[-300:]
    if status == "TimeLimitExceeded":
        return TestOutcome("timeout", f"test {i}: time limit exceeded")
    if status not in ("Finished", "Error", None):
        return TestOutcome("crashed", f"test {i}: {message or status}")
    if run.get("return_code") != 0:
        return TestOutcome("failed" if "AssertionError" in stderr else "error", f"test {i}: {stderr}")
    if job.kind == "stdio":
        if outputs_match(stdout, job.expected[i]):
            return TestOutcome("passed")
        return TestOutcome("failed", f"test {i}: expected {job.expected[i][:150]!r}, got {stdout[:150]!r}")
    _, marker, tail = stdout.rpartition(f"\n{token}\n")
    if marker and job.kind == "call":
        return _call_outcome(job, i, tail)
    return TestOutcome("passed") if marker and not tail else TestOutcome("failed", f"test {i}: no verdict")


def _call_outcome(job: Job, i: int, tail: str) -> TestOutcome:
    text, newline, rest = tail.partition("\n")
    if not newline or rest:
        return TestOutcome("failed", f"test {i}: no verdict")
    try:
        got = json.loads(text)
    except ValueError:
        return TestOutcome("failed", f"test {i}: the result is not JSON")
    if call_output_matches(got, json.loads(job.expected[i])):
        return TestOutcome("passed")
    return TestOutcome("failed", f"test {i}: got {text[:150]}, expected {job.expected[i][:150]}")
