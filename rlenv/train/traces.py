"""Countdown solutions as training text: equations and step-by-step ``<think>`` traces from solver steps.

Used by :mod:`rlenv.train.corpus` for the cold-start SFT rows and the sibling tasks.

Key idea: the prototype's bottleneck was the arithmetic inside ``<think>``, so the traces are shaped for a
tiny character-level model: one operation per line written exactly as in the pretraining text (``a op b=c``,
no spaces, no prose), the numbers still unused after each step in brackets (``[63 35]``, the state a search
needs), and every complete combination checked against the target restated beside it (``80-42=38 vs 60 no``:
the model copies the target, then compares two adjacent numbers; with a bare ``ok`` / ``no`` it had to
recall the target from the prompt, and on a validation stream most failures after SFT were such verdicts on
correctly computed lines, 74% of 200 problems solved with the restated target vs 51% without, 4,000 SFT
steps each). By default the trace is the environment solver's own depth-first search (:func:`search_trace`):
a fixed procedure the model can execute line by line (try, check, go on) instead of a guess it must make in
one shot; :func:`format_trace` writes only the solution, optionally after failed attempts. The answer is
the equation with minimal parentheses. A trace for ``[44, 19, 35] -> 98``::

    <think>
    44+19=63 [63 35]
    63+35=98 vs 98 ok
    </think>
    <answer>44+19+35</answer>

References: "Teaching Arithmetic to Small Transformers" (Lee et al. 2023: formats with explicit intermediate
steps learn faster); Gandhi et al. 2024, "Stream of Search" (training on a solver's search trace).

Left out on purpose: natural-language reasoning text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from fractions import Fraction

__all__ = [
    "OPS",
    "Step",
    "TraceLine",
    "apply_op",
    "equation_from_steps",
    "format_trace",
    "parse_line",
    "random_steps",
    "search_trace",
]

Step = tuple[int, str, int, int]
"""One solver step ``(a, op, b, result)`` meaning ``a op b = result``."""

OPS = ("+", "-", "*", "/")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def apply_op(a: int, op: str, b: int) -> int | None:
    """``a op b`` when it stays a non-negative integer (the countdown convention for steps), else None."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a >= b else None
    if op == "*":
        return a * b
    return a // b if b != 0 and a % b == 0 else None


TraceLine = tuple[int, str, int, int, int | None, str | None]
"""A parsed trace line ``(a, op, b, c, restated target or None, "ok" / "no" / None)``."""

# `a op b=c`, then the values left (`[80 42]`) or the check (`vs 60 ok`); digits bounded (model text).
_LINE = re.compile(r"(\d{1,9})([-+*/])(\d{1,9})=(\d{1,12})(?: \[[\d ]{0,64}\])?(?: vs (\d{1,9}) (ok|no))?")


def parse_line(line: str) -> TraceLine | None:
    """One line of a search trace as written by :func:`search_trace` (or by a policy imitating it), else None.

    Example:
        >>> parse_line("80-42=38 vs 60 no"), parse_line("49+31=80 [80 42]"), parse_line("80 - 42 = 38")
        ((80, '-', 42, 38, 60, 'no'), (49, '+', 31, 80, None, None), None)
    """
    match = _LINE.fullmatch(line.strip())
    if match is None:
        return None
    a, op, b, c, restated, verdict = match.groups()
    return int(a), op, int(b), int(c), None if restated is None else int(restated), verdict


