"""End-to-end behaviour of ``code_accuracy``: the three formats, pass-rate vs binary, budgets, threads,
pickling, the contract check on hostile programs, and the SandboxFusion-compatible HTTP backend."""

import concurrent.futures
import http.server
import json
import os
import pickle
import subprocess
import sys
import threading

import pytest
from hypothesis import strategies as st

from rewards import code_accuracy
from rewards.code import HttpSandbox, LocalSandbox, SandboxBackend, SandboxLimits, make_code_reward
from rewards.testing import any_completions, check_reward

ADD = "```python\ndef add(a, b):\n    return a + b\n```"
ADD_BUGGY = "```python\ndef add(a, b):\n    return a + b if a < 5 else 0\n```"
ADD_TESTS = [
    "assert add(1, 2) == 3",
    "assert add(2, 2) == 4",
    "assert add(7, 1) == 8",
    "assert add(9, 9) == 18",
]
HUMANEVAL_TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"
ECHO_SUM = "```python\nimport sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n```"


@pytest.fixture(scope="module")
def box():
    sandbox = LocalSandbox(SandboxLimits(test_timeout_s=1.5, program_timeout_s=6.0), workers=2)
    yield sandbox
    sandbox.close()


def test_default_instance_is_public():
    assert code_accuracy.__name__ == "code_accuracy"
    assert isinstance(LocalSandbox(), SandboxBackend)


def test_three_formats_and_modes(box):
    rate = make_code_reward(backend=box)
    binary = make_code_reward("binary", backend=box)
    # MBPP asserts: the buggy program passes 2 of 4 tests.
    assert rate([ADD, ADD_BUGGY], tests=[ADD_TESTS, ADD_TESTS]) == [1.0, 0.5]
    assert binary([ADD, ADD_BUGGY], tests=[ADD_TESTS, ADD_TESTS]) == [1.0, 0.0]
    # HumanEval: check(candidate) is one test.
    assert rate(
        [ADD, ADD_BUGGY.replace("a < 5", "a < 0")], test=[HUMANEVAL_TEST] * 2, entry_point=["add"] * 2
    ) == [
        1.0,
        0.0,
    ]
    # stdin/stdout: whitespace-normalised lines; a missing line fails.
    inputs, outputs = ["1 2\n", "10   20\n", "3 3\n"], ["3\n", "30", "6\n7\n"]
    assert rate([ECHO_SUM], inputs=[inputs], outputs=[outputs]) == [pytest.approx(2 / 3)]
    assert binary([ECHO_SUM], inputs=[inputs[:2]], outputs=[outputs[:2]]) == [1.0]


def test_humaneval_missing_entry_point(box):
    reward = make_code_reward(backend=box)
    result = reward.explain(ADD.replace("add", "plus"), test=HUMANEVAL_TEST, entry_point="add")
    assert result.value == 0.0 and "does not define 'add'" in result.detail


def test_no_code_no_tests_bad_tests(box):
    reward = make_code_reward(backend=box)
    assert reward.explain("I would write add but won't.", tests=ADD_TESTS).reason == "no_code"
    assert reward.explain(ADD, tests=[]).value is None
    assert reward.explain(ADD, tests=["assert add(1, 2) == "]).value is None  # the reference does not compile
    chat = [{"role": "assistant", "content": ADD, "reasoning_content": "easy"}]
    assert reward([chat], tests=[ADD_TESTS]) == [1.0]


def test_empty_tests_give_none_with_or_without_code(box):
    reward = make_code_reward(backend=box)
    for completion in (ADD, "I would write add but won't."):
        result = reward.explain(completion, tests=[])
        assert (result.value, result.reason) == (None, "no_tests"), completion
    assert reward(["no code", ADD], inputs=[[], []], outputs=[[], []]) == [None, None]


def test_code_in_prefilled_thinking_is_not_run(box):
    reward = make_code_reward(backend=box)
    draft = "draft ```python\nprint(5)\n``` hmm, still thinking"
    columns = {"inputs": [["x"]] * 2, "outputs": [["5"]] * 2}
    assert reward([draft] * 2, prompts=["Assistant: <think>", "Assistant:"], **columns) == [0.0, 1.0]
    answer = "draft ```python\nprint(4)\n```</think>```python\nprint(5)\n```"
    assert reward([answer], prompts=["Assistant: <think>"], **{k: v[:1] for k, v in columns.items()}) == [1.0]


