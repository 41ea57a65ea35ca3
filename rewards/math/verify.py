"""The verification pipeline: gold and prediction strings -> a verdict, fast path first.

Key idea: :func:`check` runs normalisation, our parser and the structural comparison with a comparator.
In-process it uses :class:`rewards.math.fast.FastComparator` and may answer "undecided"; the worker runs the
same function with the sympy comparator, which always decides. Parsed golds are cached (a GRPO group shares
one gold across all its completions).

:func:`verify` is the public one-pair entry point; it sends undecided pairs to the shared worker pool.

Left out on purpose: no partial credit; a verdict is right, wrong or "gold unparseable".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

from rewards.math.compare import Comparator, equivalent
from rewards.math.extract import extract_gold
from rewards.math.fast import FastComparator, TooLarge
from rewards.math.normalize import normalize, strip_thousands
from rewards.math.parser import ParseError, parse

__all__ = ["Verdict", "check", "verify"]

Node = tuple[Any, ...]
_SCALAR_GOLD_WITH_COMMAS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_FAST = FastComparator()


class Verdict(NamedTuple):
    """``value`` is True/False, or None (fast path undecided, or gold unparseable); ``reason`` says why."""

    value: bool | None
    reason: str


@lru_cache(maxsize=8192)
def prepare_gold(gold: str) -> Node | None:
    """The gold answer's AST, or ``None`` when it cannot be parsed (cached)."""
    try:
        text = normalize(gold)
        if _SCALAR_GOLD_WITH_COMMAS.match(text):
            text = text.replace(",", "")
        return parse(text)
    except (ParseError, ValueError, RecursionError):
        return None


def _is_scalar(node: Node) -> bool:
    return node[0] not in ("list", "set", "tuple", "interval", "union", "matrix")


def _prepare_pred(pred: str, gold: Node) -> tuple[Node | None, str]:
    try:
        text = normalize(pred)
    except ValueError:
        return None, "too_long"
    if _is_scalar(gold) and "," in text:
        text = strip_thousands(text)
    try:
        return parse(text), "ok"
    except ParseError:
        return None, "unparseable_answer"


_CHOICE_PRED = re.compile(r"^\s*(?:\\choice\{([A-Z])\}|\(\s*([A-Z])\s*\)|([A-Z]))(?![A-Za-z0-9{])")


_OTHER_CHOICE = re.compile(r"\\choice\{|(?<![A-Za-z\\])[A-E](?![A-Za-z])|\b(?:or|and)\b")


def _check_choice(letter: str, pred: str) -> Verdict:
    """Multiple choice: the prediction must lead with the gold's letter (``B``, ``(B)``, ``(B) 12``)."""
    try:
        text = normalize(pred)
        m = _CHOICE_PRED.match(text)
    except ValueError:
        return Verdict(False, "too_long")
    if m is None:
        return Verdict(False, "unparseable_answer")
    if _OTHER_CHOICE.search(text[m.end() :]):
        return Verdict(False, "wrong_value")  # "A or B": a hedge between choices
    return Verdict(True, "ok") if letter in m.groups() else Verdict(False, "wrong_value")


def _same_text(gold: str, pred: str) -> bool:
    return " ".join(gold.split()) == " ".join(pred.split())  # "2 3" is not "23"


def check(gold: str | None, pred: str | None, comparator: Comparator | None = None) -> Verdict:
    """Compares a gold answer string with a predicted answer string.

    Args:
        gold: The gold answer (already extracted from the dataset field), or ``None``.
        pred: The predicted answer (already extracted from the completion), or ``None``.
        comparator: The scalar comparator; the in-process fast one by default.

    Returns:
        The verdict; ``value`` is ``None`` when the gold cannot be parsed (reason ``gold_unparseable``) or
        the fast comparator could not decide (reason ``undecided``).

    Example:
        >>> check("\\\\frac{1}{2}", "0.5")
        Verdict(value=True, reason='ok')
        >>> check("1,234", "1234.0")
        Verdict(value=True, reason='ok')
    """
    if gold is None:
        return Verdict(None, "gold_unparseable")
    gold_ast = prepare_gold(gold)
    if gold_ast is None:
        return Verdict(None, "gold_unparseable")
    if pred is None or not pred.strip():
        return Verdict(False, "no_answer")
    if _same_text(gold, pred):
        return Verdict(True, "ok")
    if gold_ast[0] == "choice":
        return _check_choice(gold_ast[1], pred)
    pred_ast, reason = _prepare_pred(pred, gold_ast)
    if pred_ast is None:
        return Verdict(False, reason)
    try:
        result = equivalent(gold_ast, pred_ast, comparator or _FAST)
    except TooLarge:
        return Verdict(False, "too_large")
    except RecursionError:
        return Verdict(False, "too_deep")
    if result is None:
        return Verdict(None, "undecided")
    return Verdict(result, "ok" if result else "wrong_value")


def verify(gold: Any, prediction: Any, *, timeout: float = 1.5, rel_tol: float = 1e-9) -> bool:
    """Whether ``prediction`` states the same answer as ``gold``.

    Both sides may be raw: a dataset gold (GSM8K ``#### 1,234``, MATH LaTeX, ``27.0``) and an answer string
    (or a completion with ``\\boxed{}`` / ``<answer>`` tags, which is extracted first). Undecided pairs go to
    the shared sympy worker pool with a ``timeout`` budget; over budget counts as ``False``.

    Args:
        gold: The reference answer.
        prediction: The predicted answer.
        timeout: Seconds allowed for the symbolic check.
        rel_tol: Relative tolerance where one side is a hand-written decimal and the other irrational.

    Returns:
        ``True`` when equivalent; ``False`` otherwise (including an unparseable gold).

    Example:
        >>> verify("#### 1,234", "1234")
        True
        >>> verify(r"\\left( 3, \\frac{\\pi}{2} \\right)", r"(3, \\pi/2)")
        True
        >>> verify("10\\\\%", "0.1"), verify("2t", "2")
        (True, False)
    """
    gold_text = extract_gold(gold)
    pred_text = extract_gold(prediction)
    comparator = _FAST if rel_tol == _FAST.rel_tol else FastComparator(rel_tol)
    verdict = check(gold_text, pred_text, comparator)
    if verdict.reason == "undecided":
        from rewards.math.pool import shared_pool

        verdict = shared_pool().check(gold_text, pred_text, timeout=timeout, rel_tol=rel_tol)
    return bool(verdict.value)
