"""Pure-Python parts of the code reward: extraction, output comparison, rows -> jobs, wire encoding, configs.

No sandbox is started here (fast); the sandbox is exercised in test_code_sandbox.py / test_code_reward.py.
"""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.code import (
    Job,
    SandboxLimits,
    call_output_matches,
    extract_program,
    job_from_row,
    make_code_reward,
    outputs_match,
)
from rewards.code._wire import WireError, decode, encode

# -- extraction --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nprint(1)\n```", "print(1)\n"),  # plain fenced block
        ("```py\na\n```\ntext\n```python\nb\n```", "b\n"),  # the last block wins
        ("```\nx = 1\n```", "x = 1\n"),  # untagged fences count
        ("```bash\nrm -rf /\n```", None),  # other languages do not
        ("<think>```python\nx\n```</think>no code", None),  # code inside the thinking is ignored
        ("<think>```python\nx\n```</think>```python\ny\n```", "y\n"),  # the answer's block is used
        ("<think>still thinking ```python\nx\n```", None),  # unclosed thinking: nothing is the answer yet
        ("```python\ndef f():\n    return 1", "def f():\n    return 1"),  # cut-off final fence still counts
        ("```python\n\n```", None),  # an empty block is no program
        ("no code at all", None),
        ("```Python3\nz\n```", "z\n"),  # tag case and python3
        ("```python3.11\nz\n```", "z\n"),  # python3.x
        ("```py3\nz\n```", "z\n"),
        ("```python\nprint(2 * int(input()))\n```\nExample:\n```\n4\n```", "print(2 * int(input()))\n"),
        ("```\nx = 1\n```\n```\ny = 2\n```", "y = 2\n"),  # untagged only: the last one
        ("```python\na\n```\n```\nb\n```\n```py\nc\n```\n```\nd\n```", "c\n"),  # tagged wins
        ("```pythonic\nz\n```", None),  # not a python tag
    ],
)
def test_extract_program(text, expected):
    assert extract_program(text) == expected


def test_extract_program_rejects_non_strings():
    with pytest.raises(TypeError, match="string"):
        extract_program(None)


# -- stdout comparison -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected", "match"),
    [
        ("1 2\n3\n", "1 2\n3", True),  # trailing newline
        ("1   2 \t\n3", "1 2\n3\n\n", True),  # inner runs of blanks and trailing blank lines
        ("  1 2\r\n3\r\n", "1 2\n3", True),  # leading blanks, CRLF
        ("1 2\n", "1 2\n3", False),  # a missing line fails
        ("1 2\n3\n4\n", "1 2\n3", False),  # an extra line fails
        ("12\n3", "1 2\n3", False),  # blanks inside a line are not removed, only collapsed
        ("1\n\n2", "1\n2", False),  # an inner empty line is a line
        ("", "", True),
    ],
)
def test_outputs_match(actual, expected, match):
    assert outputs_match(actual, expected) is match


# -- rows -> jobs ------------------------------------------------------------------------------------------


def test_job_from_row_formats():
    assert job_from_row("p", {"tests": ["assert 1"]}).kind == "asserts"
    job = job_from_row("p", {"test": "def check(c): pass", "entry_point": "f"})
    assert (job.kind, job.entry_point) == ("function", "f")
    job = job_from_row("p", {"inputs": ["1\n"], "outputs": ["2\n"]})
    assert (job.kind, job.tests, job.expected) == ("stdio", ("1\n",), ("2\n",))


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({}, ValueError),  # no format at all
        ({"inputs": ["1"], "outputs": ["1", "2"]}, ValueError),  # mismatched pairs
        ({"tests": "assert 1"}, TypeError),  # a string instead of a list
        ({"tests": [1]}, TypeError),  # non-string test
        ({"test": "def check(c): pass", "entry_point": None}, TypeError),  # missing entry point
    ],
)
def test_job_from_row_caller_errors(row, error):
    with pytest.raises(error):
        job_from_row("p", row)


