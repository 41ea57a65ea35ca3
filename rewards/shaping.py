"""Shaping rewards: length, repetition, overlong, reasoning steps and language consistency.

These do not judge correctness; they shape *how* a model answers and are meant to be combined with an
accuracy reward (:func:`rewards.combine`).

* :func:`make_cosine_length_reward` — Kimi k1.5 / open-r1 cosine length scaling: among correct answers shorter
  is better, among wrong ones longer is better (keep thinking rather than give up). Needs an accuracy reward.
* :func:`make_repetition_penalty` — open-r1's n-gram repetition penalty, ``max_penalty * (1 - unique/total)``.
* :func:`make_soft_overlong_reward` — DAPO's soft overlong punishment: 0 up to ``max_length - cache_length``,
  then a linear ramp down to ``-penalty`` at ``max_length``, ``-penalty`` beyond.
* :data:`reasoning_steps` — open-r1's reasoning-steps reward: ``min(1, steps / 3)`` counting markers such as
  ``Step 2:``, ``1.``, bullets, ``First,`` / ``Next,`` / ``Finally,``.
* :func:`make_language_consistency_reward` — DeepSeek-R1's language-consistency reward: the share of the
  reasoning's words written in the target language's script.

Lengths are counted in **tokens** when the trainer passes ``completion_ids`` (TRL does) or a ``tokenizer`` is
given to the factory, else in **characters** of the completion as generated (a prefilled ``<think>`` is not
counted). The repetition penalty counts n-grams of token ids when ids are available, else of lower-cased
whitespace-separated words (open-r1's unit; character n-grams would measure spelling, not repetition).

References: Kimi k1.5 (arXiv:2501.12599) and Yeo et al. "Demystifying Long CoT" (arXiv:2502.03373) for the
cosine schedule; DAPO (arXiv:2503.14476) §3.4; DeepSeek-R1 (arXiv:2501.12948) §2.3.3; open-r1
``src/open_r1/rewards.py``.

Left out on purpose: language detection by vocabulary (a script is a robust, dependency-free proxy; it cannot
tell English from French); the reasoning-steps patterns are English.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rewards._contract import Completion, Reward, RewardResult

__all__ = [
    "CosineLengthReward",
    "LanguageConsistencyReward",
    "ReasoningStepsReward",
    "RepetitionPenalty",
    "SoftOverlongReward",
    "make_cosine_length_reward",
    "make_language_consistency_reward",
    "make_repetition_penalty",
    "make_soft_overlong_reward",
    "reasoning_steps",
    "script_shares",
]


def _finite(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    return float(value)


def _positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be a positive int, got {value!r}")
    return value


def _check_tokenizer(tokenizer: Any) -> None:
    if tokenizer is not None and not (hasattr(tokenizer, "encode") or callable(tokenizer)):
        raise TypeError(f"tokenizer must have .encode(text) or be callable, got {type(tokenizer).__name__}")


def _token_ids(completion: Completion, tokenizer: Any) -> Sequence[int] | None:
    if completion.token_ids is not None:
        return completion.token_ids
    if tokenizer is None:
        return None
    encode = tokenizer.encode if hasattr(tokenizer, "encode") else tokenizer
    return encode(completion.text)


def _length(completion: Completion, tokenizer: Any) -> int:
    ids = _token_ids(completion, tokenizer)
    return len(completion.text) if ids is None else len(ids)


def _reasoning(text: str) -> str:
    """The ``<think>`` block's content (to its end or the end of text), else the whole text."""
    start = text.find("<think>")
    if start < 0:
        return text
    end = text.find("</think>", start)
    return text[start + 7 : end if end >= 0 else len(text)]