def test_stdio_exit_quit_and_buffered_stdin(box):
    reward = make_code_reward(backend=box)
    read_sum = "n = int(input())\ns = sum(int(input()) for _ in range(n))\n"
    programs = {
        read_sum + "print(s)\nexit()": "6",
        read_sum + "print(s)\nquit(0)": "6",
        read_sum + "print(s)\nexit(3)": "6",  # the exit status still counts: 0.0
        "import sys\nread = sys.stdin.buffer.readline\nn = int(read())\n"
        "print(sum(int(read()) for _ in range(n)), type(sys.stdin.buffer).__name__)": "6 BufferedReader",
    }
    got = reward(
        [f"```python\n{p}\n```" for p in programs],
        inputs=[["3\n1\n2\n3\n"]] * len(programs),
        outputs=[[out] for out in programs.values()],
    )
    assert got == [1.0, 1.0, 0.0, 1.0]
    assumes_main = "```python\ndef f(x):\n    return x + 1\nif __name__ == '__main__':\n    exit()\n```"
    assert reward([assumes_main], tests=[["assert f(1) == 2"]]) == [1.0]


def test_large_programs_are_judged(box):
    # Over ~208 KiB a program no longer fits one socket message to the spawner: it travels in a file.
    pad = "# " + "x" * 300_000 + "\n"
    rate = make_code_reward(backend=box)
    big_add = ADD.replace("def add", pad + "def add")
    big_echo = ECHO_SUM.replace("import sys", pad + "import sys")
    assert rate([big_add], tests=[ADD_TESTS]) == [1.0]
    assert rate([big_echo], inputs=[["1 2\n"]], outputs=[["3"]]) == [1.0]
    setup = "HELPER = 1\n" + pad
    assert rate([ADD], tests=[["assert add(HELPER, 1) == 2"]], test_setup_code=[setup]) == [1.0]


def test_big_module_level_tables_do_not_sink_the_program(box):
    # Globals are listed to the judge when the program loads; a 4,000,000-entry sieve overflowed that frame
    # and every test "crashed". Tables that long now stay in the child, behind the functions that use them.
    sieve = ("```python\nN = 4_000_000\nsieve = [True] * N\nfor i in range(2, 2001):\n    if sieve[i]:\n"
             "        sieve[i * i :: i] = [False] * len(sieve[i * i :: i])\n"
             "def is_prime(x):\n    return x > 1 and sieve[x]\nSMALL = list(range(50_000))\n```")
    rate = make_code_reward(backend=box)
    tests = ["assert is_prime(3_999_971)", "assert not is_prime(3_999_999)", "assert SMALL[7] == 7"]
    assert rate([sieve], tests=[tests]) == [1.0]


def test_failing_tests_are_explained(box):
    result = make_code_reward(backend=box).explain(ADD_BUGGY, tests=ADD_TESTS)
    assert result.reason == "failed"
    assert "2/4 tests passed" in result.detail
    assert "assert add(7, 1) == 8 failed: got 0, expected 8" in result.detail


def test_one_slow_test_does_not_zero_the_others(box):
    slow = "```python\nimport time\ndef add(a, b):\n    if a == 7:\n        time.sleep(30)\n"
    slow += "    return a + b\n```"
    result = make_code_reward(backend=box).explain(slow, tests=ADD_TESTS)
    assert result.value == 0.75 and result.reason == "timeout"
    stdio = "```python\nimport time\na, b = map(int, input().split())\n"
    stdio += "if a == 0:\n    time.sleep(30)\nprint(a + b)\n```"
    got = make_code_reward(backend=box)([stdio], inputs=[["0 1\n", "2 2\n"]], outputs=[["1", "4"]])
    assert got == [0.5]


def test_program_budget_limits_total_time():
    with LocalSandbox(SandboxLimits(test_timeout_s=1.0, program_timeout_s=1.5), workers=1) as sandbox:
        slow = "```python\nimport time\ndef add(a, b):\n    time.sleep(0.6)\n    return a + b\n```"
        result = make_code_reward(backend=sandbox).explain(slow, tests=ADD_TESTS)
    assert result.value in (0.25, 0.5)  # the first one or two pass, the rest run out of budget
    assert "budget" in result.detail or "time limit" in result.detail