def test_job_from_row_setup_and_call_formats():
    job = job_from_row("p", {"tests": ["assert f() == 1"], "test_setup_code": "import math"})
    assert (job.kind, job.setup) == ("asserts", "import math")
    assert job_from_row("p", {"tests": ["assert 1"], "test_setup_code": ""}).setup == ""  # empty: none
    row = {"inputs": [[1, [2, 3]], ["a"]], "outputs": [[5], "b"], "fn_name": "solve"}
    job = job_from_row("p", row)
    assert (job.kind, job.entry_point) == ("call", "solve")
    assert job.tests == ("[1, [2, 3]]", '["a"]') and job.expected == ("[5]", '"b"')
    assert job_from_row("p", {"inputs": ["1\n"], "outputs": ["1\n"], "fn_name": ""}).kind == "stdio"


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"tests": ["assert 1"], "test_setup_code": 1}, TypeError),  # setup must be a string
        ({"inputs": [1], "outputs": [1], "fn_name": "f"}, TypeError),  # an input is an argument list
        ({"inputs": [[object()]], "outputs": [1], "fn_name": "f"}, TypeError),  # values must be JSON-like
        ({"inputs": [[1]], "outputs": [{1, 2}], "fn_name": "f"}, TypeError),  # no sets in JSON
        ({"inputs": [[1]], "outputs": [{1: 2}], "fn_name": "f"}, TypeError),  # JSON would make "1" of 1
        ({"inputs": [[{"a": {(1, 2): 3}}]], "outputs": [1], "fn_name": "f"}, TypeError),  # nested keys too
        ({"inputs": [[{True: 3}]], "outputs": [1], "fn_name": "f"}, TypeError),
        ({"inputs": [[1]], "outputs": [1, 2], "fn_name": "f"}, ValueError),  # mismatched pairs
        ({"inputs": [[1]], "outputs": [1], "fn_name": "not a name"}, ValueError),
    ],
)
def test_job_from_row_setup_and_call_errors(row, error):
    with pytest.raises(error):
        job_from_row("p", row)


def test_call_columns_name_the_non_string_key():
    with pytest.raises(TypeError, match="dict key 1 is not a string"):
        job_from_row("p", {"inputs": [[{1: 7}]], "outputs": [7], "fn_name": "f"})
    job = job_from_row("p", {"inputs": [[{"1": 7}]], "outputs": [7], "fn_name": "f"})
    assert job.tests == ('[{"1": 7}]',)


class _Eq:
    def __eq__(self, other):
        return True


class _Int(int):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize(
    ("got", "expected", "match"),
    [
        (3, 3, True),
        ((1, 2), [1, 2], True),  # tuples count as lists (JSON has no tuples)
        ([(1, 2), (3, 4)], [[1, 2], [3, 4]], True),  # also nested, as APPS does for lists of tuples
        (5, [5], True),  # a list-wrapped single output accepts the bare value (APPS)
        ([5], [5], True),
        (5, [5, 6], False),  # only a one-element list unwraps
        (1, "1", False),
        ({"a": [1]}, {"a": [1]}, True),
        (None, [], False),
        (_Eq(), 3, False),  # refused before any == runs
        (_Int(4), 3, False),  # exact builtin types only
        ([1, _Eq()], [1, 2], False),
        ({1, 2}, [1, 2], False),  # sets are not JSON-like
    ],
)
def test_call_output_matches(got, expected, match):
    assert call_output_matches(got, expected) is match


def test_job_validation():
    with pytest.raises(ValueError, match="kind"):
        Job(program="", kind="shell", tests=())
    with pytest.raises(ValueError, match="entry_point"):
        Job(program="", kind="function", tests=("x",), entry_point="not an identifier")
    with pytest.raises(ValueError, match="entry_point"):
        Job(program="", kind="call", tests=("[1]",), expected=("1",))
    with pytest.raises(ValueError, match="setup"):
        Job(program="", kind="stdio", tests=("",), expected=("",), setup="import os")


