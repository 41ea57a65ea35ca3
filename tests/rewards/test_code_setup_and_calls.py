"""MBPP ``test_setup_code`` and APPS call-based tests (``inputs`` + ``outputs`` + ``fn_name``) end to end,
honest and hostile programs alike. All programs run as ONE batch through the local sandbox (module fixture),
then each test checks one program's score and detail."""

import pytest

from rewards.code import LocalSandbox, SandboxLimits, make_code_reward


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


PAIR_SETUP = "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
CALL = {"inputs": [[1, 2], [3, 4], [[5], 6]], "outputs": [3, [7], [[5, 6]]], "fn_name": "add"}
# add(1, 2) -> 3; add(3, 4) -> 7 (list-wrapped expected); add([5], 6) -> [5, 6] (list-wrapped list)
HONEST_ADD = "def add(a, b):\n    return a + [b] if isinstance(a, list) else a + b"

CASES = {
    # -- MBPP test_setup_code: runs in the program's namespace, after the program, before the asserts
    "setup_import_for_program": (
        "def f(x):\n    return math.sqrt(x)",
        {"tests": ["assert f(9) == 3.0"], "test_setup_code": "import math"},
    ),
    "setup_helper_for_asserts": (
        "def f(x):\n    return x * 2",
        {"tests": ["assert f(3) == double(3)"], "test_setup_code": "def double(x):\n    return 2 * x"},
    ),
    "setup_class_passed_to_program": (
        "def longest(pairs):\n    return max(p.b - p.a for p in pairs)",
        {"tests": ["assert longest([Pair(1, 5), Pair(2, 3)]) == 4"], "test_setup_code": PAIR_SETUP},
    ),
    "setup_empty": ("def f():\n    return 1", {"tests": ["assert f() == 1"], "test_setup_code": ""}),
    "setup_overrides_program": (  # the program cannot pre-empt a setup helper: the setup runs after it
        "def f(x):\n    return 0\ndef expected(x):\n    return 0",
        {"tests": ["assert f(2) == expected(2)"], "test_setup_code": "def expected(x):\n    return x + 1"},
    ),
    "setup_sys_exit": (  # a setup that exits: its later names are missing, the asserts decide (and fail)
        "def f(x):\n    return -1",
        {
            "tests": ["assert f(2) == helper(2)"],
            "test_setup_code": "import sys\nsys.exit(0)\ndef helper(x):\n    return -1",
        },
    ),
    "setup_program_sys_exit": (
        "import sys\nsys.exit(0)\ndef f(x):\n    return x",
        {"tests": ["assert f(2) == 2"], "test_setup_code": "import math"},
    ),
    "threading_and_queue_import": (  # served precompiled (not imported in the zygote: no at-fork work)
        "import threading, queue\ndef f(x):\n    q = queue.Queue()\n"
        "    t = threading.Thread(target=lambda: q.put(x + 1))\n"
        "    t.start()\n    t.join()\n    return q.get()",
        {"tests": ["assert f(1) == 2"], "test_setup_code": ""},
    ),
    # -- library containers and numpy scalars come back as plain data (converted in the child)
    "returns_counter": (  # MBPP 88's reference solution
        "import collections\ndef freq_count(list1):\n"
        "  freq_count= collections.Counter(list1)\n  return freq_count",
        {"tests": ["assert freq_count([10, 10, 20]) == ({10: 2, 20: 1})"], "test_setup_code": ""},
    ),
    "returns_defaultdict_namedtuple_ordereddict": (
        "import collections\nP = collections.namedtuple('P', 'x y')\n"
        "def g(s):\n    d = collections.defaultdict(int)\n    for c in s:\n        d[c] += 1\n"
        "    return [d, P(1, 2), collections.OrderedDict(a=d['a'])]",
        {"tests": ["assert g('aab') == [{'a': 2, 'b': 1}, (1, 2), {'a': 2}]"], "test_setup_code": ""},
    ),
    "returns_numpy_scalars": (
        "import numpy as np\ndef f(x):\n    return np.bool_(x > 0), np.int64(x) * 2, np.float64(x) / 2",
        {"tests": ["assert f(3) == (True, 6, 1.5)", "assert f(3)[0]"], "test_setup_code": ""},
    ),
    "returns_counter_with_patched_eq": (  # converted to a plain dict: the judge compares the real counts
        "import collections\ncollections.Counter.__eq__ = lambda s, o: True\n"
        "def f(x):\n    return collections.Counter(x)",
        {"tests": ["assert f('ab') == {'a': 5}"], "test_setup_code": ""},
    ),
    "returns_own_list_subclass_always_equal": (  # the program's own class: still a program object
        "class L(list):\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return L()",
        {"tests": ["assert f(1) == [2]"], "test_setup_code": ""},
    ),
    "own_list_subclass_keeps_its_methods": (
        "class Stack(list):\n    def push(self, x):\n        self.append(x)\n        return self.peek()\n"
        "    def peek(self):\n        return self[-1]\ndef make():\n    return Stack()",
        {"tests": ["s = make()\nassert s.push(3) == 3 and s.peek() == 3"], "test_setup_code": ""},
    ),
    # -- APPS call-based
    "call_honest": (HONEST_ADD, CALL),
    "call_counter": (
        "from collections import Counter\ndef f(s):\n    return Counter(s)",
        {"inputs": [["ab"], ["aa"]], "outputs": [{"a": 1, "b": 1}, {"a": 1}], "fn_name": "f"},
    ),
    "call_solution_class": (
        "class Solution:\n    def add(self, a, b):\n        return a + [b] if isinstance(a, list) else a + b",
        CALL,
    ),
    "call_tuple_result": (  # tuples count as lists
        "def pair(a, b):\n    return (a, b)",
        {"inputs": [[1, 2]], "outputs": [[1, 2]], "fn_name": "pair"},
    ),
    "call_partial": ("def add(a, b):\n    return 3", CALL),
    "call_always_equal": (
        "class E:\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = None\ndef add(a, b):\n    return E()",
        CALL,
    ),
    "call_int_subclass": (
        "class I(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return I(0)",
        CALL,
    ),
    "call_list_of_always_equal": (
        "class E:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return [E()]",
        CALL,
    ),
    "call_exit_before": ("import sys\nsys.exit(0)\n" + HONEST_ADD, CALL),
    "call_exit_in_call": ("def add(a, b):\n    raise SystemExit(0)", CALL),
    "call_rebinds_builtins": (
        "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
        "builtins.isinstance = lambda *a: True\ndef add(a, b):\n    return 0",
        CALL,
    ),
    "call_missing_function": ("def other(a, b):\n    return a + b", CALL),
    "call_slow_one": (
        "import time\ndef add(a, b):\n    if a == 3:\n        time.sleep(30)\n"
        "    return a + [b] if isinstance(a, list) else a + b",
        CALL,
    ),
}