def equation_from_steps(nums: Sequence[int], steps: Sequence[Step]) -> str:
    """Writes solver steps as one equation over ``nums`` with minimal parentheses.

    Each step consumes two available values (the given numbers or earlier results) and produces one; the
    expression of the last result is the equation.

    Args:
        nums: The given numbers.
        steps: Ordered ``(a, op, b, result)`` steps, each using available values.

    Returns:
        The equation, without spaces, e.g. ``"(44-19)*4"``.

    Raises:
        ValueError: When a step uses a value that is not available or its result is wrong.

    Example:
        >>> equation_from_steps([44, 19, 35], [(44, "+", 19, 63), (63, "+", 35, 98)])
        '44+19+35'
        >>> equation_from_steps([3, 5, 2], [(5, "-", 2, 3), (3, "*", 3, 9)])
        '3*(5-2)'
    """
    pool: list[tuple[int, str, int]] = [(v, str(v), 3) for v in nums]  # (value, text, precedence)
    for a, op, b, result in steps:
        if op not in _PRECEDENCE or Fraction(_apply_exact(a, op, b)) != result:
            raise ValueError(f"bad step {(a, op, b, result)!r}: allowed ops {OPS} with the exact result")
        left, right = _take(pool, a, (a, op, b)), _take(pool, b, (a, op, b))
        prec = _PRECEDENCE[op]
        lt = f"({left[1]})" if left[2] < prec else left[1]
        # The right operand of - and / needs parentheses at equal precedence: a-(b+c), a/(b*c).
        rt = f"({right[1]})" if right[2] < prec or (right[2] == prec and op in "-/") else right[1]
        pool.append((result, f"{lt}{op}{rt}", prec))
    if len(pool) != 1:
        raise ValueError(f"steps {list(steps)!r} leave {len(pool)} values; they must use every number once")
    return pool[0][1]


def _apply_exact(a: int, op: str, b: int) -> Fraction:
    if op == "/" and b == 0:
        return Fraction(-1, 7)  # never an integer result: reported as a bad step
    return {"+": Fraction(a) + b, "-": Fraction(a) - b, "*": Fraction(a) * b}.get(op, Fraction(a, b or 1))


def _take(pool: list[tuple[int, str, int]], value: int, step: tuple) -> tuple[int, str, int]:
    for i, item in enumerate(pool):
        if item[0] == value:
            return pool.pop(i)
    raise ValueError(f"step {step!r} uses {value}, which is not available (have {[p[0] for p in pool]})")


def _checked(line: str, value: int, target: int) -> str:
    """A complete combination, the target restated before the verdict (``80-42=38 vs 60 no``)."""
    return f"{line} vs {target} {'ok' if value == target else 'no'}"


def _trace_lines(nums: Sequence[int], steps: Sequence[Step], target: int) -> list[str]:
    """One line per step; the remaining values in brackets, the last line checked against the target."""
    left = list(nums)
    lines = []
    for i, (a, op, b, result) in enumerate(steps):
        left.remove(a)
        left.remove(b)
        left.insert(0, result)
        line = f"{a}{op}{b}={result}"
        if i < len(steps) - 1:
            lines.append(f"{line} [{' '.join(map(str, left))}]")
        else:
            lines.append(_checked(line, result, target))
    return lines


def format_trace(
    nums: Sequence[int],
    target: int,
    steps: Sequence[Step],
    *,
    failed: Sequence[Step] = (),
    prefilled_think: bool = False,
) -> str:
    """Writes a countdown solution as a short ``<think>`` trace followed by the ``<answer>`` equation.

    Args:
        nums: The given numbers.
        target: The target value; ``steps`` must reach it.
        steps: The solution, ordered ``(a, op, b, result)`` steps using every number once.
        failed: Optional steps of one failed attempt, shown (and marked ``no``) before the solution.
        prefilled_think: Leave out the opening ``<think>`` because the prompt already ends with it
            (TinyZero's template).

    Returns:
        The completion text.

    Raises:
        ValueError: When ``steps`` are inconsistent with ``nums`` or do not reach ``target``.

    Example:
        >>> print(format_trace([44, 19, 35], 98, [(44, "+", 19, 63), (63, "+", 35, 98)]))
        <think>
        44+19=63 [63 35]
        63+35=98 vs 98 ok
        </think>
        <answer>44+19+35</answer>
    """
    equation = equation_from_steps(nums, steps)
    if not steps or steps[-1][3] != target:
        raise ValueError(f"steps {list(steps)!r} do not reach the target {target}")
    lines = []
    if failed:
        equation_from_steps(nums, failed)  # validates the attempt
        lines += _trace_lines(nums, failed, target)
    lines += _trace_lines(nums, steps, target)
    opening = "" if prefilled_think else "<think>"
    return f"{opening}\n" + "\n".join(lines) + f"\n</think>\n<answer>{equation}</answer>"


