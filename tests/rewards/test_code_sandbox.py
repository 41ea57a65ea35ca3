"""The attack suite: hostile programs are contained, score what they deserve, and leave the host unharmed.

All attacks run as ONE batch through the reward (module fixture, two workers), so the suite costs about the
sum of the timeouts divided by the workers; each test then checks one attack's score, reason and side
effects. Each attack's program would pass its test if its trick worked.
"""

import os
import pathlib
import socket
import subprocess
import sys
import time
import uuid

import pytest

from rewards.code import LocalSandbox, SandboxLimits, make_code_reward

TEST = ["assert f(1) == 2"]  # every attack defines f; an honest f returns x + 1
TMP_MARK = f"/tmp/rlenv_pwned_{uuid.uuid4().hex}"
REPO_MARK = str(pathlib.Path(__file__).resolve().parents[2] / f"pwned_{uuid.uuid4().hex}")
LIMITS = SandboxLimits(test_timeout_s=1.5, program_timeout_s=4.0, max_output_bytes=1 << 20)


def fence(code: str) -> str:
    return f"<think>I will cheat.</think>\n```python\n{code}\n```"


def _attacks(port: int, zygote_pid: int) -> dict[str, tuple[str, dict]]:
    asserts = {"tests": TEST}
    stdio = {"inputs": ["1\n"], "outputs": ["2\n"]}
    human = {"test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "f"}
    return {
        "honest": ("def f(x):\n    return x + 1", asserts),
        "honest_stdio": ("print(int(input()) + 1)", stdio),
        "infinite_loop": ("def f(x):\n    while True:\n        pass", asserts),
        "sleep_past_timeout": ("import time\ndef f(x):\n    time.sleep(60)\n    return x + 1", asserts),
        "memory_bomb": ("def f(x):\n    hog = bytearray(10**11)\n    return x + 1", asserts),
        "memory_creep": ("def f(x):\n    a = []\n    while True:\n        a.append(' ' * 10**7)", asserts),
        "fork_bomb": ("import os\ndef f(x):\n    while True:\n        os.fork()\n    return x + 1", asserts),
        "fork_via_multiprocessing": (
            "import multiprocessing\ndef f(x):\n"
            "    multiprocessing.Process(target=print).start()\n    return x + 1",
            asserts,
        ),
        "thread_bomb": (
            "import threading, time\ndef f(x):\n    while True:\n"
            "        threading.Thread(target=time.sleep, args=(30,)).start()\n    return x + 1",
            asserts,
        ),
        "output_flood_1gb": (
            "import sys\nb = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(b)",
            stdio,
        ),
        "output_flood_assert_mode": (
            "import sys\ndef f(x):\n    b = 'x' * (1 << 20)\n"
            "    for _ in range(1024):\n        sys.stdout.write(b)\n"
            "    while True:\n        pass",
            asserts,
        ),
        "segfault_recursion": (
            "import sys\nsys.setrecursionlimit(10**7)\n"
            "def g(n):\n    return g.__call__(n + 1)\ng(0)\nprint(2)",
            stdio,
        ),
        "write_outside_tmp": (
            f"def f(x):\n    open({TMP_MARK!r}, 'w').write('x')\n    return x + 1",
            asserts,
        ),
        "write_outside_repo": (
            f"import pathlib\ndef f(x):\n    pathlib.Path({REPO_MARK!r}).write_text('x')\n    return x + 1",
            asserts,
        ),
        "write_via_rename": (
            f"import os\ndef f(x):\n    open('a', 'w').write('x')\n"
            f"    os.rename('a', {TMP_MARK!r})\n    return x + 1",
            asserts,
        ),
        "shell_out": (f"import os\ndef f(x):\n    os.system('touch {TMP_MARK}')\n    return x + 1", asserts),
        "network_loopback": (
            f"import socket\ndef f(x):\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "    return x + 1",
            asserts,
        ),
        "kill_parent": (
            f"import os, signal\nfor pid in (os.getppid(), {os.getpid()}, {zygote_pid}, 1, -1):\n"
            "    try:\n        os.kill(pid, signal.SIGKILL)\n    except Exception:\n        pass\n"
            "def f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x + 1",
            asserts,
        ),
        "sys_exit_before_tests": ("import sys\nsys.exit(0)\ndef f(x):\n    return x + 1", asserts),
        "os_exit_before_tests": ("import os\nos._exit(0)\ndef f(x):\n    return x + 1", asserts),
        "raise_system_exit_in_call": ("def f(x):\n    raise SystemExit(0)", asserts),
        "os_exit_stdio": ("import os\nos._exit(0)", stdio),
        "atexit_exit_zero": (
            "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f(x):\n    return 0",
            asserts,
        ),
        "always_equal": (
            "class Eq:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return Eq()",
            asserts,
        ),
        "always_equal_humaneval": (
            "class Eq:\n    def __eq__(self, o):\n        return True\n    __bool__ = lambda s: True\n"
            "def f(x):\n    return Eq()",
            human,
        ),
        "int_subclass": (
            "class I(int):\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return I(0)",
            asserts,
        ),
        "rebind_assertion_error": (
            "import builtins\nbuiltins.AssertionError = type('Never', (Exception,), {})\n"
            "def f(x):\n    return 0",
            asserts,
        ),
        "raise_assertion_free_exit": ("def f(x):\n    raise KeyboardInterrupt", asserts),
        "harness_monkeypatch": (
            "import sys\ndef f(x):\n    fr = sys._getframe(1)\n    while fr is not None:\n"
            "        for k in list(fr.f_globals):\n            if k in ('encode', 'write_frame', 'decode'):\n"
            "                fr.f_globals[k] = lambda *a, **k: True\n        fr = fr.f_back\n    return 0",
            asserts,
        ),
        "import_ctypes": ("def f(x):\n    import ctypes\n    return x + 1", asserts),
        "read_dataset": ("def f(x):\n    open('/etc/passwd').read()\n    return x + 1", asserts),
        "gc_walk": ("import gc\ndef f(x):\n    gc.get_objects()\n    return x + 1", asserts),
    }


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server
    server.close()


@pytest.fixture(scope="module")
def box():
    sandbox = LocalSandbox(LIMITS, workers=2)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def outcome(box, listener):
    zygote = box.stats() and box.zygote_pid
    attacks = _attacks(listener.getsockname()[1], zygote)
    reward = make_code_reward(backend=box)
    names = list(attacks)
    start = time.monotonic()
    results = []
    for name in names:  # one row per attack, all in one batch
        code, row = attacks[name]
        results.append((fence(code), row))
    columns = {
        k: [row.get(k) for _, row in results] for k in ("tests", "test", "entry_point", "inputs", "outputs")
    }
    columns = {k: v for k, v in columns.items() if any(x is not None for x in v)}
    explained = reward.explain_all([c for c, _ in results], **columns)
    return {
        "results": dict(zip(names, explained, strict=True)),
        "seconds": time.monotonic() - start,
        "zygote": zygote,
    }


def test_honest_programs_pass(outcome):
    assert outcome["results"]["honest"].value == 1.0
    assert outcome["results"]["honest_stdio"].value == 1.0


ATTACKS = [n for n in _attacks(0, 0) if not n.startswith("honest")]


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_scores_zero(outcome, name):
    result = outcome["results"][name]
    assert result.value == 0.0, (name, result)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("infinite_loop", "timeout"),
        ("sleep_past_timeout", "timeout"),
        ("output_flood_1gb", "output_limit"),
        ("segfault_recursion", "crashed"),
        ("os_exit_before_tests", "crashed"),
        ("memory_bomb", "error"),
        ("thread_bomb", "error"),
        ("always_equal", "error"),
        ("rebind_assertion_error", "failed"),
    ],
)
def test_attack_reasons(outcome, name, reason):
    assert outcome["results"][name].reason == reason, outcome["results"][name]