# -- cosine length ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CosineLengthConfig:
    """Options of :func:`make_cosine_length_reward` (defaults: open-r1's)."""

    min_value_wrong: float = -1.0
    """Value of a wrong answer of length 0 (the worst: giving up early)."""
    max_value_wrong: float = -0.5
    """Value of a wrong answer at ``max_len`` or longer."""
    min_value_correct: float = 0.5
    """Value of a correct answer at ``max_len`` or longer."""
    max_value_correct: float = 1.0
    """Value of a correct answer of length 0 (the best)."""
    max_len: int = 1000
    """Length (tokens or characters, see the module docstring) where the cosine reaches its end."""
    correct_threshold: float = 1.0
    """An answer counts as correct when the accuracy reward's value is at least this."""

    def __post_init__(self) -> None:
        for field in ("min_value_wrong", "max_value_wrong", "min_value_correct", "max_value_correct",
                      "correct_threshold"):  # fmt: skip
            _finite(field, getattr(self, field))
        if self.min_value_wrong > self.max_value_wrong:
            raise ValueError(
                f"min_value_wrong={self.min_value_wrong} exceeds max_value_wrong={self.max_value_wrong}"
            )
        if self.min_value_correct > self.max_value_correct:
            raise ValueError(
                f"min_value_correct={self.min_value_correct} exceeds "
                f"max_value_correct={self.max_value_correct}"
            )
        _positive_int("max_len", self.max_len)


class CosineLengthReward(Reward):
    """Cosine length scaling of an accuracy reward; ``None`` where the accuracy is ``None``."""

    def __init__(self, accuracy: Callable[..., Any], config: CosineLengthConfig, tokenizer: Any, name: str):
        if not callable(accuracy):
            raise TypeError(f"accuracy must be a reward callable, got {accuracy!r}")
        _check_tokenizer(tokenizer)
        self.accuracy, self.config, self.tokenizer, self.__name__ = accuracy, config, tokenizer, name
        c = config
        self.value_range = (
            min(c.min_value_wrong, c.min_value_correct),
            max(c.max_value_wrong, c.max_value_correct),
        )

    def explain_all(self, completions: Any, **kwargs: Any) -> list[RewardResult]:
        items = self._completions(completions, kwargs)
        accuracy = self.accuracy(completions, **kwargs)
        if not isinstance(accuracy, Sequence) or len(accuracy) != len(items):
            raise ValueError(f"accuracy reward returned {accuracy!r:.100} for {len(items)} completions")
        c = self.config
        out = []
        for item, acc in zip(items, accuracy, strict=True):
            if acc is None:
                out.append(RewardResult(None, "accuracy_unjudged"))
                continue
            length = _length(item, self.tokenizer)
            cosine = math.cos(min(length, c.max_len) / c.max_len * math.pi)
            if acc >= c.correct_threshold:
                lo, hi, reason = c.min_value_correct, c.max_value_correct, "correct"
            else:  # wrong: short is worst, so the ends swap
                lo, hi, reason = c.max_value_wrong, c.min_value_wrong, "wrong"
            value = lo + 0.5 * (hi - lo) * (1.0 + cosine)
            value = min(max(value, self.value_range[0]), self.value_range[1])  # rounding guard
            out.append(RewardResult(value, reason, f"length {length}"))
        return out


def make_cosine_length_reward(
    accuracy: Callable[..., Any],
    *,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    max_len: int = 1000,
    correct_threshold: float = 1.0,
    tokenizer: Any = None,
    name: str | None = None,
) -> CosineLengthReward:
    """Builds a cosine length-scaled reward on top of ``accuracy`` (see :class:`CosineLengthConfig`).

    Length is in tokens when the trainer passes ``completion_ids`` or ``tokenizer`` is given (an object
    with ``.encode(text)`` or a callable), else in characters.

    Args:
        accuracy: The reward deciding correctness (columns are forwarded to it).
        min_value_wrong: Value of an empty wrong answer.
        max_value_wrong: Value of a wrong answer of ``max_len`` or more.
        min_value_correct: Value of a correct answer of ``max_len`` or more.
        max_value_correct: Value of an empty correct answer.
        max_len: Length at which the schedule ends.
        correct_threshold: Accuracy values at or above this count as correct.
        tokenizer: Optional tokenizer for lengths when ``completion_ids`` are not passed.
        name: ``__name__``; default ``cosine_<accuracy name>``.

    Returns:
        A picklable reward (if ``accuracy`` and ``tokenizer`` are).

    Raises:
        ValueError: On non-finite values, inverted ranges or a non-positive ``max_len``.

    Example:
        >>> from rewards import countdown_accuracy
        >>> cosine = make_cosine_length_reward(countdown_accuracy, max_len=1000)
        >>> cosine(["<answer>3*8</answer>", "<answer>3+8</answer>"], nums=[[3, 8]] * 2,
        ...        target=[24] * 2)  # doctest: +ELLIPSIS
        [0.99..., -0.99...]
    """
    config = CosineLengthConfig(
        min_value_wrong=min_value_wrong, max_value_wrong=max_value_wrong, min_value_correct=min_value_correct,
        max_value_correct=max_value_correct, max_len=max_len, correct_threshold=correct_threshold,
    )  # fmt: skip
    return CosineLengthReward(
        accuracy, config, tokenizer, name or f"cosine_{getattr(accuracy, '__name__', 'acc')}"
    )


