"""Format rewards: is the completion laid out as ``<think>…</think><answer>…</answer>``?

Two rewards and one helper:

* :data:`think_format` — 1.0 iff the whole completion is exactly one ``<think>…</think>`` block followed by
  exactly one ``<answer>…</answer>`` block, with only whitespace around and between them. Nothing may follow
  the answer (open-r1's ``format_reward`` uses ``re.match`` with ``re.MULTILINE``, so its ``$`` matches at
  the end of any line and trailing junk passes; this one does not).
* :data:`tag_count` — partial credit, 0.25 per tag used exactly once and in order, so a model that learns one
  tag at a time gets a gradient; repeating a tag earns nothing for it, so tag spam cannot pay.
* :func:`last_answer` — the content of the last complete ``<answer>…</answer>`` block of a text, shared by
  the countdown reward, the trainer adapters and the environments.

Key idea: every check is a handful of ``str.find`` / ``str.count`` calls (linear, C speed) instead of a
regular expression, so there is no backtracking to exploit and a 2 MB completion costs a millisecond. Plain
string batches skip the per-sample result objects (same values, see ``test_fast_batch_path_agrees``).

Prefill-aware: when the prompt ends with an opening ``<think>`` (TinyZero's template prefills it), the
completion is judged as its continuation (:attr:`rewards._contract.Completion.full_text`). Chat completions
whose trainer split the thinking into ``reasoning_content`` are judged with it restored.

References: DeepSeek-R1 (arXiv:2501.12948) format reward; open-r1 ``format_reward`` / ``tag_count_reward``
(huggingface/open-r1, src/open_r1/rewards.py).

Left out on purpose: no requirement of newlines around the tag contents (open-r1's strict variant); the
content of ``<think>`` is not judged here (see :mod:`rewards.shaping`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewards._contract import Completion, Reward, RewardResult, prompt_prefills_think

__all__ = [
    "TagCountReward",
    "ThinkFormatConfig",
    "ThinkFormatReward",
    "last_answer",
    "make_think_format_reward",
    "tag_count",
    "think_format",
    "visible",
]


def last_answer(text: str, tag: str = "answer") -> str | None:
    """Returns the stripped content of the last complete ``<answer>…</answer>`` block, or ``None``.

    A trailing unclosed ``<answer>`` is ignored (the last *complete* block counts), as in TinyZero. Linear
    time: two ``str.rfind`` calls.

    Args:
        text: Any text (a completion, never the prompt: prompts often contain an example answer).
        tag: The tag name, without angle brackets.

    Returns:
        The content between the last ``<tag>`` and the ``</tag>`` closing it, stripped; ``None`` when there is
        no complete block.

    Example:
        >>> last_answer("<answer>1</answer> then <answer> 2 + 3 </answer>")
        '2 + 3'
        >>> last_answer("<answer>unclosed") is None
        True
    """
    close = f"</{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    opening = f"<{tag}>"
    start = text.rfind(opening, 0, end)
    if start < 0:
        return None
    return text[start + len(opening) : end].strip()


_OK = RewardResult(1.0, "ok")
_OPEN_THINK = "<think>"


def visible(text: str) -> bool:
    """True when ``text`` shows something: not only whitespace, zero-width or other invisible characters."""
    return any(c.isprintable() and not c.isspace() for c in text)


def _check_tag(field: str, value: str) -> None:
    if not isinstance(value, str) or not value or any(c in value for c in "<>/ \t\n"):
        raise ValueError(f"{field} must be a non-empty tag name without '<', '>', '/', spaces; got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ThinkFormatConfig:
    """Options of :func:`make_think_format_reward`."""

    think_tag: str = "think"
    """Name of the reasoning tag (``think`` -> ``<think>…</think>``)."""
    answer_tag: str = "answer"
    """Name of the answer tag (``answer`` -> ``<answer>…</answer>``)."""
    require_answer_tag: bool = True
    """If False, the reasoning block may be followed by any non-empty untagged text (R1's chat layout)."""
    max_chars: int = 4_000_000
    """Completions longer than this score 0 with reason ``too_long`` (the scan is linear anyway)."""

    def __post_init__(self) -> None:
        _check_tag("think_tag", self.think_tag)
        _check_tag("answer_tag", self.answer_tag)
        if self.think_tag == self.answer_tag:
            raise ValueError(f"think_tag and answer_tag must differ, both are {self.think_tag!r}")
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ValueError(f"max_chars must be a positive int, got {self.max_chars!r}")


class ThinkFormatReward(Reward):
    """1.0 iff the completion is exactly ``<think>…</think>`` then ``<answer>…</answer>``; see the module doc.

    Reasons: ``ok``, ``too_long``, ``no_think_tag``, ``text_before_think``, ``repeated_think_tag``,
    ``unclosed_think``, ``no_answer_tag``, ``repeated_answer_tag``, ``unclosed_answer``, ``text_between``,
    ``text_after_answer``, ``empty_answer``, ``unexpected_answer_tag``.

    Example:
        >>> from rewards import think_format
        >>> think_format(["<think>2+2</think>\\n<answer>4</answer>", "<think>x</think><answer>4</answer> z"])
        [1.0, 0.0]
        >>> think_format(["2+2</think><answer>4</answer>"], prompts=["Assistant: <think>"])  # prefilled
        [1.0]
        >>> think_format.explain("<think>x</think><answer>4</answer> junk").reason
        'text_after_answer'
    """

    def __init__(self, config: ThinkFormatConfig | None = None, *, name: str | None = None) -> None:
        self.config = config or ThinkFormatConfig()
        c = self.config
        default = "think_format" if (c.think_tag, c.answer_tag) == ("think", "answer") else (
            f"{c.think_tag}_{c.answer_tag}_format"
        )
        self.__name__ = name or (default if c.require_answer_tag else f"{default}_untagged_answer")
        self._tags = (f"<{c.think_tag}>", f"</{c.think_tag}>", f"<{c.answer_tag}>", f"</{c.answer_tag}>")

    def __call__(self, completions: Any, **kwargs: Any) -> list[float | None]:
        # Fast path for the common batch (plain strings, string prompts or none): the same judgement without
        # building a Completion and a RewardResult per sample. Anything else takes the general path.
        prompts = kwargs.get("prompts")
        if completions.__class__ is list and all(c.__class__ is str for c in completions):
            reason = self._reason
            if prompts is None:
                return [1.0 if reason(c) == "ok" else 0.0 for c in completions]
            n = len(completions)
            if prompts.__class__ is list and len(prompts) == n and all(p.__class__ is str for p in prompts):
                pairs = zip(completions, prompts, strict=True)
                texts = [_OPEN_THINK + c if prompt_prefills_think(p) else c for c, p in pairs]
                return [1.0 if reason(t) == "ok" else 0.0 for t in texts]
        return super().__call__(completions, **kwargs)

    def judge(self, completion: Completion, **row: object) -> RewardResult:
        text = completion.full_text
        reason = self._reason(text)
        if reason == "ok":
            return _OK
        detail = f"{len(text)} > {self.config.max_chars} characters" if reason == "too_long" else ""
        return RewardResult(0.0, reason, detail)

    def _reason(self, text: str) -> str:
        """The verdict on one full text: ``"ok"`` or the first rule it breaks (a few linear scans)."""
        if len(text) > self.config.max_chars:
            return "too_long"
        t_open, t_close, a_open, a_close = self._tags
        i = text.find(t_open)
        if i < 0:
            return "no_think_tag"
        if text[:i].strip():
            return "text_before_think"
        if text.find(t_open, i + 1) >= 0:
            return "repeated_think_tag"
        j = text.find(t_close, i)
        if j < 0:
            return "unclosed_think"
        if text.find(t_close, j + 1) >= 0:
            return "repeated_think_tag"
        after_think = j + len(t_close)
        if not self.config.require_answer_tag:
            rest = text[after_think:]
            if a_open in rest or a_close in rest:
                return "unexpected_answer_tag"
            return "ok" if rest.strip() else "empty_answer"
        return self._answer_reason(text, after_think)

    def _answer_reason(self, text: str, after_think: int) -> str:
        _, _, a_open, a_close = self._tags
        begin = text.find(a_open)
        if begin < 0:
            return "no_answer_tag"
        end = text.find(a_close)
        if text.find(a_open, begin + 1) >= 0 or (end >= 0 and text.find(a_close, end + 1) >= 0):
            return "repeated_answer_tag"
        if end < begin:
            return "unclosed_answer"
        if begin < after_think or text[after_think:begin].strip():
            return "text_between"
        if text[end + len(a_close) :].strip():
            return "text_after_answer"
        if not visible(text[begin + len(a_open) : end]):
            return "empty_answer"
        return "ok"


def make_think_format_reward(
    *,
    think_tag: str = "think",
    answer_tag: str = "answer",
    require_answer_tag: bool = True,
    max_chars: int = 4_000_000,
    name: str | None = None,
) -> ThinkFormatReward:
    """Builds a strict ``<think>…</think><answer>…</answer>`` format reward (see :class:`ThinkFormatConfig`).

    Args:
        think_tag: Name of the reasoning tag.
        answer_tag: Name of the answer tag.
        require_answer_tag: If False, the reasoning may be followed by any non-empty untagged text.
        max_chars: Completions longer than this score 0 (reason ``too_long``).
        name: The reward's ``__name__`` (TRL logs it); derived from the tags when omitted.

    Returns:
        A picklable reward, ``fn(completions, **columns) -> list[float]``.

    Raises:
        ValueError: On an empty/invalid tag name, equal tags or a non-positive ``max_chars``.

    Example:
        >>> fmt = make_think_format_reward(think_tag="reasoning")
        >>> fmt(["<reasoning>hm</reasoning> <answer>4</answer>", "<reasoning>hm</reasoning>4"])
        [1.0, 0.0]
        >>> fmt.__name__
        'reasoning_answer_format'
    """
    config = ThinkFormatConfig(
        think_tag=think_tag, answer_tag=answer_tag, require_answer_tag=require_answer_tag, max_chars=max_chars
    )
    return ThinkFormatReward(config, name=name)


class TagCountReward(Reward):
    """Partial format credit: 0.25 per tag (``<think>``, ``</think>``, ``<answer>``, ``</answer>``) used well.

    A tag earns its 0.25 when it occurs exactly once and after every earlier tag of that sequence that also
    occurs exactly once. A repeated tag earns nothing, so spamming tags can never raise the score. Unlike
    open-r1's ``tag_count_reward`` no newlines are required around the tags. Prefill-aware.

    Reasons: ``ok`` (all four), ``partial`` (detail lists the tags credited), ``none``, ``too_long``.

    Example:
        >>> from rewards import tag_count
        >>> tag_count(["<think>a</think><answer>1</answer>", "<think>a</think>1", "<think><think></think>"])
        [1.0, 0.5, 0.25]
    """

    __name__ = "tag_count"

    def __init__(self, *, think_tag: str = "think", answer_tag: str = "answer", max_chars: int = 4_000_000):
        config = ThinkFormatConfig(think_tag=think_tag, answer_tag=answer_tag, max_chars=max_chars)
        self.max_chars = config.max_chars
        self._tags = (f"<{think_tag}>", f"</{think_tag}>", f"<{answer_tag}>", f"</{answer_tag}>")
        if (think_tag, answer_tag) != ("think", "answer"):
            self.__name__ = f"{think_tag}_{answer_tag}_tag_count"

    def judge(self, completion: Completion, **row: object) -> RewardResult:
        text = completion.full_text
        if len(text) > self.max_chars:
            return RewardResult(0.0, "too_long", f"{len(text)} > {self.max_chars} characters")
        credited: list[str] = []
        last = -1
        for tag in self._tags:
            if text.count(tag) != 1:
                continue
            at = text.find(tag)
            if at > last:
                credited.append(tag)
                last = at
        value = 0.25 * len(credited)
        reason = "ok" if len(credited) == 4 else ("partial" if credited else "none")
        return RewardResult(value, reason, " ".join(credited))


think_format = ThinkFormatReward()
"""The default strict format reward: ``<think>…</think>`` then ``<answer>…</answer>``, nothing after."""

tag_count = TagCountReward()
"""Partial format credit, 0.25 per tag used exactly once and in order (see :class:`TagCountReward`)."""