def test_thread_safety(box):
    reward = make_code_reward(backend=box)
    programs = [ADD.replace("a + b", f"a + b + {k % 3}") for k in range(12)]

    def call(k):
        return reward([programs[k]], tests=[ADD_TESTS])[0]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        got = list(pool.map(call, range(12)))
    assert got == [1.0 if k % 3 == 0 else 0.0 for k in range(12)]


def test_pickle_round_trip():
    reward = make_code_reward("binary", test_timeout_s=1.0)
    copy = pickle.loads(pickle.dumps(reward))
    assert (copy.mode, copy.limits, copy.__name__) == ("binary", reward.limits, "code_accuracy_binary")
    assert copy([ADD], tests=[ADD_TESTS]) == [1.0]


HOSTILE = [
    "while True:\n    pass",
    "import os\nos._exit(0)",
    "import sys\nsys.exit(0)",
    "raise SystemExit",
    "def f(x):\n    return x + 1",
    "class E:\n    __eq__ = lambda s, o: True\ndef f(x):\n    return E()",
    "import os\nos.kill(os.getppid(), 9)",
    "open('/tmp/rlenv-hostile', 'w')",
    "import builtins\nbuiltins.AssertionError = Exception",
    "x = [0] * 10**10",
    "print('x' * 10**6)",
    "def f(x):\n    import time\n    time.sleep(5)",
]


@st.composite
def hostile_programs(draw):
    body = draw(st.sampled_from(HOSTILE))
    noise = draw(st.text(max_size=30))
    wrapped = draw(
        st.sampled_from(["```python\n{}\n```", "<think>{n}</think>```py\n{}\n```", "{n}```\n{}\n"])
    )
    return wrapped.replace("{n}", noise).replace("{}", body)


def test_check_reward_on_hostile_programs():
    reward = make_code_reward(test_timeout_s=0.5, program_timeout_s=1.0)
    check_reward(
        reward,
        columns={"tests": ["assert f(1) == 2"]},
        completions=st.one_of(hostile_programs(), any_completions(2000)),
        max_examples=12,
        max_seconds_per_sample=6.0,
    )


# -- HTTP backend against a fake SandboxFusion on 127.0.0.1 -----------------------------------------------