def test_attacks_were_fast(outcome):
    # Every attack is stopped by a limit or a refusal; timeouts are per test, so the batch stays short.
    assert outcome["seconds"] < 40


def test_no_file_written_outside(outcome):
    assert not os.path.exists(TMP_MARK)
    assert not os.path.exists(REPO_MARK)
    assert "PermissionError" in outcome["results"]["write_outside_tmp"].detail


def test_no_network(outcome, listener):
    with pytest.raises(TimeoutError):
        listener.accept()
    assert "socket" in outcome["results"]["network_loopback"].detail


def test_parent_and_zygote_survive(outcome, box):
    assert box.zygote_pid == outcome["zygote"]  # not killed, not restarted
    os.kill(outcome["zygote"], 0)
    assert box.run([]) == []


def test_failure_messages_explain(outcome):
    assert "got 0, expected 2" in outcome["results"]["rebind_assertion_error"].detail
    assert "not a plain value" in outcome["results"]["always_equal"].detail
    assert "time limit" in outcome["results"]["infinite_loop"].detail


def _sandbox_processes(lo: int, hi: int, *, uids: bool = False) -> list:
    """Processes of one sandbox's uids (its judges run as the first uid, children above it); with ``uids``,
    (pid, uid) pairs."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = pathlib.Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(status.split("Uid:")[1].split()[0])
            if lo <= uid < hi:
                found.append((int(entry), uid) if uids else int(entry))
    return found


def test_no_leftover_processes_or_directories(outcome, box):
    # Between jobs only the lanes (judge + spawner per worker, never running model code) stay up, plus at
    # most one standby child per lane, forked ahead of time and still waiting for a program.
    stats = box.stats()
    assert stats["workdirs"] == []
    processes = _sandbox_processes(*stats["uids"], uids=True)
    judges = [pid for pid, uid in processes if uid == stats["uids"][0]]
    standbys = [pid for pid, uid in processes if uid != stats["uids"][0]]
    assert len(judges) == stats["lanes"]
    assert len(standbys) <= stats["lanes"]
    for pid in standbys:  # no program is left: a standby has never entered a working directory
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
    zygote = box.zygote_pid
    zombies = [p for p in os.listdir("/proc") if p.isdigit() and _is_zombie_child_of(int(p), zygote)]
    assert zombies == []
    box.close()
    assert _sandbox_processes(*stats["uids"]) == []
    assert not os.path.exists(f"/proc/{zygote}")
    assert box.run([]) == []


def _is_zombie_child_of(pid: int, parent: int) -> bool:
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] == "Z" and int(fields[1]) == parent


def test_isolation_report(box):
    iso = box.isolation
    assert set(iso) >= {"network_namespace", "private_tmp", "unique_uids", "subreaper"}
    if os.geteuid() == 0 and iso["unique_uids"]:
        assert iso["network_namespace"]


def test_dead_zygote_is_restarted():
    with LocalSandbox(LIMITS, workers=1) as sandbox:
        reward = make_code_reward(backend=sandbox)
        assert reward([fence("def f(x):\n    return x + 1")], tests=[TEST]) == [1.0]
        first = sandbox.zygote_pid
        os.kill(first, 9)
        time.sleep(0.1)
        assert reward([fence("def f(x):\n    return x + 1")], tests=[TEST]) == [1.0]
        assert sandbox.zygote_pid not in (None, first)
    assert not os.path.exists(f"/proc/{first}") or "Z" in pathlib.Path(f"/proc/{first}/stat").read_text()


def test_spawner_detects_leftover_children():
    # The spawner sweeps a child's uid only when something besides its standby is still its child (it is a
    # subreaper: whatever a program started ends up there). Checked in a fresh process with known children.
    script = """
