"""Countdown reward: does the last ``<answer>`` equation use every given number once and hit the target?

The task (TinyZero, Jiayi Pan et al. 2025): given numbers such as ``[3, 7, 25, 50]`` and a target such as
``24``, write an equation with ``+ - * /`` and parentheses that uses each number exactly once.

Key idea: the equation is model output, so it is never ``eval``-ed. A hand-written tokenizer (one linear
regular expression with no nested quantifiers) and an operator-precedence parser (shunting-yard: iterative,
so 5,000 nested parentheses cannot overflow the stack) evaluate it in one pass. A literal that is not one of
the given numbers enters the arithmetic as 0, so only the given numbers are ever multiplied; the literals are
then checked against the given numbers as a multiset. Values are exact rationals (``numerator, denominator``
integer pairs), so ``3 / 7 * 7`` is exactly 3 and no float tolerance is involved. There is no power operator,
so TinyZero's hang on ``44**35**19`` cannot happen, and input length and nesting depth are bounded.

Grammar (whitespace between tokens is ignored)::

    expr   := term (('+' | '-') term)*
    term   := factor (('*' | '/') factor)*
    factor := INT | '(' expr ')'
    INT    := [0-9]+ without leading zeros

Rejected as ``invalid_syntax``: ``**``, ``//``, ``%``, ``=``, names, calls, floats, unicode digits, unary
signs (negating is not one of the game's operations), literals with leading zeros, empty answers.

Reasons (:class:`rewards.RewardResult`): ``ok``, ``no_answer_tag``, ``too_long``, ``too_deep``,
``invalid_syntax``, ``unknown_number``, ``number_reused``, ``number_missing``, ``division_by_zero``,
``wrong_value``; ``bad_reference`` (value ``None``) when the row's ``nums`` is empty.

References: TinyZero ``verl/utils/reward_score/countdown.py`` (scoring 0 / format_score / 1, which
``make_countdown_reward(format_score=0.1)`` reproduces); DeepSeek-R1 (arXiv:2501.12948) rule-based rewards.

Left out on purpose: no partial credit for near misses (reward hacking bait); unary minus is not accepted.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewards._contract import Completion, Reward, RewardResult
from rewards.format import last_answer

__all__ = [
    "CountdownConfig",
    "CountdownReward",
    "check_equation",
    "countdown_accuracy",
    "make_countdown_reward",
]

# One token per match: an integer literal, an operator/parenthesis, or any other non-space character (which
# makes the equation invalid). Linear: no nested or overlapping quantifiers.
_TOKEN = re.compile(r"[0-9]+|[-+*/()]|[^ \t\r\n]")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_DIGITS = frozenset("0123456789")


class _Fail(Exception):
    """Internal: a judged failure (carries the reason); never escapes this module."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail if len(detail) <= 200 else detail[:197] + "..."


def _apply(op: str, values: list[tuple[int, int]]) -> None:
    """Applies ``op`` to the top two exact rationals ``(numerator, denominator)`` of ``values``.

    A denominator of 0 marks "undefined" (a division by zero happened below) and propagates; it is reported
    only after the numbers were checked, so reasons keep their order.
    """
    bn, bd = values.pop()
    an, ad = values.pop()
    if op == "+":
        values.append((an * bd + bn * ad, ad * bd))
    elif op == "-":
        values.append((an * bd - bn * ad, ad * bd))
    elif op == "*":
        values.append((an * bn, ad * bd))
    elif bn == 0 or bd == 0:
        values.append((1, 0))
    else:
        num, den = an * bd, ad * bn
        values.append((-num, -den) if den < 0 else (num, den))


def _close_paren(values: list[tuple[int, int]], ops: list[str]) -> None:
    while ops and ops[-1] != "(":
        _apply(ops.pop(), values)
    if not ops:
        raise _Fail("invalid_syntax", "unbalanced ')'")
    ops.pop()


