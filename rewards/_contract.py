"""The reward contract shared by every reward in this package.

A reward is a plain callable with TRL's signature::

    fn(completions, **columns) -> list[float | None]

one value per completion. Dataset columns arrive as keyword lists of the same length as ``completions``;
anything else a trainer passes (``prompts`` is used when present, ``completion_ids``, ``trainer_state``,
``log_metric``, ...) is accepted and ignored. ``None`` means "this sample cannot be judged" (for example the
reference answer itself is unparseable), never "the model was wrong".

Key idea: every reward is a :class:`Reward` object that judges *one* sample and explains itself with a
:class:`RewardResult` (a value and a machine-readable ``reason``). Batch calls, column validation and the
string-or-chat normalisation of completions live here once, so each reward family only writes ``judge``.
Rewards that want to parallelise a batch (math, code) override :meth:`Reward.explain_batch`.

Completions come in TRL's two formats: plain strings, or chat messages
(``[{"role": "assistant", "content": ..., "reasoning_content": ...}]``). When a trainer has split the thinking
into ``reasoning_content``, :func:`to_completion` puts it back inside ``<think>…</think>`` so format rewards
still see it.

Left out on purpose: no trainer is imported here (TRL, verl and OpenRLHF adapters only match signatures).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Completion", "Reward", "RewardResult", "prompt_prefills_think", "to_completion"]


@dataclass(frozen=True, slots=True)
class RewardResult:
    """A judged sample: the value and why.

    Attributes:
        value: The reward, or ``None`` when the reference cannot be judged.
        reason: A short machine-readable code, e.g. ``"ok"``, ``"no_answer_tag"``, ``"number_reused"``,
            ``"wrong_value"``, ``"timeout"``.
        detail: Optional human-readable detail (the extracted answer, the failing test, ...).
    """

    value: float | None
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Completion:
    """One model completion, normalised from either TRL format.

    Attributes:
        text: The full completion as the model wrote it; when the trainer split the thinking into
            ``reasoning_content`` it is restored here as ``<think>{reasoning}</think>{content}``.
        prompt: The prompt text when the trainer passed ``prompts`` (used for prefill detection), else ``""``.
        token_ids: The completion's token ids when the trainer passed ``completion_ids``, else ``None``.
    """

    text: str
    prompt: str = ""
    token_ids: tuple[int, ...] | None = None

    @property
    def prefilled_think(self) -> bool:
        """True when the prompt ends with an opening ``<think>`` (see :func:`prompt_prefills_think`)."""
        return prompt_prefills_think(self.prompt)

    @property
    def full_text(self) -> str:
        """The completion with a prefilled ``<think>`` restored, so it can be judged on its own."""
        return "<think>" + self.text if self.prefilled_think else self.text


def prompt_prefills_think(prompt: str) -> bool:
    """True when ``prompt`` ends with an opening ``<think>`` (whitespace aside): the completion starts inside.

    TinyZero's template ends so, and so does a chat continuing an assistant turn that opened the thinking.
    Only the end counts: a prompt that merely names the tag ("show your work in <think> tags") prefills
    nothing, and its completion is judged as written.

    Example:
        >>> [prompt_prefills_think(p) for p in ("Assistant: <think> ", "Think in <think> tags. Assistant:")]
        [True, False]
    """
    return prompt.rstrip().endswith("<think>")


_REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


def _message_text(messages: Sequence[Any]) -> str:
    """Joins the assistant turns of a chat completion, restoring split-off reasoning."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise TypeError(f"chat completion messages must be dicts, got {type(message).__name__}")
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content") or ""
        # vLLM / DeepSeek call it reasoning_content, some servers reasoning, TRL's gpt-oss schema thinking
        reasoning = next((message[k] for k in _REASONING_KEYS if message.get(k)), "")
        if not isinstance(content, str) or not isinstance(reasoning, str):
            raise TypeError(f"chat message 'content' and {' / '.join(_REASONING_KEYS)} must be strings")
        parts.append(f"<think>{reasoning}</think>{content}" if reasoning else content)
    return "".join(parts)


def _prompt_text(prompt: Any) -> str:
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        # A conversational prompt: the completion continues its last message only when that is the
        # assistant's own (TRL's continue_final_message); after a user turn it starts a new message.
        last = prompt[-1] if prompt else {}
        if isinstance(last, Mapping) and last.get("role") == "assistant":
            content = last.get("content")
            return content if isinstance(content, str) else ""
    return ""


