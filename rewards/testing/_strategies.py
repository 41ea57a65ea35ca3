"""Hypothesis strategies for reward functions: arbitrary, adversarial and well-formed completions.

Key idea: a reward meets model output that is arbitrary text, sometimes hostile (megabytes, thousands of
tags, deep nesting, NUL bytes, lone surrogates, unicode digits). These strategies produce such text cheaply
(big inputs are built by repetition, not drawn character by character) so a property test can throw all of
it at a reward. Countdown problems come with a known solution built from a random expression tree, so a test
can check a reward against the construction instead of against itself.

Left out on purpose: no strategies for math / code references (their helpers pass their own ``columns``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from rewards.format import visible

__all__ = [
    "adversarial_completions",
    "any_completions",
    "chat_completions",
    "countdown_problems",
    "r1_completions",
    "texts",
]

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_NASTY = (
    "\x00", "\ud800", "\u202e", "\ufeff", "٣", "𝟕", "²", "½", "∞", "NaN", "1e309", "**", "//", "%", "=",
    "__import__('os')", "().__class__", "lambda: 0", "\n", "\r", "\t", " ", "(", ")", "9" * 50,
)  # fmt: skip


def texts(max_size: int = 200) -> st.SearchStrategy[str]:
    """Short arbitrary text mixing unicode, tags, digits and operators.

    Example:
        >>> isinstance(texts().example(), str)  # doctest: +SKIP
        True
    """
    pieces = st.one_of(
        st.text(max_size=20),
        st.sampled_from(_TAGS),
        st.sampled_from(_NASTY),
        st.from_regex(r"[0-9+\-*/() ]{1,20}", fullmatch=True),
    )
    return st.lists(pieces, max_size=max(1, max_size // 10)).map("".join)


def _repeated(chunks: st.SearchStrategy[str], max_chars: int) -> st.SearchStrategy[str]:
    """A chunk repeated up to ``max_chars`` characters (how huge inputs are built cheaply)."""

    def build(args: tuple[str, int]) -> str:
        chunk, n = args
        return (chunk or "x") * max(1, n // max(1, len(chunk or "x")))

    return st.tuples(chunks, st.integers(1, max_chars)).map(build)


def adversarial_completions(max_chars: int = 200_000) -> st.SearchStrategy[str]:
    """Hostile completions: huge, deeply nested, spammed or unbalanced tags, NUL bytes, code injection.

    Args:
        max_chars: Upper bound on the size of the generated text.

    Example:
        >>> len(adversarial_completions(1000).example()) <= 2000  # doctest: +SKIP
        True
    """
    depth = st.integers(1, max(1, max_chars // 2))
    return st.one_of(
        _repeated(st.sampled_from(("x", "<think>", "<answer>", "</answer>", "\x00", "🙂", "1+")), max_chars),
        _repeated(st.sampled_from(_TAGS).map(lambda t: t * 3), max_chars),
        depth.map(lambda d: "<answer>" + "(" * d + "1" + ")" * d + "</answer>"),
        st.integers(1, max(1, max_chars // 16)).map(lambda d: "<think>" * d + "</answer>" * d),
        st.sampled_from((
            "<answer>__import__('os').system('touch /tmp/pwned')</answer>",
            "<answer>44**35**19</answer>",
            "<answer>9**9**9**9</answer>",
            "<answer>(lambda: 1)()</answer>",
            "<answer>1/0</answer>",
            "<answer>" + "1+" * 5000 + "1</answer>",
            "<answer></answer>",
            "</answer><answer>",
            "<think></think><answer>\x00</answer>",
        )),
        texts(400).map(lambda t: f"<think>{t}</think><answer>{t}</answer>{t}"),
    )


def any_completions(max_chars: int = 200_000) -> st.SearchStrategy[str]:
    """Arbitrary or adversarial text, the mix :func:`rewards.testing.check_reward` uses by default."""
    return st.one_of(texts(), st.text(max_size=300), adversarial_completions(max_chars), r1_completions())


def r1_completions(answers: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """Well-formed R1 completions ``<think>…</think>\\n<answer>…</answer>``.

    Args:
        answers: Strategy for the answer text (default: short text without tags that shows at least one
            character: not only whitespace or invisible characters, which ``think_format`` calls empty).

    Example:
        >>> r1_completions(st.just("42")).example().endswith("<answer>42</answer>")  # doctest: +SKIP
        True
    """
    tagless = st.text(st.characters(blacklist_characters="<>"), max_size=80)
    answer = answers if answers is not None else tagless.filter(visible)
    sep = st.sampled_from(("", "\n", " ", "\n\n"))
    return st.builds(lambda r, s, a: f"<think>{r}</think>{s}<answer>{a}</answer>", tagless, sep, answer)


def chat_completions(contents: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[list[dict]]:
    """TRL conversational completions: one assistant message, sometimes with split-off reasoning."""
    body = contents if contents is not None else any_completions(10_000)
    reasoning = st.one_of(st.none(), st.text(max_size=50))

    def message(content: str, thinking: str | None) -> list[dict[str, Any]]:
        msg: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking is not None:
            msg["reasoning_content"] = thinking
        return [msg]

    return st.builds(message, body, reasoning)


_OPS = ("+", "-", "*", "/")


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b else None


@st.composite
def countdown_problems(
    draw: st.DrawFn, min_numbers: int = 3, max_numbers: int = 5, max_value: int = 100
) -> dict[str, Any]:
    """A countdown problem with a known solution: ``{"nums", "target", "solution"}``.

    The solution is a random expression tree over a shuffle of ``nums`` whose exact value is a non-negative
    integer (divisions that would not stay integral, or divide by zero, are replaced by ``+``); that value is
    the target. So ``solution`` is correct by construction.

    Example:
        >>> p = countdown_problems().example()  # doctest: +SKIP
        >>> sorted(p) == ["nums", "solution", "target"]  # doctest: +SKIP
        True
    """
    n = draw(st.integers(min_numbers, max_numbers))
    nums = draw(st.lists(st.integers(1, max_value), min_size=n, max_size=n))
    order = draw(st.permutations(nums))
    items: list[tuple[str, Fraction]] = [(str(v), Fraction(v)) for v in order]
    while len(items) > 1:
        i = draw(st.integers(0, len(items) - 2))
        (sa, a), (sb, b) = items[i], items[i + 1]
        op = draw(st.sampled_from(_OPS))
        value = _apply(op, a, b)
        if value is None or value.denominator != 1 or value < 0:
            op, value = "+", a + b
        items[i : i + 2] = [(f"({sa} {op} {sb})", value)]
    text, value = items[0]
    solution = text[1:-1] if text.startswith("(") else text
    return {"nums": list(nums), "target": int(value), "solution": solution}
