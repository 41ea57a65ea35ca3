"""Budgets and safety: hostile answers, the killable worker pool, threads, fork and spawn."""

import multiprocessing
import os
import sys
import threading
import time

import pytest

from rewards import make_math_reward, math_accuracy
from rewards.math.pool import WorkerPool, shared_pool
from tests.processes import alive

BUDGET_S = 1.0
reward = make_math_reward(timeout_s=BUDGET_S)

_NESTED_PM = "1"
for _ in range(7):
    _NESTED_PM = "\\frac{1\\pm1\\pm1\\pm1\\pm1}{" + _NESTED_PM + "}"

HOSTILE = [
    "__import__('os').system('touch {marker}')",  # eval injection
    "exec(\"open('{marker}', 'w')\")",  # exec injection
    "eval('__import__(\"os\").system(\"touch {marker}\")')",  # nested eval
    "lambda: open('{marker}', 'w')",  # a lambda
    "{{7*7}}; import os; os.system('touch {marker}')",  # template + statement injection
    "$(touch {marker})",  # shell substitution
    "9**9**9**9",  # power tower
    "10^{10^{10^{10}}}",  # LaTeX power tower
    "2^{2^{2^{2^{2^{2}}}}}",  # a tower that fits before the last step
    "(10^8)!",  # huge factorial
    "factorial(10**8)",  # huge factorial, Python spelling
    "1e99999999",  # huge scientific notation
    "\\frac{1}{" * 3000 + "2" + "}" * 3000,  # 3,000-deep \frac
    "(" * 3000 + "1" + ")" * 3000,  # 3,000-deep parentheses
    "1" + "\\pm 1" * 300,  # a chain of 300 plus-minus signs (2^300 sign choices)
    _NESTED_PM,  # \pm inside \frac inside \frac ...: 16^7 sign choices, once expanded in the caller's process
    "1" + "/2" * 900,  # 900 nested divisions
    "1" * 1_000_000,  # a 1 MB number
    "x" * 1_000_000,  # a 1 MB token
    "\\begin{pmatrix}" + " \\\\ ".join(" & ".join(["1"] * 200) for _ in range(200)) + "\\end{pmatrix}",  # big
    "\\begin{pmatrix}" + " \\\\ ".join(" & ".join(["x"] * 12) for _ in range(12)) + "\\end{pmatrix}",  # 12x12
    "(x+1)^{10000} - (x+1)^{10000} + 4",  # expensive to expand, inside the exponent bound
    "\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}}",  # deep radicals (fine, just wrong)
]


@pytest.mark.parametrize("answer", HOSTILE, ids=[f"h{i:02d}" for i in range(len(HOSTILE))])
def test_hostile_answers_score_zero_within_budget(answer, tmp_path):
    marker = tmp_path / "pwned"
    text = answer.replace("{marker}", str(marker))
    shared_pool().check("1", "1", timeout=60.0)  # the worker start-up is not the sample's budget
    start = time.perf_counter()
    results = reward.explain_all([f"<think>x</think><answer>{text}</answer>", f"\\boxed{{{text}}}"],
                                 answer=["5", "5"])
    elapsed = time.perf_counter() - start
    assert [r.value for r in results] == [0.0, 0.0], results
    assert elapsed < 2 * BUDGET_S + 1.0, f"{elapsed:.2f}s"
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "The answer" + " " * 1_000_000 + "x",  # whitespace after a declaration keyword (regex backtracking bomb)
    "Final answer" + "\n " * 500_000,  # blank lines after a heading
    "answer is" + " \t" * 500_000 + "6",  # a declaration after a megabyte of blanks (wrong value)
    "$" * 1_000_000,  # dollar signs
    "\\(" * 500_000,  # unclosed inline math
    "#### " + "9" * 1_000_000,  # a megabyte GSM8K answer
], ids=["spaces", "blank-lines", "far-declaration", "dollars", "inline-math", "gsm8k"])
def test_megabyte_completions_are_linear(text):
    start = time.perf_counter()
    assert math_accuracy([text], answer=["5"]) == [0.0]
    assert time.perf_counter() - start < 2.0


def test_box_spam_megabyte_completion_is_fast():
    text = "\\boxed{" * 200_000 + "1"
    start = time.perf_counter()
    assert math_accuracy([text, "<think>" + "9 " * 500_000 + "</think><answer>7</answer>"],
                         answer=["1", "7"]) == [0.0, 1.0]
    assert time.perf_counter() - start < 2.0


def test_timeout_scores_zero_and_worker_is_replaced():
    slow = make_math_reward(timeout_s=0.3, workers=1)
    pool = shared_pool(1)
    pool.check("1", "1", timeout=60.0)
    before = pool.timeouts
    start = time.perf_counter()
    result = slow.explain("\\boxed{(x+1)^{9000}}", answer="(x+2)^{9000}")
    assert result.value == 0.0 and result.reason == "timeout"
    assert time.perf_counter() - start < 1.5
    assert pool.timeouts == before + 1
    # the replacement worker (started at the kill) serves the next sample
    assert pool.check("\\sqrt{8}", "2\\sqrt{2}", timeout=60.0).value is True