def _push_operator(tok: str, values: list[tuple[int, int]], ops: list[str]) -> None:
    rank = _PRECEDENCE[tok]
    while ops and ops[-1] != "(" and _PRECEDENCE[ops[-1]] >= rank:
        _apply(ops.pop(), values)
    ops.append(tok)


def _finish(values: list[tuple[int, int]], ops: list[str], expect_operand: bool) -> tuple[int, int]:
    if expect_operand:
        raise _Fail("invalid_syntax", "empty equation or dangling operator")
    while ops:
        op = ops.pop()
        if op == "(":
            raise _Fail("invalid_syntax", "unbalanced '('")
        _apply(op, values)
    assert len(values) == 1, f"parser left {len(values)} values"
    return values[0]


def _parse(equation: str, nums: Sequence[int], max_depth: int) -> tuple[tuple[int, int], list[int]]:
    """Tokenizes, parses and evaluates in one pass (shunting-yard with an operand stack).

    A literal that is not among ``nums``, or one past ``len(nums)``, enters the arithmetic as 0: only the
    given numbers are ever multiplied, so the cost is bounded by them whatever the equation; the multiset
    check that follows reports such an equation anyway.

    Returns:
        ((numerator, denominator), literals); a denominator of 0 means a division by zero.

    Raises:
        _Fail: On a syntax error, a literal over 4,000 digits or parentheses deeper than ``max_depth``.
    """
    values: list[tuple[int, int]] = []
    literals: list[int] = []
    allowed, limit = set(nums), len(nums)
    ops: list[str] = []
    depth = 0
    expect_operand = True
    for tok in _TOKEN.findall(equation):
        if expect_operand:
            if tok == "(":
                depth += 1
                if depth > max_depth:
                    raise _Fail("too_deep", f"more than {max_depth} nested parentheses")
                ops.append(tok)
                continue
            if tok[0] not in _DIGITS or (tok[0] == "0" and len(tok) > 1):
                raise _Fail("invalid_syntax", f"expected a number (no leading zeros) or '(', got {tok!r}")
            if len(tok) > 4000:  # int() refuses longer decimal strings
                raise _Fail("too_long", f"a {len(tok)}-digit literal")
            value = int(tok)
            literals.append(value)
            values.append((value, 1) if value in allowed and len(literals) <= limit else (0, 1))
            expect_operand = False
        elif tok == ")":
            _close_paren(values, ops)
            depth -= 1
        elif tok in _PRECEDENCE:
            _push_operator(tok, values, ops)
            expect_operand = True
        else:
            raise _Fail("invalid_syntax", f"expected an operator or ')' but got {tok!r}")
    return _finish(values, ops, expect_operand), literals


def _check_numbers(literals: list[int], nums: Sequence[int]) -> None:
    """Raises :class:`_Fail` unless ``literals`` is exactly the multiset ``nums``."""
    if len(literals) == len(nums) and sorted(literals) == sorted(nums):
        return
    used, given = Counter(literals), Counter(nums)
    unknown = sorted(n for n in used if n not in given)
    if unknown:
        raise _Fail("unknown_number", f"not among the given numbers: {unknown}")
    reused = sorted(n for n in used if used[n] > given[n])
    if reused:
        raise _Fail("number_reused", f"used more often than given: {reused}")
    missing = sorted((given - used).elements())
    raise _Fail("number_missing", f"not used: {missing}")