# -- wire encoding: exact types, round trip, refusal of anything else --------------------------------------

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
    | st.complex_numbers(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.integers() | st.text(max_size=3), inner, max_size=3)
    | st.frozensets(st.integers(), max_size=3),
    max_leaves=12,
)  # fmt: skip


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@given(plain)
def test_wire_round_trip_keeps_exact_types(value):
    assert _same(decode(encode(value)), value)


def test_wire_big_ints_and_special_floats():
    big = 7**5000  # beyond int's 4300-digit str conversion limit
    assert decode(encode(big)) == big
    assert math.isnan(decode(encode(float("nan"))))
    assert decode(encode(float("-inf"))) == float("-inf")
    assert type(decode(encode(True))) is bool and type(decode(encode(1.0))) is float


class _AlwaysEqual:
    def __eq__(self, other):
        return True


class _MyInt(int):
    pass


@pytest.mark.parametrize("value", [_AlwaysEqual(), _MyInt(3), [1, _AlwaysEqual()], iter([1]), print])
def test_wire_refuses_non_plain_values(value):
    with pytest.raises(WireError):
        encode(value)


def test_wire_references_only_where_resolved():
    marker = object()
    data = encode([1, marker], ref=lambda obj: 7 if obj is marker else None)
    assert data == ["L", [1, ["O", 7]]]
    assert decode(data, resolve={7: "program object"}.__getitem__) == [1, "program object"]
    with pytest.raises(WireError):  # the judge decodes the child's replies without a resolver
        decode(data)


def test_child_sends_library_containers_as_plain_data():
    import collections

    from rewards.code._child import plain

    point = collections.namedtuple("Point", "x y")
    value = [
        collections.Counter("aab"),
        collections.OrderedDict(b=1),
        collections.defaultdict(list, {1: [point(1, 2)]}),
        point(3, (4, collections.Counter())),
    ]
    converted = plain(value)
    assert _same(converted, [{"a": 2, "b": 1}, {"b": 1}, {1: [(1, 2)]}, (3, (4, {}))])
    assert _same(decode(encode(converted)), converted)
    own = type("Stack", (list,), {"__module__": "__sandbox__", "__eq__": lambda s, o: True})([1])
    for kept in (_MyInt(3), _AlwaysEqual(), own, [own]):  # scalar subclasses, the program's own classes
        with pytest.raises(WireError):
            encode(plain(kept))
    nested = collections.Counter()
    for _ in range(150):
        nested = [nested]
    with pytest.raises(WireError, match="deep"):
        encode(plain(nested))


def test_child_sends_numpy_scalars_as_plain_data():
    np = pytest.importorskip("numpy")
    from rewards.code._child import plain

    converted = plain([np.bool_(True), np.int64(7), np.float32(0.5), np.str_("s"), np.complex128(1j)])
    assert _same(converted, [True, 7, 0.5, "s", 1j])
    with pytest.raises(WireError):  # arrays are not scalars: comparing them is elementwise
        encode(plain(np.arange(3)))


def test_wire_refuses_cycles():
    a = []
    a.append(a)
    with pytest.raises(WireError, match="deep"):
        encode(a)


@pytest.mark.parametrize(
    "data", [["X", 1], ["L"], ["D", [[1]]], ["S", [["L", []]]], ["I", "zz"], {"a": 1}, 1.5, ["O", 0]]
)
def test_wire_decode_rejects_malformed_data(data):
    with pytest.raises(WireError):
        decode(data)


# -- configuration -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"test_timeout_s": 0}, {"program_timeout_s": -1}, {"memory_mb": 1}, {"max_processes": 0}],
)
def test_limits_validation(kwargs):
    with pytest.raises(ValueError, match="SandboxLimits"):
        SandboxLimits(**kwargs)


def test_make_code_reward_validation():
    with pytest.raises(ValueError, match="mode"):
        make_code_reward("partial")
    with pytest.raises(TypeError, match="backend"):
        make_code_reward(backend=object())
    reward = make_code_reward()
    with pytest.raises(ValueError, match="tests"):
        reward(["```python\nx=1\n```"], answer=["1"])  # no test column at all
