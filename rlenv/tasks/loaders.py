"""Offline loaders: GSM8K, MATH, HumanEval, MBPP and plain JSONL into the envs' row format.

Every loader takes a *source*: a local file path (``.jsonl``, ``.jsonl.gz``, ``.json``, and ``.parquet``
through the optional ``datasets`` package, imported only then), a Hugging Face ``datasets.Dataset`` object
(duck-typed: anything with ``to_list()``), or a list of dicts. Nothing is downloaded.

Rows come out in the shape the environments and rewards expect:

* math rows: ``problem`` (shown to the model) and ``answer`` (the exact reference for ``math_accuracy``);
  GSM8K's answer is the text after ``####`` (thousands separators removed), MATH's is its ``answer`` field
  or else the last ``\\boxed{...}`` of the solution (balanced braces, so ``\\boxed{\\frac{1}{2}}`` works).
* code rows: ``problem`` plus the columns of ``rewards.code_accuracy``: HumanEval keeps ``test`` and
  ``entry_point`` (the ``check(candidate)`` harness); MBPP gives ``tests`` (assert statements) and
  ``entry_point``.

References: GSM8K (Cobbe et al., 2021); MATH (Hendrycks et al., 2021); HumanEval (Chen et al., 2021);
MBPP (Austin et al., 2021).

Left out on purpose: no hub access, no answer normalisation beyond the format's own convention (verification
is the reward's job).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "LOADERS",
    "boxed_answer",
    "gsm8k_answer",
    "load_gsm8k",
    "load_humaneval",
    "load_jsonl",
    "load_math",
    "load_mbpp",
    "load_records",
]

Source = str | os.PathLike | Iterable[Mapping[str, Any]]


def _read_path(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ValueError(f"no such data file: {str(path)!r}")
    name = path.name
    if name.endswith(".parquet"):
        import datasets  # optional dependency, only for parquet files

        return datasets.Dataset.from_parquet(str(path)).to_list()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        if name.endswith((".jsonl", ".jsonl.gz")):
            rows = []
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as error:
                        raise ValueError(f"{name} line {number} is not JSON: {error}") from None
            return rows
        if name.endswith((".json", ".json.gz")):
            data = json.load(f)
            return data if isinstance(data, list) else [data]
    raise ValueError(f"unsupported data file {name!r}: use .jsonl, .jsonl.gz, .json or .parquet")


def load_records(source: Source) -> list[dict[str, Any]]:
    """Reads a source (path, ``datasets.Dataset`` or list of dicts) into a list of plain dicts.

    Raises:
        ValueError: For a missing or unsupported file.
        TypeError: For anything else, or rows that are not mappings.

    Example:
        >>> load_records([{"q": "1+1", "a": "2"}])
        [{'q': '1+1', 'a': '2'}]
    """
    if isinstance(source, (str, os.PathLike)):
        rows: Any = _read_path(Path(source))
    elif hasattr(source, "to_list"):
        rows = source.to_list()
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        rows = list(source)
    else:
        kind = type(source).__name__
        raise TypeError(f"a source is a file path, a datasets.Dataset or a list of dicts, got {kind}")
    bad = next((r for r in rows if not isinstance(r, Mapping)), None)
    if bad is not None:
        raise TypeError(f"every row must be a mapping, got {type(bad).__name__}")
    return [dict(r) for r in rows]


def _need(rows: list[dict[str, Any]], columns: Iterable[str], what: str, *, text: Iterable[str] = ()) -> None:
    """Every row has ``columns``, and its ``text`` columns are non-blank strings (else ValueError)."""
    columns, text = tuple(columns), tuple(text)
    for i, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise ValueError(f"{what} row {i} lacks column(s) {missing}; it has {sorted(row)}")
        for c in text:
            if not isinstance(row[c], str) or not row[c].strip():
                got = repr(row[c])[:80]
                raise ValueError(f"{what} row {i}: column {c!r} must be a non-empty string, got {got}")


def gsm8k_answer(solution: str) -> str:
    """The final answer of a GSM8K solution (text after the last ``####``, commas removed).

    Example:
        >>> gsm8k_answer("She pays 2 * 500 = 1000.\\n#### 1,000")
        '1000'
    """
    if "####" not in solution:
        raise ValueError(f"GSM8K solution has no '#### answer' line: {solution[-80:]!r}")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not answer:
        raise ValueError(f"GSM8K solution has an empty '#### answer' line: {solution[-80:]!r}")
    return answer


def boxed_answer(solution: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; None if absent.

    Example:
        >>> boxed_answer(r"so $x = \\boxed{\\frac{1}{2}}$.")
        '\\\\frac{1}{2}'
    """
    start = max(solution.rfind("\\boxed{"), solution.rfind("\\fbox{"))
    if start < 0:
        return None
    i = solution.index("{", start) + 1
    depth, j = 1, i
    while j < len(solution) and depth:
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        j += 1
    return solution[i:j - 1].strip() if depth == 0 else None


def load_gsm8k(source: Source) -> list[dict[str, Any]]:
    """GSM8K rows (``question``, ``answer`` ending in ``#### N``) -> ``problem``, ``answer``, ``solution``.

    Example:
        >>> load_gsm8k([{"question": "2+2?", "answer": "2+2=4\\n#### 4"}])[0]["answer"]
        '4'
    """
    rows = load_records(source)
    _need(rows, ("question", "answer"), "GSM8K", text=("question", "answer"))
    return [{"problem": r["question"], "answer": gsm8k_answer(r["answer"]), "solution": r["answer"]}
            for r in rows]


def load_math(source: Source) -> list[dict[str, Any]]:
    """MATH / MATH-500 rows (``problem`` + ``answer`` or ``solution`` with ``\\boxed{}``).

    Rows whose answer cannot be found raise ``ValueError`` (a silent skip would shift indices).

    Example:
        >>> load_math([{"problem": "1/2+1/2?", "solution": "It is $\\\\boxed{1}$."}])[0]["answer"]
        '1'
    """
    rows = load_records(source)
    _need(rows, ("problem",), "MATH", text=("problem",))
    out = []
    for i, r in enumerate(rows):
        answer = "" if r.get("answer") is None else str(r["answer"]).strip()
        answer = answer or boxed_answer(r.get("solution") or "")
        if not answer:
            raise ValueError(f"MATH row {i} has neither an 'answer' nor a \\boxed{{}} solution")
        extra = {k: r[k] for k in ("solution", "level", "subject", "type") if k in r}
        out.append({"problem": r["problem"], "answer": answer, **extra})
    return out


def load_jsonl(source: Source, column_map: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Plain records with a column mapping ``{our name: their name}``; needs ``problem`` and ``answer``.

    Example:
        >>> load_jsonl([{"q": "3*3?", "final": 9}], {"problem": "q", "answer": "final"})
        [{'problem': '3*3?', 'answer': '9'}]
    """
    rows = load_records(source)
    mapping = {"problem": "problem", "answer": "answer", **dict(column_map or {})}
    _need(rows, mapping.values(), "JSONL", text=(mapping["problem"],))
    out = []
    for i, r in enumerate(rows):
        row = {ours: r[theirs] for ours, theirs in mapping.items()}
        answer = row["answer"]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
            got = repr(answer)[:80]
            raise ValueError(f"JSONL row {i}: the answer must be a non-empty string or a number, got {got}")
        row["answer"] = str(answer)
        out.append(row)
    return out


def load_humaneval(source: Source) -> list[dict[str, Any]]:
    """HumanEval rows -> ``problem`` (the signature and docstring), ``test``, ``entry_point``, ``task_id``.

    Example:
        >>> row = {"task_id": "t/0", "prompt": "def f(x):\\n    '''Double x.'''\\n", "canonical_solution": "",
        ...        "test": "def check(candidate):\\n    assert candidate(2) == 4\\n", "entry_point": "f"}
        >>> load_humaneval([row])[0]["entry_point"]
        'f'
    """
    rows = load_records(source)
    _need(rows, ("prompt", "test", "entry_point"), "HumanEval", text=("prompt", "test", "entry_point"))
    return [{"problem": "Complete this Python function:\n```python\n" + r["prompt"] + "```",
             "test": r["test"], "entry_point": r["entry_point"], "task_id": r.get("task_id", str(i)),
             "prompt_code": r["prompt"]} for i, r in enumerate(rows)]


_CALLED = re.compile(r"assert\s+(?:not\s+)?\(?\s*(?:math\.isclose\()?\s*(?:set\()?([A-Za-z_]\w*)\s*\(")


def load_mbpp(source: Source) -> list[dict[str, Any]]:
    """MBPP rows (``text``, ``test_list``, ``test_setup_code``) -> ``problem``, ``tests``, ``entry_point``.

    The first test is shown in the problem (as MBPP's own prompt does) so the function name is known.

    Example:
        >>> row = {"task_id": 2, "text": "Write a function to add two numbers.", "code": "",
        ...        "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}
        >>> load_mbpp([row])[0]["entry_point"]
        'add'
    """
    rows = load_records(source)
    _need(rows, ("test_list",), "MBPP")
    out = []
    for i, r in enumerate(rows):
        text = r.get("text") or r.get("prompt")
        tests = list(r["test_list"])
        match = _CALLED.search(tests[0]) if tests else None
        if text is None or match is None:
            raise ValueError(f"MBPP row {i} needs 'text' (or 'prompt') and an 'assert name(...)' test")
        setup = r.get("test_setup_code") or ""
        out.append({"problem": f"{text}\nYour code should pass this test:\n{tests[0]}",
                    "tests": [f"{setup}\n{t}" if setup else t for t in tests],
                    "entry_point": match.group(1), "task_id": str(r.get("task_id", i))})
    return out


# source kind -> loader (the envs' ``source=`` argument)
LOADERS = {
    "gsm8k": load_gsm8k,
    "math": load_math,
    "jsonl": load_jsonl,
    "humaneval": load_humaneval,
    "mbpp": load_mbpp,
}