# -- repetition ---------------------------------------------------------------------------------------------


class RepetitionPenalty(Reward):
    """``max_penalty * (1 - distinct n-grams / n-grams)``: 0 for no repeats, towards ``max_penalty``."""

    def __init__(self, ngram_size: int, max_penalty: float, tokenizer: Any, name: str) -> None:
        self.ngram_size = _positive_int("ngram_size", ngram_size)
        self.max_penalty = _finite("max_penalty", max_penalty)
        if self.max_penalty > 0:
            raise ValueError(f"max_penalty must be <= 0 (it is a penalty), got {max_penalty!r}")
        _check_tokenizer(tokenizer)
        self.tokenizer, self.__name__ = tokenizer, name
        self.value_range = (self.max_penalty, 0.0)

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        ids = _token_ids(completion, self.tokenizer)
        units: Sequence[Any] = completion.text.lower().split() if ids is None else ids
        n = self.ngram_size
        total = len(units) - n + 1
        if total < 1:
            return RewardResult(0.0, "too_short")
        distinct = len(set(zip(*(units[i:] for i in range(n)), strict=False)))
        value = (1.0 - distinct / total) * self.max_penalty + 0.0  # + 0.0 turns -0.0 into 0.0
        return RewardResult(value, "ok", f"{distinct}/{total} distinct {n}-grams")


def make_repetition_penalty(
    ngram_size: int = 3, max_penalty: float = -1.0, *, tokenizer: Any = None, name: str | None = None
) -> RepetitionPenalty:
    """Builds open-r1's n-gram repetition penalty (n-grams of token ids when available, else of words).

    Args:
        ngram_size: n.
        max_penalty: The value of a completion made of one repeated n-gram (<= 0).
        tokenizer: Optional tokenizer used when ``completion_ids`` are not passed.
        name: ``__name__``; default ``repetition_penalty_<n>gram``.

    Returns:
        A picklable reward with values in ``[max_penalty, 0]``.

    Raises:
        ValueError: On ``ngram_size < 1`` or ``max_penalty > 0``.

    Example:
        >>> penalty = make_repetition_penalty(ngram_size=2)
        >>> penalty(["a b c d", "go go go go go"])
        [0.0, -0.75]
    """
    return RepetitionPenalty(
        ngram_size, max_penalty, tokenizer, name or f"repetition_penalty_{ngram_size}gram"
    )


# -- DAPO soft overlong -------------------------------------------------------------------------------------


class SoftOverlongReward(Reward):
    """DAPO's soft overlong punishment (see :func:`make_soft_overlong_reward`)."""

    def __init__(self, max_length: int, cache_length: int, penalty: float, tokenizer: Any, name: str) -> None:
        self.max_length = _positive_int("max_length", max_length)
        self.cache_length = _positive_int("cache_length", cache_length)
        if cache_length > max_length:
            raise ValueError(f"cache_length={cache_length} must not exceed max_length={max_length}")
        self.penalty = _finite("penalty", penalty)
        if self.penalty < 0:
            raise ValueError(f"penalty must be >= 0 (the punishment's size), got {penalty!r}")
        _check_tokenizer(tokenizer)
        self.tokenizer, self.__name__ = tokenizer, name
        self.value_range = (-self.penalty, 0.0)

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        length = _length(completion, self.tokenizer)
        expected = self.max_length - self.cache_length
        if length <= expected:
            return RewardResult(0.0, "ok", f"length {length}")
        if length > self.max_length:
            return RewardResult(-self.penalty, "overlong", f"length {length} > {self.max_length}")
        value = (expected - length) / self.cache_length * self.penalty
        return RewardResult(value, "soft_overlong", f"length {length} > {expected}")