class _FakeSandboxFusion(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        assert self.path == "/run_code"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", body["code"]],
                input=body["stdin"], capture_output=True, text=True, timeout=body["run_timeout"],
            )  # fmt: skip
            run = {
                "status": "Finished",
                "return_code": proc.returncode,
                "stdout": proc.stdout[: 1 << 20],  # SandboxFusion keeps a bounded stdout too
                "stderr": proc.stderr[: 1 << 20],
            }
        except subprocess.TimeoutExpired:
            run = {"status": "TimeLimitExceeded", "return_code": None, "stdout": "", "stderr": ""}
        data = json.dumps({"status": "Success", "message": "", "run_result": run}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def fake_service():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeSandboxFusion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_backend(fake_service):
    reward = make_code_reward(backend=HttpSandbox(fake_service, run_timeout_s=2.0, workers=4))
    assert reward([ADD, ADD_BUGGY], tests=[ADD_TESTS, ADD_TESTS]) == [1.0, 0.5]
    assert reward([ADD], test=[HUMANEVAL_TEST], entry_point=["add"]) == [1.0]
    assert reward([ECHO_SUM], inputs=[["1 2\n", "2 2\n"]], outputs=[["3", "5"]]) == [0.5]
    exit_early = "```python\nimport sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n```"
    assert reward([exit_early], tests=[ADD_TESTS[:1]]) == [0.0]  # exit 0 without the token is no pass
    assert reward(["```python\nwhile True: pass\n```"], tests=[ADD_TESTS[:1]]) == [0.0]
    sqrt = "```python\ndef root(x):\n    return math.sqrt(x)\n```"
    assert reward([sqrt], tests=[["assert root(9) == 3.0"]], test_setup_code=["import math"]) == [1.0]
    call = {"inputs": [[[1, 2], [3, 4]]], "outputs": [[3, [7]]], "fn_name": ["add"]}  # compared here
    assert reward([ADD, ADD_BUGGY], **{k: v * 2 for k, v in call.items()}) == [1.0, 1.0]
    always_equal = "```python\nclass E:\n    __eq__ = lambda s, o: True\ndef add(a, b):\n    return E()\n```"
    assert reward([always_equal], **call) == [0.0]  # not JSON: no verdict


def test_http_backend_matches_the_local_verdicts(fake_service, box):
    """Programs whose HTTP verdict used to differ from the local one: a `__main__` block reading stdin, output
    without a final newline or beyond the service's stdout cap, non-string dict keys from a call."""
    add = "def add(a, b):\n    return a + b\n"
    main_block = add + "if __name__ == '__main__':\n    print(add(*map(int, input().split())))"
    cases = [
        (main_block, {"tests": [ADD_TESTS]}, 1.0),
        (main_block, {"test": [HUMANEVAL_TEST], "entry_point": ["add"]}, 1.0),
        (add + "print('loaded', end='')", {"tests": [ADD_TESTS]}, 1.0),
        (add + "for _ in range(1100):\n    print('x' * 1000)", {"tests": [ADD_TESTS]}, 1.0),  # > 1 MiB
        (
            "import sys\ndef add(a, b):\n    print('x' * 2000, end='')\n    return a + b",
            {"inputs": [[[1, 2]]], "outputs": [[3]], "fn_name": ["add"]},
            1.0,
        ),
        ("def f(a):\n    return {1: a}", {"inputs": [[[5]]], "outputs": [[{"1": 5}]], "fn_name": ["f"]}, 0.0),
        ("print(int(input()) * 2)\nexit()", {"inputs": [["2\n"]], "outputs": [["4"]]}, 1.0),
    ]
    remote = make_code_reward(backend=HttpSandbox(fake_service, run_timeout_s=5.0, workers=4))
    local = make_code_reward(backend=box)
    for program, columns, expected in cases:
        completion = f"```python\n{program}\n```"
        assert remote([completion], **columns) == [expected], (program, remote.explain(completion, **columns))
        assert local([completion], **columns) == [expected], program


class _BrokenService(http.server.BaseHTTPRequestHandler):
    mode = "http500"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        mode = type(self).mode
        if mode == "bad_status_line":
            self.wfile.write(b"garbage\r\n\r\n")
            self.close_connection = True
            return
        if mode == "http500":
            self.send_response(500)
            self.end_headers()
            return
        data = {
            "truncated": b'{"status": "Su',
            "run_result_not_a_dict": json.dumps({"status": "Success", "run_result": "oops"}).encode(),
            "reply_not_a_dict": b"[1, 2]",
            "not_json": b"<html>busy</html>",
            "sandbox_error": json.dumps({"status": "SandboxError", "message": "no runner"}).encode(),
        }[mode]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) + (100 if mode == "truncated" else 0)))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, *args):
        pass


MODES = ["http500", "bad_status_line", "truncated", "run_result_not_a_dict", "reply_not_a_dict", "not_json"]


@pytest.mark.parametrize("mode", [*MODES, "sandbox_error"])
def test_http_backend_failures_give_none(mode):
    _BrokenService.mode = mode
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BrokenService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        reward = make_code_reward(backend=HttpSandbox(url, request_timeout_s=5.0, workers=2))
        for columns in ({"tests": ADD_TESTS[:2]}, {"inputs": ["1 2\n"], "outputs": ["3"]}):
            result = reward.explain(ADD, **columns)
            assert (result.value, result.reason) == (None, "sandbox_error"), result
            assert "sandbox backend failed" in result.detail
    finally:
        server.shutdown()
        server.server_close()


def test_http_backend_unreachable_gives_none_not_a_crash():
    reward = make_code_reward(backend=HttpSandbox("http://127.0.0.1:9", request_timeout_s=1.0))
    result = reward.explain(ADD, tests=ADD_TESTS[:1])
    assert (result.value, result.reason) == (None, "sandbox_error")
    with pytest.raises(ValueError, match="url"):
        HttpSandbox("ftp://example")


def test_forked_caller_gets_its_own_sandbox(box):
    reward = make_code_reward(backend=box)
    assert reward([ADD], tests=[ADD_TESTS]) == [1.0]
    parent_zygote = box.zygote_pid
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked data-loader worker using the inherited reward
        code = 1
        try:
            ok = reward([ADD, ADD_BUGGY], tests=[ADD_TESTS, ADD_TESTS]) == [1.0, 0.5]
            os.write(write, b"1" if ok and box.zygote_pid != parent_zygote else b"0")
            box.close()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0
    assert reward([ADD], tests=[ADD_TESTS]) == [1.0]  # the parent's sandbox is untouched
