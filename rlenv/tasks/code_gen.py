"""Procedural function-writing tasks with generated tests: list, string and number transforms.

Key idea: a task is a random pipeline of small, well-described steps (``keep the even numbers``, ``multiply
each by 3``, ``return the sum``). The same pipeline, run by *our* reference implementation on random inputs,
yields the expected outputs, which become ``assert name(input) == output`` tests. Difficulty (1-5) sets the
number of steps and tests. Item ``i`` of (seed, split) comes from its own SeedSequence stream.

Rows carry ``problem`` (the specification with the signature), ``entry_point`` and ``tests`` (assert
statements), the columns ``rewards.code_accuracy`` runs in its sandbox.

References: MBPP (Austin et al., 2021) for the task/test format.

Left out on purpose: no classes, I/O or stdin tasks; model code is never run here (that is the reward's
sandboxed job); only our own reference steps are executed, to compute expected outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlenv.tasks._seeding import UniformStream, draw_on_side, item_rng

__all__ = ["KINDS", "generate", "generate_item"]

# (specification sentence, our reference function, the same step as Python source over the variable ``v``)
Step = tuple[str, Callable[[Any], Any], str]


def _list_maps(s: UniformStream) -> list[Step]:
    k, t = s.randint(2, 9), s.randint(-5, 20)
    return [
        (
            f"keep only the numbers greater than {t}",
            lambda xs: [x for x in xs if x > t],
            f"[x for x in v if x > {t}]",
        ),
        (
            "keep only the even numbers",
            lambda xs: [x for x in xs if x % 2 == 0],
            "[x for x in v if x % 2 == 0]",
        ),
        (
            f"keep only the multiples of {k}",
            lambda xs: [x for x in xs if x % k == 0],
            f"[x for x in v if x % {k} == 0]",
        ),
        (f"multiply each number by {k}", lambda xs: [x * k for x in xs], f"[x * {k} for x in v]"),
        (f"add {t} to each number", lambda xs: [x + t for x in xs], f"[x + {t} for x in v]"),
        ("replace each number by its absolute value", lambda xs: [abs(x) for x in xs], "[abs(x) for x in v]"),
        ("square each number", lambda xs: [x * x for x in xs], "[x * x for x in v]"),
        ("sort the numbers in ascending order", sorted, "sorted(v)"),
        ("reverse the order of the numbers", lambda xs: xs[::-1], "v[::-1]"),
        (
            "remove duplicates, keeping the first occurrence of each",
            lambda xs: list(dict.fromkeys(xs)),
            "list(dict.fromkeys(v))",
        ),
    ]


_LIST_ENDS: list[Step] = [
    ("return the sum of the numbers (0 for an empty list)", sum, "sum(v)"),
    ("return how many numbers there are", len, "len(v)"),
    (
        "return the largest number (None for an empty list)",
        lambda xs: max(xs) if xs else None,
        "max(v) if v else None",
    ),
    ("return the list", lambda xs: xs, "v"),
]


def _str_maps(s: UniformStream) -> list[Step]:
    k = s.randint(1, 5)
    c = s.choice("aeiourstln")
    return [
        ("reverse the string", lambda w: w[::-1], "v[::-1]"),
        ("convert it to upper case", str.upper, "v.upper()"),
        (
            "remove every vowel (a, e, i, o, u, either case)",
            lambda w: "".join(ch for ch in w if ch not in "aeiouAEIOU"),
            "''.join(ch for ch in v if ch not in 'aeiouAEIOU')",
        ),
        (f"replace every {c!r} with '*'", lambda w: w.replace(c, "*"), f"v.replace({c!r}, '*')"),
        (
            f"shift every lower-case letter {k} places forward in the alphabet, wrapping z to a",
            lambda w: "".join(chr((ord(ch) - 97 + k) % 26 + 97) if "a" <= ch <= "z" else ch for ch in w),
            f"''.join(chr((ord(ch) - 97 + {k}) % 26 + 97) if 'a' <= ch <= 'z' else ch for ch in v)",
        ),
        ("swap the case of every letter", str.swapcase, "v.swapcase()"),
        (
            f"keep only the characters at indices 0, {k + 1}, {2 * (k + 1)}, ... (every {k + 1} steps)",
            lambda w: w[:: k + 1],
            f"v[::{k + 1}]",
        ),
        ("remove the spaces", lambda w: w.replace(" ", ""), "v.replace(' ', '')"),
    ]


_STR_ENDS: list[Step] = [
    ("return the string", lambda w: w, "v"),
    ("return its length", len, "len(v)"),
    ("return how many distinct characters it has", lambda w: len(set(w)), "len(set(v))"),
]


def _num_steps(s: UniformStream) -> list[Step]:
    k = s.randint(2, 9)
    return [
        (
            "take the sum of its decimal digits",
            lambda n: sum(int(d) for d in str(abs(n))),
            "sum(int(d) for d in str(abs(v)))",
        ),
        (f"multiply it by {k}", lambda n: n * k, f"v * {k}"),
        (f"take it modulo {k} (Python's %, never negative)", lambda n: n % k, f"v % {k}"),
        (
            "replace it by the number of its decimal digits (ignoring the sign)",
            lambda n: len(str(abs(n))),
            "len(str(abs(v)))",
        ),
        (
            "reverse its decimal digits (keeping the sign)",
            lambda n: (-1 if n < 0 else 1) * int(str(abs(n))[::-1]),
            "(-1 if v < 0 else 1) * int(str(abs(v))[::-1])",
        ),
        (f"add {k} to it", lambda n: n + k, f"v + {k}"),
        ("square it", lambda n: n * n, "v * v"),
    ]


def _pick(s: UniformStream, pool: list[Step], k: int) -> list[Step]:
    """``k`` distinct steps (repeating a step would make a silly specification)."""
    return s.shuffle(list(pool))[:k]


def _list_task(s: UniformStream, level: int) -> tuple:
    steps = _pick(s, _list_maps(s), min(level, 4))
    end = s.choice(_LIST_ENDS) if level >= 2 else _LIST_ENDS[-1]
    lo, hi = -20, 20 + 10 * level

    def draw() -> list[int]:
        return [s.randint(lo, hi) for _ in range(s.randint(0, 4 + 2 * level))]

    return "xs: list[int]", "Given a list of integers xs", _pipeline(steps, end), draw, [*steps, end]


def _str_task(s: UniformStream, level: int) -> tuple:
    steps = _pick(s, _str_maps(s), min(level, 4))
    end = s.choice(_STR_ENDS) if level >= 3 else _STR_ENDS[0]
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ"

    def draw() -> str:
        return "".join(s.choice(alphabet) for _ in range(s.randint(0, 6 + 3 * level)))

    return "s: str", "Given a string s", _pipeline(steps, end), draw, [*steps, end]


def _num_task(s: UniformStream, level: int) -> tuple:
    steps = _pick(s, _num_steps(s), level + 1)
    hi = 10 ** (1 + level // 2)

    def draw() -> int:
        return s.randint(-hi, hi) if level >= 3 else s.randint(0, hi)

    return "n: int", "Given an integer n", _pipeline(steps[:-1], steps[-1]), draw, steps


def _pipeline(steps: list[Step], end: Step) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        for _, fn, _ in steps:
            x = fn(x)
        return end[1](x)

    return run


def _reference_source(param: str, steps: list[Step]) -> str:
    """A correct solution as Python source (for SFT traces and for testing the generated tests)."""
    body = (
        [f"    v = {param}"] + [f"    v = {src}" for _, _, src in steps[:-1]] + [f"    return {steps[-1][2]}"]
    )
    return f"def solve({param}):\n" + "\n".join(body) + "\n"


# kind -> task builder(stream, level) -> (signature, preamble, reference, input sampler, steps)
KINDS: dict[str, Callable[[UniformStream, int], tuple]] = {
    "list": _list_task,
    "string": _str_task,
    "number": _num_task,
}


def generate_item(
    index: int,
    *,
    seed: int = 0,
    split: str = "train",
    difficulty: int = 2,
    kinds: tuple[str, ...] = tuple(KINDS),
) -> dict[str, Any]:
    """Item ``index`` of the (seed, split) stream: problem, entry point, tests, kind and a solution.

    Args:
        index: Item index (>= 0).
        seed: Data-set seed.
        split: ``"train"`` or ``"test"`` (no task text is on both sides: see
            :func:`rlenv.tasks._seeding.split_of`).
        difficulty: 1 (one step, 4 tests) to 5 (five steps, 8 tests).
        kinds: Task kinds to draw from, a subset of :data:`KINDS`.

    Returns:
        The specification, the function name, the assert statements testing it, the task kind, and a
        correct ``solution`` (source text; never shown in the prompt).

    Example:
        >>> item = generate_item(0, seed=1, kinds=("number",))
        >>> item["tests"][0].startswith("assert solve(")
        True
    """
    if difficulty not in (1, 2, 3, 4, 5):
        raise ValueError(f"difficulty={difficulty!r} must be in 1..5")
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"kinds={kinds!r}: each must be one of {sorted(KINDS)}")
    s = UniformStream(item_rng("code", seed, split, index))

    def task() -> tuple:
        kind = s.choice(tuple(kinds))
        signature, preamble, reference, draw, steps = KINDS[kind](s, difficulty)
        numbered = "\n".join(f"{i}. {text[0].upper()}{text[1:]}." for i, (text, *_) in enumerate(steps, 1))
        problem = (f"Write a Python function `solve({signature})`. {preamble}, apply these steps in order:"
                   f"\n{numbered}")
        return kind, signature, reference, draw, steps, problem

    kind, signature, reference, draw, steps, problem = draw_on_side(
        split, task, lambda t: f"code {t[-1]}", f"{kinds} task")
    inputs: list[Any] = []
    for _ in range(8 * (3 + difficulty)):  # distinct inputs when the input space allows
        x = draw()
        if x not in inputs:
            inputs.append(x)
        if len(inputs) == 3 + difficulty:
            break
    tests = [f"assert solve({x!r}) == {reference(x)!r}" for x in inputs]
    solution = _reference_source(signature.split(":")[0], steps)
    return {"problem": problem, "entry_point": "solve", "tests": tests, "kind": kind, "solution": solution}


def generate(
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    start: int = 0,
    difficulty: int = 2,
    kinds: tuple[str, ...] = tuple(KINDS),
) -> list[dict[str, Any]]:
    """Items ``start .. start + n - 1`` (see :func:`generate_item`).

    Example:
        >>> len(generate(3, seed=0, difficulty=5))
        3
    """
    return [
        generate_item(i, seed=seed, split=split, difficulty=difficulty, kinds=kinds)
        for i in range(start, start + n)
    ]
