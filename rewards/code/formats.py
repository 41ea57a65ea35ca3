"""Test formats of code datasets, turned into sandbox jobs; program extraction; stdout comparison.

Three formats, chosen by which dataset columns a row has:

- ``tests``: a list of assert statements (MBPP style); each statement is one test.
- ``test`` + ``entry_point``: HumanEval style; ``test`` defines ``check(candidate)`` and the program must
  define ``entry_point``; the whole ``check`` call is one test.
- ``inputs`` + ``outputs``: stdin/stdout pairs (Codeforces / APPS style); each pair is one test, passed when
  the program exits normally and its stdout equals the expected output line by line after whitespace
  normalisation (runs of spaces/tabs collapse, leading/trailing blanks and trailing empty lines drop; a
  missing or extra line fails).

The program is the last fenced Python block of the completion outside the thinking (``<think>...</think>``);
a completion without a fence is taken as code only when it has no prose (it compiles is not checked here:
compiling model output in the library process is exactly what the sandbox exists to avoid).

Left out: APPS ``fn_name`` call-based tests, MBPP ``test_setup_code`` (prepend it to each test), per-test
special judges (floating-point tolerance checkers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Job", "extract_program", "job_from_row", "normalise_output", "outputs_match"]

Kind = Literal["asserts", "function", "stdio"]
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_TAGS = {"", "python", "py", "python3", "py3"}
_MAX_TEST_CHARS = 1 << 26


@dataclass(frozen=True, slots=True)
class Job:
    """One program and its tests, ready for a sandbox backend.

    Attributes:
        program: The Python source to run.
        kind: ``"asserts"`` (each test an assert statement), ``"function"`` (HumanEval ``check`` source) or
            ``"stdio"`` (each test a stdin text, ``expected`` the stdout).
        tests: The tests (assert statements, the ``check`` source, or stdin texts).
        expected: For ``"stdio"``: the expected stdout of each test; empty otherwise.
        entry_point: For ``"function"``: the name ``check`` receives as ``candidate``.
    """

    program: str
    kind: Kind
    tests: tuple[str, ...]
    expected: tuple[str, ...] = ()
    entry_point: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("asserts", "function", "stdio"):
            raise ValueError(f"Job.kind={self.kind!r}; allowed: 'asserts', 'function', 'stdio'")
        if self.kind == "stdio" and len(self.expected) != len(self.tests):
            raise ValueError(f"{len(self.tests)} stdin inputs but {len(self.expected)} expected outputs")
        if self.kind == "function" and (len(self.tests) != 1 or not self.entry_point.isidentifier()):
            raise ValueError(
                f"a function job needs one check source and an identifier entry_point, "
                f"got {len(self.tests)} sources and entry_point={self.entry_point!r}"
            )

    def to_wire(self) -> dict[str, Any]:
        """The job as JSON-able data (what the local judge and remote backends receive)."""
        return {
            "program": self.program,
            "kind": self.kind,
            "tests": list(self.tests),
            "expected": list(self.expected),
            "entry_point": self.entry_point,
        }


def _strip_thinking(text: str) -> str:
    end = text.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>") :]
    return "" if "<think>" in text else text  # an unclosed think block: everything is still thinking


def extract_program(text: str) -> str | None:
    """Returns the last fenced Python block of a completion, outside the thinking, or None.

    Blocks tagged ``python``/``py``/``python3`` or untagged count; blocks tagged with another language do
    not. An unterminated final fence (the completion was cut off) still yields its code.

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
    blocks = [m.group(2) for m in _FENCE.finditer(visible) if m.group(1).lower() in _PY_TAGS]
    blocks = [b for b in blocks if b.strip()]
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
        row: The row's column values: ``tests``, or ``test`` and ``entry_point``, or ``inputs`` and
            ``outputs``.

    Raises:
        ValueError: If the row has none of the three formats. TypeError: If a column has the wrong type.

    Example:
        >>> job_from_row("def f(): return 1", {"tests": ["assert f() == 1"]}).kind
        'asserts'
    """
    if row.get("tests") is not None:
        return Job(program=program, kind="asserts", tests=_strings("tests", row["tests"]))
    if row.get("test") is not None:
        test, entry = row["test"], row.get("entry_point")
        if not isinstance(test, str) or not isinstance(entry, str):
            raise TypeError(
                f"HumanEval-style rows need string 'test' and 'entry_point', got "
                f"{type(test).__name__} and {type(entry).__name__}"
            )
        return Job(program=program, kind="function", tests=(test,), entry_point=entry)
    if row.get("inputs") is not None and row.get("outputs") is not None:
        inputs, outputs = _strings("inputs", row["inputs"]), _strings("outputs", row["outputs"])
        if len(inputs) != len(outputs):
            raise ValueError(f"a row has {len(inputs)} inputs but {len(outputs)} outputs")
        return Job(program=program, kind="stdio", tests=inputs, expected=outputs)
    raise ValueError(
        f"a code row needs 'tests', or 'test' + 'entry_point', or 'inputs' + 'outputs'; got {sorted(row)}"
    )