def check_equation(
    equation: str, nums: Sequence[int], target: int, *, max_chars: int = 1024, max_depth: int = 64
) -> RewardResult:
    """Judges one countdown equation (without tags): 1.0 iff it is valid and equals ``target`` exactly.

    Args:
        equation: The equation text, e.g. ``"(25 - 1) * 1"``; untrusted, never evaluated by Python.
        nums: The given numbers; each must be used exactly once.
        target: The value to reach.
        max_chars: Longer equations score 0 (reason ``too_long``).
        max_depth: Deeper parenthesis nesting scores 0 (reason ``too_deep``).

    Returns:
        A :class:`RewardResult` with value 1.0 (``ok``) or 0.0 and the failure reason.

    Example:
        >>> check_equation("(50 - 25 - 1) * 1", [1, 1, 25, 50], 24).reason
        'ok'
        >>> check_equation("50 - 25 - 1", [1, 1, 25, 50], 24).reason
        'number_missing'
        >>> check_equation("44**35**19", [44, 35, 19], 1).reason
        'invalid_syntax'
    """
    if len(equation) > max_chars:
        return RewardResult(0.0, "too_long", f"{len(equation)} > {max_chars} characters")
    try:
        (num, den), literals = _parse(equation, nums, max_depth)
        _check_numbers(literals, nums)
    except _Fail as fail:
        return RewardResult(0.0, fail.reason, fail.detail)
    if den == 0:
        return RewardResult(0.0, "division_by_zero")
    if num == target * den:
        return RewardResult(1.0, "ok", equation)
    g = math.gcd(num, den)
    if max(abs(num), den).bit_length() > 4096:  # str() of huge ints is slow and capped by Python
        value = "a rational with over 1,000 digits"
    else:
        value = str(num // g) if den == g else f"{num // g}/{den // g}"
    shown = target if abs(target).bit_length() <= 4096 else "an integer with over 1,000 digits"
    detail = f"{equation} = {value}, target {shown}"
    return RewardResult(0.0, "wrong_value", detail if len(detail) <= 200 else detail[:197] + "...")


def _as_int(column: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"column {column!r} must hold ints, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"column {column!r} must hold ints, got {value!r} ({type(value).__name__})") from None


def _row_numbers(nums: Any) -> Sequence[int]:
    if nums.__class__ in (list, tuple) and set(map(type, nums)) <= {int}:  # the common case, fast
        return nums
    if isinstance(nums, (str, bytes)) or not hasattr(nums, "__iter__"):
        raise TypeError(f"column 'nums' must hold a list of ints per row, got {nums!r}")
    return tuple(_as_int("nums", n) for n in nums)


@dataclass(frozen=True, kw_only=True)
class CountdownConfig:
    """Options of :func:`make_countdown_reward`."""

    format_score: float = 0.0
    """Value when an ``<answer>`` block exists but its equation is invalid or wrong (TinyZero: 0.1)."""
    correct_score: float = 1.0
    """Value for a correct equation."""
    max_chars: int = 1024
    """Longer equations score ``format_score`` with reason ``too_long``."""
    max_depth: int = 64
    """Deeper parenthesis nesting scores ``format_score`` with reason ``too_deep``."""

    def __post_init__(self) -> None:
        for field in ("format_score", "correct_score"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{field} must be a finite number, got {value!r}")
        if not 0.0 <= self.format_score <= self.correct_score:
            raise ValueError(
                f"need 0 <= format_score <= correct_score, got format_score={self.format_score!r}, "
                f"correct_score={self.correct_score!r}"
            )
        for field in ("max_chars", "max_depth"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")


class CountdownReward(Reward):
    """Countdown accuracy over the last ``<answer>`` block of each completion; see the module docstring.

    Columns: ``nums`` (list of ints per row) and ``target`` (int per row).

    Example:
        >>> from rewards import countdown_accuracy
        >>> countdown_accuracy(["<answer>(50 - 25 - 1) * 1</answer>", "<answer>50 - 26</answer>"],
        ...                    nums=[[1, 1, 25, 50], [1, 1, 25, 50]], target=[24, 24])
        [1.0, 0.0]
        >>> countdown_accuracy.explain("<answer>50 - 26</answer>", nums=[1, 1, 25, 50], target=24).reason
        'unknown_number'
    """

    columns = ("nums", "target")

    def __init__(self, config: CountdownConfig | None = None, *, name: str | None = None) -> None:
        self.config = config or CountdownConfig()
        c = self.config
        default = "countdown_accuracy"
        if (c.format_score, c.correct_score) != (0.0, 1.0):
            default = f"countdown_{c.format_score:g}_{c.correct_score:g}"
        self.__name__ = name or default
        self.value_range = (0.0, float(c.correct_score))

    def __call__(self, completions: Any, **kwargs: Any) -> list[float | None]:
        # Fast path for the common batch (plain strings, list columns of the right length): the same values
        # without building a Completion and a RewardResult per sample. Anything else takes the general path,
        # which also raises the caller errors.
        nums, target = kwargs.get("nums"), kwargs.get("target")
        if (
            completions.__class__ is list
            and nums.__class__ is list
            and target.__class__ is list
            and len(nums) == len(target) == len(completions)
            and all(c.__class__ is str for c in completions)
        ):
            return [self._value(c, n, t) for c, n, t in zip(completions, nums, target, strict=True)]
        return super().__call__(completions, **kwargs)

    def _value(self, text: str, nums: Any, target: Any) -> float | None:
        """The value :meth:`judge` would give, without its explanation."""
        nums = _row_numbers(nums)
        if target.__class__ is not int:
            target = _as_int("target", target)
        if not nums:
            return None
        equation = last_answer(text)
        if equation is None:
            return 0.0
        c = self.config
        if len(equation) <= c.max_chars:
            try:
                (num, den), literals = _parse(equation, nums, c.max_depth)
            except _Fail:
                return float(c.format_score)
            exact = len(literals) == len(nums) and sorted(literals) == sorted(nums)
            if den and num == target * den and exact:
                return float(c.correct_score)
        return float(c.format_score)

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        nums = _row_numbers(row["nums"])
        target = row["target"]
        if target.__class__ is not int:
            target = _as_int("target", target)
        if not nums:
            return RewardResult(None, "bad_reference", "empty 'nums'")
        equation = last_answer(completion.text)
        if equation is None:
            return RewardResult(0.0, "no_answer_tag")
        c = self.config
        result = check_equation(equation, nums, target, max_chars=c.max_chars, max_depth=c.max_depth)
        if result.value == 1.0:
            return RewardResult(float(c.correct_score), "ok", result.detail)
        return RewardResult(float(c.format_score), result.reason, result.detail)


def make_countdown_reward(
    format_score: float = 0.0,
    correct_score: float = 1.0,
    *,
    max_chars: int = 1024,
    max_depth: int = 64,
    name: str | None = None,
) -> CountdownReward:
    """Builds a countdown reward with TinyZero-style scoring (see :class:`CountdownConfig`).

    Args:
        format_score: Value when an ``<answer>`` block exists but its equation is invalid or wrong.
        correct_score: Value of a correct equation.
        max_chars: Longer equations are rejected (``too_long``).
        max_depth: Deeper parenthesis nesting is rejected (``too_deep``).
        name: The reward's ``__name__``; derived from the scores when omitted.

    Returns:
        A picklable reward with columns ``nums`` and ``target``.

    Raises:
        ValueError: Unless ``0 <= format_score <= correct_score`` (finite) and the bounds are positive ints.

    Example:
        >>> tinyzero = make_countdown_reward(format_score=0.1)
        >>> tinyzero(["no tags", "<answer>3 * 7</answer>", "<answer>3 * 8</answer>"],
        ...          nums=[[3, 8]] * 3, target=[24] * 3)
        [0.0, 0.1, 1.0]
    """
    config = CountdownConfig(
        format_score=format_score, correct_score=correct_score, max_chars=max_chars, max_depth=max_depth
    )
    return CountdownReward(config, name=name)


countdown_accuracy = CountdownReward()
"""1.0 iff the last ``<answer>`` equation uses each of ``nums`` once and equals ``target``, else 0.0."""