def test_dead_worker_is_replaced():
    pool = WorkerPool(1)
    try:
        assert pool.check("\\sqrt{8}", "2\\sqrt{2}", timeout=60.0).value is True
        (worker,) = pool._idle
        worker.proc.kill()
        worker.proc.wait()
        assert pool.check("\\sqrt{8}", "2\\sqrt{2}", timeout=60.0).value is True
        assert pool._live == 1
    finally:
        pool.close()


def test_a_worker_that_cannot_start_leaves_the_sample_unjudged(monkeypatch):
    import rewards.math.pool as pool_module

    def no_worker():
        raise OSError(24, "Too many open files")

    pool = WorkerPool(1)
    monkeypatch.setattr(pool_module, "_Worker", no_worker)
    assert (pool.check("\\sqrt{8}", "2\\sqrt{2}", timeout=60.0).reason, pool._live) == ("worker_died", 0)


def test_an_interrupted_sample_does_not_hand_its_reply_to_the_next():
    pool = WorkerPool(1)
    try:
        assert pool.check("\\sqrt{8}", "2\\sqrt{2}", timeout=60.0).value is True
        (worker,) = pool._idle
        send = worker.send

        def send_then_interrupt(message):  # the request is out, the reply is coming: then an interrupt
            send(message)
            raise KeyboardInterrupt

        worker.send = send_then_interrupt
        with pytest.raises(KeyboardInterrupt):
            pool.check("\\sqrt{8}", "2\\sqrt{2}", timeout=60.0)
        assert pool._idle == [] and pool._live == 0  # that worker was killed, not put back
        assert pool.check("\\sqrt{8}", "2\\sqrt{2}+10^{-8}", timeout=60.0).value is False  # its own verdict
    finally:
        pool.close()


def test_many_threads_at_once():
    completions = ["<answer>\\sqrt{50}</answer>", "<answer>0.5</answer>", "<answer>(x+1)^2</answer>",
                   "<answer>7</answer>", "<answer>x^2+2x</answer>"]
    golds = ["5\\sqrt{2}", "\\frac12", "x^2+2x+1", "#### 8", "x^2+2x+1"]
    expected = [1.0, 1.0, 1.0, 0.0, 0.0]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = math_accuracy(completions, answer=golds)
        except BaseException as exc:  # collected and re-raised on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert all(results[k] == expected for k in range(8)), results


def _symbolic_in_child(queue) -> None:
    queue.put(math_accuracy(["<answer>\\sqrt{8}</answer>", "<answer>3</answer>"], answer=["2\\sqrt{2}", "4"]))


def test_after_fork():
    shared_pool().check("1", "1", timeout=60.0)  # the parent has live workers before forking
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_symbolic_in_child, args=(queue,), daemon=True)  # daemonic: no mp children
    child.start()
    assert queue.get(timeout=60) == [1.0, 0.0]
    child.join(timeout=30)
    assert child.exitcode == 0
    assert math_accuracy(["<answer>\\sqrt{8}</answer>"], answer=["2\\sqrt{2}"]) == [1.0]  # parent still fine


def test_in_spawned_process():
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_symbolic_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=90) == [1.0, 0.0]
    child.join(timeout=30)
    assert child.exitcode == 0


def test_workers_do_not_outlive_the_interpreter(tmp_path):
    import subprocess

    code = ("from rewards.math.pool import shared_pool\n"
            "p = shared_pool(1)\n"
            "assert p.check('\\\\sqrt{8}', '2\\\\sqrt{2}', timeout=60.0).value\n"
            "print(p._idle[0].proc.pid)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=90)
    pid = int(out.stdout.strip())
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"worker {pid} still alive after the interpreter exited")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process states are read from /proc")
def test_a_worker_dies_with_its_parent_even_mid_sample():
    import signal
    import subprocess

    slow = ("(x+y+z+w)^{40}(x-y)", "(x+y+z+w)^{40}x-(x+y+z+w)^{40}y")  # equal; sympy needs many seconds
    code = ("from rewards.math.pool import shared_pool\n"
            "p = shared_pool(1)\n"
            "assert p.check('\\\\sqrt{8}', '2\\\\sqrt{2}', timeout=60.0).value\n"
            "print(p._idle[0].proc.pid, flush=True)\n"
            f"p.check({slow[0]!r}, {slow[1]!r}, timeout=600.0)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    worker = 0
    try:
        worker = int(parent.stdout.readline())
        time.sleep(1.0)  # the slow sample is in the worker
        parent.kill()
        parent.wait()
        deadline = time.time() + 15
        while alive(worker) and time.time() < deadline:
            time.sleep(0.2)
        assert not alive(worker)
    finally:
        parent.kill()
        if worker and alive(worker):
            os.kill(worker, signal.SIGKILL)