def make_soft_overlong_reward(
    max_length: int,
    cache_length: int,
    *,
    penalty: float = 1.0,
    tokenizer: Any = None,
    name: str | None = None,
) -> SoftOverlongReward:
    """Builds DAPO's soft overlong punishment: 0, a linear ramp over the last ``cache_length``, then -penalty.

    Lengths are tokens when ``completion_ids`` are passed or ``tokenizer`` is given, else characters.

    Args:
        max_length: L_max, the generation limit.
        cache_length: L_cache, the width of the soft ramp before L_max.
        penalty: Size of the full punishment (values lie in ``[-penalty, 0]``).
        tokenizer: Optional tokenizer used when ``completion_ids`` are not passed.
        name: ``__name__``; default ``soft_overlong_<max_length>``.

    Returns:
        A picklable reward.

    Raises:
        ValueError: On non-positive lengths, ``cache_length > max_length`` or a negative ``penalty``.

    Example:
        >>> overlong = make_soft_overlong_reward(max_length=10, cache_length=4)
        >>> overlong(["x" * 6, "x" * 8, "x" * 11])
        [0.0, -0.5, -1.0]
    """
    return SoftOverlongReward(
        max_length, cache_length, penalty, tokenizer, name or f"soft_overlong_{max_length}"
    )


# -- reasoning steps ----------------------------------------------------------------------------------------

_STEP = re.compile(r"Step [0-9]+:|^[0-9]+\.|\n-|\n\*|First,|Second,|Next,|Finally,", re.MULTILINE)


class ReasoningStepsReward(Reward):
    """``min(1, steps / min_steps)`` counting step markers (open-r1's patterns); stops counting early."""

    def __init__(self, min_steps: int = 3, name: str = "reasoning_steps") -> None:
        self.min_steps = _positive_int("min_steps", min_steps)
        self.__name__ = name

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        steps = 0
        for _ in _STEP.finditer(completion.text):
            steps += 1
            if steps >= self.min_steps:
                break
        return RewardResult(
            steps / self.min_steps, "ok" if steps >= self.min_steps else "few_steps", str(steps)
        )


reasoning_steps = ReasoningStepsReward()
"""open-r1's reasoning-steps reward: 1.0 from three step markers on, 1/3 per marker below.

Example:
    >>> reasoning_steps(["Step 1: add. Step 2: multiply. Step 3: check.", "First, guess."])
    [1.0, 0.3333333333333333]
"""


# -- language consistency -----------------------------------------------------------------------------------

# (first code point, last code point, script), sorted; letters outside every range count as "other".
_SCRIPT_RANGES = sorted([
    (0x41, 0x5A, "latin"), (0x61, 0x7A, "latin"), (0xC0, 0x24F, "latin"), (0x1E00, 0x1EFF, "latin"),
    (0x370, 0x3FF, "greek"), (0x1F00, 0x1FFF, "greek"), (0x400, 0x52F, "cyrillic"),
    (0x590, 0x5FF, "hebrew"), (0x600, 0x6FF, "arabic"), (0x750, 0x77F, "arabic"), (0x8A0, 0x8FF, "arabic"),
    (0x900, 0x97F, "devanagari"), (0xE00, 0xE7F, "thai"), (0x1100, 0x11FF, "hangul"),
    (0x3130, 0x318F, "hangul"), (0xAC00, 0xD7AF, "hangul"), (0x3040, 0x309F, "hiragana"),
    (0x30A0, 0x30FF, "katakana"), (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"), (0xF900, 0xFAFF, "han"),
    (0x20000, 0x2A6DF, "han"),
])  # fmt: skip
_RANGE_STARTS = [start for start, _, _ in _SCRIPT_RANGES]
_UNSPACED = frozenset({"han", "hiragana", "katakana", "thai"})  # no spaces between words: a char is a word
_SCRIPTS = frozenset(s for _, _, s in _SCRIPT_RANGES)
_LATIN = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "sk", "sl", "hr",
          "ro", "hu", "tr", "vi", "id", "ms", "tl", "sw", "et", "lv", "lt")  # fmt: skip
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{code: frozenset({"latin"}) for code in _LATIN},
    **{code: frozenset({"cyrillic"}) for code in ("ru", "uk", "bg", "sr", "be", "kk", "mk")},
    **{code: frozenset({"arabic"}) for code in ("ar", "fa", "ur")},
    "el": frozenset({"greek"}), "he": frozenset({"hebrew"}), "hi": frozenset({"devanagari"}),
    "th": frozenset({"thai"}), "ko": frozenset({"hangul"}), "zh": frozenset({"han"}),
    "ja": frozenset({"han", "hiragana", "katakana"}),
    **{script: frozenset({script}) for script in _SCRIPTS},
}  # fmt: skip
"""Language code or script name -> the scripts its words may be written in."""
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_LETTERS = re.compile(r"[^\W\d_]+")