def to_completion(completion: Any, prompt: Any = None, token_ids: Any = None) -> Completion:
    """Normalises one completion (string or chat messages) into a :class:`Completion`.

    Args:
        completion: A string, or a list of chat messages (dicts with ``role`` / ``content`` and optionally
            ``reasoning_content``).
        prompt: The matching prompt (string or chat messages), if known.
        token_ids: The completion's token ids, if known.

    Returns:
        The normalised completion.

    Raises:
        TypeError: If ``completion`` is neither a string nor a list of message dicts.

    Example:
        >>> to_completion([{"role": "assistant", "content": "<answer>4</answer>",
        ...                 "reasoning_content": "2+2"}]).text
        '<think>2+2</think><answer>4</answer>'
    """
    if isinstance(completion, Completion):
        return completion
    if isinstance(completion, str):
        text = completion
    elif isinstance(completion, Sequence) and not isinstance(completion, (bytes, bytearray)):
        text = _message_text(completion)
    elif isinstance(completion, Mapping):
        text = _message_text([completion])
    else:
        raise TypeError(
            f"a completion must be a string or a list of chat messages, got {type(completion).__name__}"
        )
    ids = tuple(int(i) for i in token_ids) if token_ids is not None else None
    return Completion(text=text, prompt=_prompt_text(prompt), token_ids=ids)


def _column(name: str, values: Any, n: int) -> Sequence[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            f"column {name!r} must be a list with one value per completion, got {type(values).__name__}"
        )
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values but there are {n} completions")
    return values


class Reward:
    """Base class of every reward: validates a batch, judges each sample, explains itself.

    Subclasses set ``columns`` (required dataset columns), optionally ``optional_columns``, ``value_range``
    and ``__name__``, and implement :meth:`judge`. Instances must stay picklable (plain attributes only) so
    trainers can ship them to worker processes.
    """

    __name__: str = "reward"
    columns: ClassVar[tuple[str, ...]] = ()
    optional_columns: ClassVar[tuple[str, ...]] = ()
    value_range: tuple[float, float] = (0.0, 1.0)

    def judge(self, completion: Completion, **row: Any) -> RewardResult:  # pragma: no cover - abstract
        """Scores one normalised completion given its row of column values."""
        raise NotImplementedError

    # -- batch plumbing -------------------------------------------------------------------------------------

    def _rows(self, n: int, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        missing = [c for c in self.columns if kwargs.get(c) is None]
        if missing:
            raise ValueError(
                f"{self.__name__} needs the dataset column(s) {missing}; got columns {sorted(kwargs)}"
            )
        present = [c for c in (*self.columns, *self.optional_columns) if kwargs.get(c) is not None]
        cols = {c: _column(c, kwargs[c], n) for c in present}
        return [{c: cols[c][i] for c in present} for i in range(n)]

    def _completions(self, completions: Any, kwargs: Mapping[str, Any]) -> list[Completion]:
        if isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
            raise TypeError(f"completions must be a list, got {type(completions).__name__}")
        n = len(completions)
        prompts = kwargs.get("prompts")
        ids = kwargs.get("completion_ids")
        prompts = _column("prompts", prompts, n) if prompts is not None else [None] * n
        ids = _column("completion_ids", ids, n) if ids is not None else [None] * n
        return [to_completion(c, p, t) for c, p, t in zip(completions, prompts, ids, strict=True)]

    def explain_batch(
        self, completions: Sequence[Completion], rows: Sequence[dict[str, Any]]
    ) -> list[RewardResult]:
        """Judges a validated batch; override to parallelise."""
        return [self.judge(c, **row) for c, row in zip(completions, rows, strict=True)]

    def explain_all(self, completions: Any, **kwargs: Any) -> list[RewardResult]:
        """Like ``__call__`` but returns a :class:`RewardResult` per completion."""
        items = self._completions(completions, kwargs)
        results = self.explain_batch(items, self._rows(len(items), kwargs))
        assert len(results) == len(items), f"{self.__name__} returned {len(results)} for {len(items)}"
        return results

    def explain(self, completion: Any, **row: Any) -> RewardResult:
        """Explains the score of one completion; ``row`` holds scalar column values (``target=24``).

        Example:
            >>> from rewards import think_format
            >>> think_format.explain("no tags").reason  # doctest: +SKIP
            'no_think_tag'
        """
        if "prompt" in row:
            row["prompts"] = row.pop("prompt")
        batch = {k: [v] for k, v in row.items()}
        return self.explain_all([completion], **batch)[0]

    def __call__(self, completions: Any, **kwargs: Any) -> list[float | None]:
        values = [r.value for r in self.explain_all(completions, **kwargs)]
        lo, hi = self.value_range
        for v in values:
            assert v is None or (math.isfinite(v) and lo <= v <= hi), f"{self.__name__} produced {v}"
        return values

    def __repr__(self) -> str:
        return f"<reward {self.__name__}>"
