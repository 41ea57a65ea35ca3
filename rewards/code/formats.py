"""Test formats of code datasets, turned into sandbox jobs; program extraction; stdout comparison.

Four formats, chosen by which dataset columns a row has:

- ``tests``: a list of assert statements (MBPP style); each statement is one test. An optional
  ``test_setup_code`` (MBPP's column: imports, helper classes or functions; ``""`` for none) runs in the
  program's namespace after the program and before the asserts; its names are visible to the asserts like
  the program's.
- ``test`` + ``entry_point``: HumanEval style; ``test`` defines ``check(candidate)`` and the program must
  define ``entry_point``; the whole ``check`` call is one test.
- ``inputs`` + ``outputs``: stdin/stdout pairs (Codeforces / APPS style); each pair is one test, passed when
  the program exits normally and its stdout equals the expected output line by line after whitespace
  normalisation (runs of spaces/tabs collapse, leading/trailing blanks and trailing empty lines drop; a
  missing or extra line fails).
- ``inputs`` + ``outputs`` + ``fn_name``: call-based tests (APPS ``input_output`` with ``fn_name``); each
  input is the list of positional arguments, each output the expected return value (JSON-like values). The
  program defines ``fn_name`` (or a LeetCode-style ``class Solution`` with that method). A test passes when
  the returned value, compared in the judge, equals the expected one after APPS's leniency
  (:func:`call_output_matches`).

The program is the last fenced Python block of the completion outside the thinking (``<think>...</think>``);
an untagged block counts only when no block is tagged Python. A completion without a fence has no program
(whether unfenced text compiles is not checked here: compiling model output in the library process is
exactly what the sandbox exists to avoid).

Left out: per-test special judges (floating-point tolerance checkers); APPS's raw ``input_output`` JSON
string column (decode it into ``inputs`` / ``outputs`` / ``fn_name`` columns first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Job",
    "call_output_matches",
    "extract_program",
    "job_from_row",
    "normalise_output",
    "outputs_match",
]

Kind = Literal["asserts", "function", "stdio", "call"]
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_TAG = re.compile(r"py|py3|python|python3(?:\.\d+)?")  # python3.11 too; matched in lower case
_MAX_TEST_CHARS = 1 << 26


@dataclass(frozen=True, slots=True)
class Job:
    """One program and its tests, ready for a sandbox backend.

    Attributes:
        program: The Python source to run.
        kind: ``"asserts"`` (each test an assert statement), ``"function"`` (HumanEval ``check`` source),
            ``"stdio"`` (each test a stdin text, ``expected`` the stdout) or ``"call"`` (each test the JSON
            list of positional arguments, ``expected`` the JSON of the return value).
        tests: The tests (assert statements, the ``check`` source, stdin texts or JSON argument lists).
        expected: For ``"stdio"`` / ``"call"``: the expected stdout / JSON return value of each test.
        entry_point: For ``"function"``: the name ``check`` receives as ``candidate``; for ``"call"``: the
            function (or ``Solution`` method) to call.
        setup: For ``"asserts"``: MBPP's ``test_setup_code``, run in the program's namespace after the
            program and before the asserts (``""``: none).
    """

    program: str
    kind: Kind
    tests: tuple[str, ...]
    expected: tuple[str, ...] = ()
    entry_point: str = ""
    setup: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("asserts", "function", "stdio", "call"):
            raise ValueError(f"Job.kind={self.kind!r}; allowed: 'asserts', 'function', 'stdio', 'call'")
        if self.kind in ("stdio", "call") and len(self.expected) != len(self.tests):
            raise ValueError(f"{len(self.tests)} inputs but {len(self.expected)} expected outputs")
        if self.kind in ("function", "call") and not self.entry_point.isidentifier():
            raise ValueError(f"a {self.kind} job needs an identifier entry_point, got {self.entry_point!r}")
        if self.kind == "function" and len(self.tests) != 1:
            raise ValueError(f"a function job needs one check source, got {len(self.tests)}")
        if self.setup and self.kind != "asserts":
            raise ValueError(f"setup code is for assert jobs (MBPP test_setup_code), not kind={self.kind!r}")

    def to_wire(self) -> dict[str, Any]:
        """The job as JSON-able data (what the local judge and remote backends receive)."""
        return {
            "program": self.program,
            "kind": self.kind,
            "tests": list(self.tests),
            "expected": list(self.expected),
            "entry_point": self.entry_point,
            "setup": self.setup,
        }


def _strip_thinking(text: str) -> str:
    end = text.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>") :]
    return "" if "<think>" in text else text  # an unclosed think block: everything is still thinking


def extract_program(text: str) -> str | None:
    """Returns the last fenced Python block of a completion, outside the thinking, or None.

    The last block tagged ``python`` / ``py`` / ``python3`` / ``py3`` / ``python3.x`` (any case) wins; only
    when there is no such block does the last untagged block count (an untagged block after the code is
    usually its sample input or output). Blocks tagged with another language never count. An unterminated
    final fence (the completion was cut off) still yields its code.

    Args:
        text: The completion text, possibly with a ``<think>...</think>`` section.

    Returns:
        The code of the block (without fences), or None when there is none.

    Example:
        >>> extract_program("<think>```python\\nx = 0\\n```</think>Answer:\\n```python\\nprint(1)\\n```")
        'print(1)\\n'
        >>> extract_program("no code here") is None
        True
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_program expects a string, got {type(text).__name__}")
    visible = _strip_thinking(text)
    tagged: list[str] = []
    untagged: list[str] = []
    for match in _FENCE.finditer(visible):
        tag, code = match.group(1).lower(), match.group(2)
        if code.strip() and (not tag or _PY_TAG.fullmatch(tag)):
            (tagged if tag else untagged).append(code)
    blocks = tagged or untagged
    return blocks[-1] if blocks else None