def _script(char: str) -> str:
    code = ord(char)
    i = bisect.bisect_right(_RANGE_STARTS, code) - 1
    if i >= 0 and code <= _SCRIPT_RANGES[i][1]:
        return _SCRIPT_RANGES[i][2]
    return "other"


def script_shares(text: str, scripts: frozenset[str]) -> tuple[int, int]:
    """Counts (words in ``scripts``, all words) of ``text``; see :func:`make_language_consistency_reward`.

    Example:
        >>> script_shares("hello мир 你好", frozenset({"latin"}))
        (1, 4)
    """
    target = total = 0
    for run in _LETTERS.findall(text):
        script = _script(run[0])
        if script in _UNSPACED or (len(run) > 1 and _script(run[-1]) in _UNSPACED):
            for char in run:
                total += 1
                target += _script(char) in scripts
            continue
        total += 1
        target += script in scripts
    return target, total


class LanguageConsistencyReward(Reward):
    """Share of the reasoning's words written in the target script (see the module docstring)."""

    def __init__(self, language: str, reasoning_only: bool, empty_value: float, max_chars: int, name: str):
        if language not in LANGUAGE_SCRIPTS:
            raise ValueError(
                f"language={language!r} is not supported; choose from {sorted(LANGUAGE_SCRIPTS)}"
            )
        self.language, self.reasoning_only = language, bool(reasoning_only)
        self.empty_value = _finite("empty_value", empty_value)
        if not 0.0 <= self.empty_value <= 1.0:
            raise ValueError(f"empty_value must lie in [0, 1], got {empty_value!r}")
        self.max_chars = _positive_int("max_chars", max_chars)
        self.__name__ = name

    def judge(self, completion: Completion, **row: Any) -> RewardResult:
        text = _reasoning(completion.full_text) if self.reasoning_only else completion.full_text
        for tag in _TAGS:  # tag names are markup, not words of the reasoning
            text = text.replace(tag, " ")
        target, total = script_shares(text[: self.max_chars], LANGUAGE_SCRIPTS[self.language])
        if total == 0:
            return RewardResult(self.empty_value, "no_words")
        return RewardResult(target / total, "ok", f"{target}/{total} words in {self.language}")


def make_language_consistency_reward(
    language: str = "en",
    *,
    reasoning_only: bool = True,
    empty_value: float = 0.0,
    max_chars: int = 200_000,
    name: str | None = None,
) -> LanguageConsistencyReward:
    """Builds DeepSeek-R1's language-consistency reward: the share of words in the target language's script.

    Words are maximal runs of letters; each Han / kana character counts as one word (those scripts do not
    separate words by spaces). A run's script is its first letter's.

    Args:
        language: An ISO 639-1 code (``en``, ``zh``, ``ja``, ``ru``, ...) or a script name (``latin``,
            ``cyrillic``, ``han``, ...).
        reasoning_only: Judge only the ``<think>`` block when there is one (R1 judges the CoT).
        empty_value: Value when the text has no letters at all.
        max_chars: Only the first ``max_chars`` characters are judged (bounds the time on huge inputs).
        name: ``__name__``; default ``language_consistency_<language>``.

    Returns:
        A picklable reward with values in ``[0, 1]``.

    Raises:
        ValueError: On an unknown language, ``empty_value`` outside ``[0, 1]``, a non-positive ``max_chars``.

    Example:
        >>> english = make_language_consistency_reward("en")
        >>> english(["<think>we add these numbers</think><answer>5</answer>", "<think>我们 add them</think>"])
        [1.0, 0.5]
    """
    return LanguageConsistencyReward(
        language, reasoning_only, empty_value, max_chars, name or f"language_consistency_{language}"
    )
