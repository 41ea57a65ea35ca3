"""A sandbox backend that runs programs on a SandboxFusion-compatible HTTP service.

SandboxFusion (bytedance/SandboxFusion) exposes ``POST /run_code`` taking ``{"code", "language", "stdin",
"run_timeout", "memory_limit_MB"}`` and answering ``{"status", "message", "run_result": {"status",
"return_code", "stdout", "stderr", ...}}``. One request per test (stdlib ``urllib``, a thread pool for
parallelism, no retries on a program's failure, one retry on a transport error).

Verdicts: stdin/stdout tests are compared here, in the library (``outputs_match``), so the service only has to
run the program; so are call-based tests (the service prints the returned value as JSON after a per-request
token; the expected value never leaves the library). Assert and HumanEval tests run *inside* the service, in
the same process as the program; the verdict is "exited 0 and the last stdout line is a per-request random
token printed after the tests". That stops ``sys.exit(0)`` / ``os._exit(0)`` before the tests (the token is
never printed) and ``atexit`` tricks that print nothing, but a program that reads its own source file can find
the token and print it: with this backend, assert verdicts are only as unforgeable as the remote service makes
them. The local sandbox does not have this weakness (its judge runs in another process).

Left out: SandboxFusion's dataset endpoints (``/submit``), languages other than Python, file uploads.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Sequence

from rewards.code.backend import JobResult, TestOutcome
from rewards.code.formats import Job, call_output_matches, outputs_match

__all__ = ["HttpSandbox"]


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
                return reply if isinstance(reply, dict) else {}
            except (urllib.error.URLError, OSError, ValueError):
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _outcome(self, job: Job, i: int) -> TestOutcome:
        token = secrets.token_hex(16)
        if job.kind == "stdio":
            code, stdin = job.program, job.tests[i]
        elif job.kind == "asserts":
            code, stdin = f"{job.program}\n\n{job.setup}\n{job.tests[i]}\nprint({token!r})\n", ""
        elif job.kind == "call":
            code, stdin = _call_driver(job, i, token), ""
        else:
            code, stdin = f"{job.program}\n\n{job.tests[i]}\ncheck({job.entry_point})\nprint({token!r})\n", ""
        try:
            reply = self._post(code, stdin)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return TestOutcome("crashed", f"test {i}: sandbox service unreachable: {exc}")
        run = reply.get("run_result") or {}
        status, stdout = run.get("status"), str(run.get("stdout") or "")
        stderr = " ".join(str(run.get("stderr") or "").split())[-300:]
        if status == "TimeLimitExceeded":
            return TestOutcome("timeout", f"test {i}: time limit exceeded")
        if reply.get("status") == "SandboxError" or status not in ("Finished", "Error", None):
            return TestOutcome("crashed", f"test {i}: {reply.get('message') or status}")
        if run.get("return_code") != 0:
            return TestOutcome("failed" if "AssertionError" in stderr else "error", f"test {i}: {stderr}")
        if job.kind == "call":
            return _call_outcome(job, i, token, stdout)
        if job.kind == "stdio":
            if outputs_match(stdout, job.expected[i]):
                return TestOutcome("passed")
            return TestOutcome(
                "failed", f"test {i}: expected {job.expected[i][:150]!r}, got {stdout[:150]!r}"
            )
        lines = stdout.rstrip("\n").split("\n")
        return TestOutcome("passed") if lines[-1] == token else TestOutcome("failed", f"test {i}: no verdict")

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
        for (j, _i), outcome in zip(tasks, outcomes, strict=True):
            results[j].append(outcome)
        return [JobResult(tuple(r)) for r in results]


def _call_driver(job: Job, i: int, token: str) -> str:
    """The program, then one call printed as ``token`` + JSON on the last two lines (the expected value never
    goes to the service: the comparison happens here, in the library)."""
    name = job.entry_point
    return (
        f"{job.program}\n\nimport json as _rlenv_json\n"
        f"_rlenv_f = globals().get({name!r}) or getattr(Solution(), {name!r})\n"
        f"_rlenv_out = _rlenv_json.dumps(_rlenv_f(*_rlenv_json.loads({job.tests[i]!r})))\n"
        f"print()\nprint({token!r})\nprint(_rlenv_out)\n"
    )


def _call_outcome(job: Job, i: int, token: str, stdout: str) -> TestOutcome:
    lines = stdout.rstrip("\n").split("\n")
    if len(lines) < 2 or lines[-2] != token:
        return TestOutcome("failed", f"test {i}: no verdict")
    try:
        got = json.loads(lines[-1])
    except ValueError:
        return TestOutcome("failed", f"test {i}: the result is not JSON")
    if call_output_matches(got, json.loads(job.expected[i])):
        return TestOutcome("passed")
    return TestOutcome("failed", f"test {i}: got {lines[-1][:150]}, expected {job.expected[i][:150]}")
