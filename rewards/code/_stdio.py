"""The judge's stdin/stdout tests: one fresh sandboxed child per test, output compared in the judge.

The judge feeds stdin without blocking, drains stdout and stderr as they come (never more than
``max_output_bytes`` in memory: a flood kills the child at once, status ``output_limit``), enforces the wall
clock, then asks the spawner for the exit status. A test passes only when the child exited normally with
status 0 *and* its stdout matches the expected output line by line (``formats.outputs_match``): an early
``exit(0)`` with no output, or the right output followed by a crash, fails.
"""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING

from rewards.code.formats import outputs_match

if TYPE_CHECKING:  # pragma: no cover
    from rewards.code._judge import SpawnerClient


def _short(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _pump(
    stdin_w: int, out_r: int, err_r: int, data: bytes, deadline: float, cap: int
) -> tuple[bytes, bytes, str]:
    """Feeds stdin, drains stdout/stderr until both close, the deadline passes or output exceeds ``cap``."""
    os.set_blocking(stdin_w, False)
    poller = select.poll()
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    open_fds = {out_r, err_r}
    out, err, sizes, view = [], [], {out_r: 0, err_r: 0}, memoryview(data)
    if view:
        poller.register(stdin_w, select.POLLOUT)
    else:
        os.close(stdin_w)
        stdin_w = -1
    why = "eof"
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            why = "timeout"
            break
        for fd, _event in poller.poll(left * 1000):
            if fd == stdin_w:
                try:
                    view = view[os.write(stdin_w, view[: 1 << 16]) :]
                except (BlockingIOError, BrokenPipeError) as exc:
                    view = view if isinstance(exc, BlockingIOError) else view[:0]
                if not view:
                    poller.unregister(stdin_w)
                    os.close(stdin_w)
                    stdin_w = -1
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            sizes[fd] += len(chunk)
            if sizes[out_r] + sizes[err_r] > cap:
                return b"".join(out), b"".join(err), "output_limit"
            (out if fd == out_r else err).append(chunk) if sizes[fd] <= cap else None
    if stdin_w >= 0:
        os.close(stdin_w)
    return b"".join(out), b"".join(err), why


def _stdio_test(job: dict, spawner: SpawnerClient, i: int, deadline: float) -> tuple[str, str]:
    limits = job["limits"]
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    cpu_s = max(0.0, deadline - time.monotonic())
    spec = {"mode": "stdio", "program": job["program"], "cpu_s": cpu_s}
    pid = spawner.spawn(spec, [in_r, out_w, err_w], owned=[in_r, out_w, err_w])
    try:
        data = job["tests"][i].encode("utf-8", "surrogateescape")
        out, err, why = _pump(in_w, out_r, err_r, data, deadline, limits["max_output_bytes"])
    finally:
        os.close(out_r)
        os.close(err_r)
    grace = max(0.0, deadline - time.monotonic()) if why == "eof" else 0.0
    status = spawner.finish(pid, grace)
    tail = _short(err.decode("utf-8", "replace")[-600:], 400)
    if why == "timeout" or (why == "eof" and status == -1):
        return "timeout", f"test {i}: time limit exceeded"
    if why == "output_limit":
        return "output_limit", f"test {i}: more than {limits['max_output_bytes']} bytes of output"
    if os.WIFSIGNALED(status):
        return "crashed", f"test {i}: killed by signal {os.WTERMSIG(status)} {tail}".strip()
    if os.WEXITSTATUS(status) != 0:
        return "error", f"test {i}: exit status {os.WEXITSTATUS(status)}: {tail}".strip()
    actual = out.decode("utf-8", "replace")
    if outputs_match(actual, job["expected"][i]):
        return "passed", ""
    return "failed", (f"test {i}: expected {_short(job['expected'][i], 150)!r}, got {_short(actual, 150)!r}")


def run_stdio_tests(job: dict, spawner: SpawnerClient, report) -> None:
    """Runs stdin/stdout tests, one fresh child per test."""
    budget_end = time.monotonic() + job["limits"]["program_timeout_s"]
    for i in range(len(job["tests"])):
        now = time.monotonic()
        if now >= budget_end:
            report(i, "not_run", "the program's time budget was used up by earlier tests")
            continue
        report(i, *_stdio_test(job, spawner, i, min(now + job["limits"]["test_timeout_s"], budget_end)))