import os, sys, time
from rewards.code._spawner import other_children
path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
assert other_children("/nonexistent/children", None)  # unreadable: assume leftovers
standby = os.fork()
if standby == 0:
    time.sleep(30)
    os._exit(0)
assert not other_children(path, standby)  # only the standby
leftover = os.fork()
if leftover == 0:
    os._exit(0)
time.sleep(0.2)
assert other_children(path, standby)  # a zombie counts too
os.waitpid(leftover, 0)
assert not other_children(path, standby)
os.kill(standby, 9)
os.waitpid(standby, 0)
print("ok")
"""
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        pytest.skip("no /proc/<pid>/task/<tid>/children here (the spawner then always sweeps)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_DONTFORK is Linux's")
def test_spawner_receive_buffer_is_not_forked():
    # The spawner's 16 MiB receive buffer must not reach its children: as part of every child it would be
    # 4,096 page-table entries to copy at fork and unmap at exit (and it held the last request). A child that
    # touches it must fault (SIGSEGV), the parent must not.
    script = """
import os, signal
from rewards.code._spawner import _receive_buffer
buffer = _receive_buffer()
buffer[:4] = b"spec"
pid = os.fork()
if pid == 0:
    buffer[0]
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV, status
assert buffer[:4] == b"spec"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "ok", out.stderr