def normalise_output(text: str) -> list[str]:
    """Normalises program output for comparison: one entry per line, blanks collapsed, trailing empties gone.

    Example:
        >>> normalise_output("1  2\\t3 \\r\\n4\\n\\n")
        ['1 2 3', '4']
    """
    lines = [" ".join(line.split()) for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def outputs_match(actual: str, expected: str) -> bool:
    """True when both outputs have the same lines after :func:`normalise_output` (missing/extra lines fail).

    Example:
        >>> outputs_match("3\\n4  5\\n", "3\\n4 5")
        True
        >>> outputs_match("3\\n", "3\\n4")
        False
    """
    return normalise_output(actual) == normalise_output(expected)


_SCALARS = (type(None), bool, int, float, str)


def _json_like(value: Any, depth: int = 0, *, str_keys: bool = False) -> Any:
    """``value`` with every tuple turned into a list; TypeError for anything that is not JSON-like data
    (with ``str_keys``, also for a dict key that is not a string: JSON would silently turn it into one)."""
    kind = type(value)
    if depth > 100:
        raise TypeError("nested more than 100 levels")
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [_json_like(v, depth + 1, str_keys=str_keys) for v in value]
    if kind is dict and all(type(k) in _SCALARS for k in value):
        if str_keys and any(type(k) is not str for k in value):
            key = next(k for k in value if type(k) is not str)
            raise TypeError(
                f"dict key {key!r} is not a string (JSON would turn it into {str(key)!r}; convert the column)"
            )
        return {k: _json_like(v, depth + 1, str_keys=str_keys) for k, v in value.items()}
    raise TypeError(f"{kind.__name__} is not a JSON-like value (None, bool, int, float, str, list, dict)")


def call_output_matches(got: Any, expected: Any) -> bool:
    """APPS's comparison of a call-based test: the returned value equals the expected one.

    Tuples count as lists (JSON has no tuples; APPS converts them too), and an expected value that is a
    one-element list also accepts its element (APPS stores many single outputs list-wrapped). Only plain
    JSON-like values can match: anything else (an object whose ``__eq__`` always returns True, an ``int``
    subclass) is refused before any ``==`` runs.

    Args:
        got: The value the program returned (plain data, rebuilt in the judge).
        expected: The expected value (JSON-like).

    Returns:
        True when they match.

    Example:
        >>> call_output_matches((1, [2, 3]), [1, [2, 3]]), call_output_matches(5, [5])
        (True, True)
        >>> call_output_matches(5, [5, 6]), call_output_matches(1, "1")
        (False, False)
    """
    try:
        got, expected = _json_like(got), _json_like(expected)
    except TypeError:
        return False
    if _equal(got, expected):
        return True
    return type(expected) is list and len(expected) == 1 and _equal(got, expected[0])


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except RecursionError:
        return False


def _json_texts(name: str, value: Any, *, arguments: bool = False) -> tuple[str, ...]:
    """Each item of a call-based column as JSON text (argument lists must be lists)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"column {name!r} must be a list per row, got {type(value).__name__}")
    texts = []
    for i, item in enumerate(value):
        if arguments and not isinstance(item, (list, tuple)):
            raise TypeError(
                f"{name}[{i}] must be the list of positional arguments of one call, got {type(item).__name__}"
            )
        try:
            texts.append(json.dumps(_json_like(item, str_keys=True)))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}[{i}]: {exc}") from None
    if sum(len(t) for t in texts) > _MAX_TEST_CHARS:
        raise ValueError(f"column {name!r} holds more than {_MAX_TEST_CHARS} characters of tests")
    return tuple(texts)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"column {name!r} must be a list of strings per row, got {type(value).__name__}")
    if not all(isinstance(v, str) for v in value):
        raise TypeError(f"column {name!r} must hold strings, got {[type(v).__name__ for v in value][:5]}")
    if sum(len(v) for v in value) > _MAX_TEST_CHARS:
        raise ValueError(f"column {name!r} holds more than {_MAX_TEST_CHARS} characters of tests")
    return tuple(value)


def job_from_row(program: str, row: Mapping[str, Any]) -> Job:
    """Builds the sandbox job for one dataset row, picking the format from its columns.

    Args:
        program: The extracted program.
        row: The row's column values: ``tests`` (optionally ``test_setup_code``), or ``test`` and
            ``entry_point``, or ``inputs`` and ``outputs`` (stdin/stdout texts, or with ``fn_name``: argument
            lists and return values).

    Raises:
        ValueError: If the row has none of the formats. TypeError: If a column has the wrong type.

    Example:
        >>> job_from_row("def f(): return 1", {"tests": ["assert f() == 1"]}).kind
        'asserts'
        >>> job_from_row("def f(a): return a", {"inputs": [[1]], "outputs": [1], "fn_name": "f"}).tests
        ('[1]',)
    """
    if row.get("tests") is not None:
        setup = row.get("test_setup_code") or ""
        if not isinstance(setup, str):
            raise TypeError(f"column 'test_setup_code' must be a string, got {type(setup).__name__}")
        return Job(program=program, kind="asserts", tests=_strings("tests", row["tests"]), setup=setup)
    if row.get("test") is not None:
        test, entry = row["test"], row.get("entry_point")
        if not isinstance(test, str) or not isinstance(entry, str):
            raise TypeError(
                f"HumanEval-style rows need string 'test' and 'entry_point', got "
                f"{type(test).__name__} and {type(entry).__name__}"
            )
        return Job(program=program, kind="function", tests=(test,), entry_point=entry)
    if row.get("inputs") is not None and row.get("outputs") is not None:
        fn_name = row.get("fn_name")
        if fn_name:  # APPS call-based
            if not (isinstance(fn_name, str) and fn_name.isidentifier()):
                raise ValueError(f"column 'fn_name' must be a Python identifier, got {fn_name!r}")
            inputs = _json_texts("inputs", row["inputs"], arguments=True)
            outputs = _json_texts("outputs", row["outputs"])
            kind: Kind = "call"
        else:
            inputs, outputs = _strings("inputs", row["inputs"]), _strings("outputs", row["outputs"])
            kind = "stdio"
        if len(inputs) != len(outputs):
            raise ValueError(f"a row has {len(inputs)} inputs but {len(outputs)} outputs")
        return Job(program=program, kind=kind, tests=inputs, expected=outputs, entry_point=fn_name or "")
    raise ValueError(
        "a code row needs 'tests' (+ optional 'test_setup_code'), or 'test' + 'entry_point', or 'inputs' + "
        f"'outputs' (+ optional 'fn_name'); got {sorted(row)}"
    )