def _solver_combine(a: int, op: str, b: int) -> int | None:
    """The environment solver's integer rules (``a >= b``): positive differences, exact division by > 1."""
    if op == "-":
        return a - b if a > b else None
    if op == "/":
        return a // b if b > 1 and a % b == 0 else None
    return apply_op(a, op, b)


def search_trace(
    nums: Sequence[int], target: int, *, max_lines: int = 16, prune: bool = False
) -> tuple[list[str], list[Step]] | None:
    """The lines of a depth-first search for ``target``, in the environment solver's order, and its solution.

    Every line is one operation the model can check locally: a partial step shows the values left
    (``49+31=80 [80 42]``), a complete combination restates the target and is marked ``ok`` or ``no``
    (``80-42=38 vs 60 no``); the search stops at the first ``ok``. Pairs are taken in order, larger value
    first, operators in ``+ - * /`` order, exactly as :func:`rlenv.tasks.countdown.solve_steps` explores them,
    so the trace is a fixed procedure rather than a guess.

    Args:
        nums: The given numbers.
        target: The target.
        max_lines: Give up (return None) when the search needs more lines than this.
        prune: Leave out the hopeless last steps: a final product of two operands >= 10 that overshoots
            the target (with two-digit targets, any product of two two-digit numbers). The search order is
            unchanged; only those ``no`` lines are not written.

    Returns:
        ``(lines, solution_steps)``, or None when there is no solution within ``max_lines`` lines.

    Example:
        >>> lines, steps = search_trace([49, 31, 42], 60)
        >>> lines[-2:], steps
        (['49-31=18 [18 42]', '42+18=60 vs 60 ok'], [(49, '-', 31, 18), (42, '+', 18, 60)])
    """
    lines: list[str] = []
    path: list[Step] = []

    def visit(pool: list[int]) -> bool:
        for i in range(len(pool)):
            for j in range(i + 1, len(pool)):
                a, b = max(pool[i], pool[j]), min(pool[i], pool[j])
                rest = [v for k, v in enumerate(pool) if k not in (i, j)]
                for op in OPS:
                    value = _solver_combine(a, op, b)
                    if value is None:
                        continue
                    if prune and not rest and op == "*" and b >= 10 and value > target:
                        continue
                    if len(lines) >= max_lines:
                        return False
                    path.append((a, op, b, value))
                    if not rest:
                        lines.append(_checked(f"{a}{op}{b}={value}", value, target))
                        if value == target:
                            return True
                    else:
                        lines.append(f"{a}{op}{b}={value} [{' '.join(map(str, [value, *rest]))}]")
                        if visit([value, *rest]):
                            return True
                    path.pop()
        return False

    return (lines, path) if visit(list(nums)) else None


def random_steps(nums: Sequence[int], rng: random.Random, max_value: int = 10_000) -> list[Step]:
    """A random sequence of valid steps combining all of ``nums`` (results non-negative integers)."""
    for _ in range(100):
        pool = list(nums)
        steps: list[Step] = []
        while len(pool) > 1:
            i, j = rng.sample(range(len(pool)), 2)
            a, b = max(pool[i], pool[j]), min(pool[i], pool[j])  # the solver's convention
            op = rng.choice(OPS)
            result = _solver_combine(a, op, b)
            if result is None or result > max_value:
                break
            steps.append((a, op, b, result))
            pool = [v for k, v in enumerate(pool) if k not in (i, j)] + [result]
        else:
            return steps
    # Always possible: add everything.
    pool, steps = list(nums), []
    while len(pool) > 1:
        a, b = pool.pop(0), pool.pop(0)
        steps.append((a, "+", b, a + b))
        pool.insert(0, a + b)
    return steps