EXPECTED = {
    "setup_import_for_program": 1.0,
    "setup_helper_for_asserts": 1.0,
    "setup_class_passed_to_program": 1.0,
    "setup_empty": 1.0,
    "setup_overrides_program": 0.0,
    "setup_sys_exit": 0.0,
    "setup_program_sys_exit": 0.0,
    "threading_and_queue_import": 1.0,
    "returns_counter": 1.0,
    "returns_defaultdict_namedtuple_ordereddict": 1.0,
    "returns_numpy_scalars": 1.0,
    "returns_counter_with_patched_eq": 0.0,
    "returns_own_list_subclass_always_equal": 0.0,
    "own_list_subclass_keeps_its_methods": 1.0,
    "call_honest": 1.0,
    "call_counter": 0.5,
    "call_solution_class": 1.0,
    "call_tuple_result": 1.0,
    "call_partial": pytest.approx(1 / 3),
    "call_always_equal": 0.0,
    "call_int_subclass": 0.0,
    "call_list_of_always_equal": 0.0,
    "call_exit_before": 0.0,
    "call_exit_in_call": 0.0,
    "call_rebinds_builtins": 0.0,
    "call_missing_function": 0.0,
    "call_slow_one": pytest.approx(2 / 3),
}


@pytest.fixture(scope="module")
def results():
    limits = SandboxLimits(test_timeout_s=1.5, program_timeout_s=6.0)
    with LocalSandbox(limits, workers=2) as box:
        reward = make_code_reward(backend=box)
        names = list(CASES)
        out = {}
        # one reward call per column set (MBPP rows, APPS rows); each call runs its programs in parallel
        setup_names = [n for n in names if "tests" in CASES[n][1]]
        call_names = [n for n in names if "fn_name" in CASES[n][1]]
        for group in (setup_names, call_names):
            columns = {key: [CASES[n][1][key] for n in group] for key in CASES[group[0]][1]}
            completions = [fence(CASES[n][0]) for n in group]
            out.update(zip(group, reward.explain_all(completions, **columns), strict=True))
        return out


@pytest.mark.parametrize("name", list(CASES))
def test_score(results, name):
    assert results[name].value == EXPECTED[name], results[name].detail


def test_details_say_why(results):
    assert "not a plain value" in results["call_always_equal"].detail
    assert "not a plain value" in results["call_int_subclass"].detail
    assert "test_setup_code SystemExit" in results["setup_sys_exit"].detail
    assert "got 0, expected 3" in results["setup_overrides_program"].detail
    assert "neither 'add' nor a class Solution" in results["call_missing_function"].detail
    assert "time limit" in results["call_slow_one"].detail
    assert "got 3, expected [7]" in results["call_partial"].detail
    assert "got {'a': 1, 'b': 1}, expected {'a': 5}" in results["returns_counter_with_patched_eq"].detail
    assert "not a plain value" in results["returns_own_list_subclass_always_equal"].detail
    assert "got {'a': 2}, expected {'a': 1}" in results["call_counter"].detail
