"""Shared machinery of the single-turn reasoning environments: spaces, seeding, prompts, scoring.

Key ideas:

* **Spaces that admit real LLM text.** :class:`UnicodeText` is a ``gymnasium.spaces.Text`` whose membership
  test accepts *any* unicode string between ``min_length`` (0: empty completions are legal) and
  ``max_length`` (a million characters by default) — newlines, emoji, lone surrogates included. Enumerating
  all 1.1 M code points as a charset would cost ~100 MB per space and per pickle, so only sampling uses a
  small representative charset (ASCII printable, whitespace and a few multi-byte characters).
* **Items are pure functions of (seed, split, index).** ``reset(seed=s)`` selects the data-set stream ``s``
  and item 0; each further ``reset()`` moves to the next item; ``options={"index": i}`` replays item ``i``
  exactly (GRPO groups share a prompt). An env never seeded draws its stream seed from its own
  ``np_random``; no global RNG is touched.
* **Scoring is the rewards package.** ``step`` calls a reward with TRL's contract
  (``fn([completion], prompts=[prompt], **columns)``); a ``rewards.combine`` reward also reports its
  per-component breakdown, returned as ``info["rewards"]``.

References: Gymnasium ``Env`` API and ``utils.env_checker``; DeepSeek-R1 (arXiv:2501.12948) rule rewards.

Left out on purpose: no tokenisation (observations are text); render is ``"ansi"`` text only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from rlenv import templates

__all__ = ["MAX_COMPLETION_CHARS", "ReasoningEnv", "UnicodeText", "default_reward", "observation_space_for"]

MAX_COMPLETION_CHARS = 1 << 20
_SAMPLE_CHARSET = (
    "".join(chr(c) for c in range(32, 127)) + "\n\t" + "éßπ∑→中文😀"
)


class UnicodeText(spaces.Text):
    """A ``Text`` space containing every unicode string of ``min_length..max_length`` characters.

    Sampling draws from a small representative charset, with lengths up to ``sample_max_length`` (sampling a
    million-character string would only slow checkers down).

    Example:
        >>> space = UnicodeText(100)
        >>> "", "naïve 😀\\n<think>" in space, "x" * 101 in space
        ('', True, False)
    """

    def __init__(self, max_length: int = MAX_COMPLETION_CHARS, *, min_length: int = 0,
                 sample_max_length: int = 64, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)
        self.sample_max_length = int(sample_max_length)

    def contains(self, x: Any) -> bool:
        """Any ``str`` whose length is within bounds."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string from the sampling charset (length capped at ``sample_max_length``)."""
        if mask is None and probability is None:
            hi = min(self.max_length, max(self.min_length, self.sample_max_length))
            length = int(self.np_random.integers(self.min_length, hi + 1))
            return super().sample(mask=(length, None))
        return super().sample(mask=mask, probability=probability)

    @property
    def is_np_flattenable(self) -> bool:
        """Not flattenable: characters outside the sampling charset have no index."""
        return False

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, UnicodeText) and self.min_length == other.min_length
                and self.max_length == other.max_length)

    __hash__ = None  # type: ignore[assignment]  # mutable rng state, as in gymnasium's spaces


def observation_space_for(template: str, max_chars: int) -> spaces.Space:
    """Text for text templates; a tuple of ``{"role", "content"}`` messages for ``"chat"``."""
    if template == "chat":
        message = spaces.Dict({"role": spaces.Text(16, min_length=1, charset="abcdefghijklmnopqrstuvwxyz"),
                               "content": UnicodeText(max_chars)})
        return spaces.Sequence(message, stack=False)
    return UnicodeText(max_chars)


def default_reward(accuracy: Callable[..., Any], weights: Mapping[str, float] | None = None,
                   gates: Mapping[str, str] | None = None) -> Any:
    """``rewards.combine`` of ``accuracy`` and ``think_format`` (0.9 / 0.1: a correct, well-formatted answer
    scores exactly 1.0, as in TinyZero's 1.0 / 0.1 scheme rescaled); ``gates`` as in ``rewards.combine``,
    e.g. ``{"format": "accuracy"}``: the format counts only on a right answer."""
    import rewards

    weights = dict(weights) if weights is not None else {"accuracy": 0.9, "format": 0.1}
    return rewards.combine({"accuracy": accuracy, "format": rewards.think_format}, weights=weights,
                           gates=gates)


def score(reward: Callable[..., Any], completion: str, prompt: Any, columns: Mapping[str, Any]
          ) -> tuple[float, dict[str, float | None]]:
    """Scores one completion; returns (total as float, per-component values). ``None`` totals score 0."""
    batch = {k: [v] for k, v in columns.items()}
    breakdown_fn = getattr(reward, "breakdown", None)
    if callable(breakdown_fn):
        parts = breakdown_fn([completion], prompts=[prompt], **batch)
        total = parts.get("total", [None])[0]
        components = {k: v[0] for k, v in parts.items() if k != "total"}
    else:
        total = reward([completion], prompts=[prompt], **batch)[0]
        components = {getattr(reward, "__name__", "reward"): total}
    return (0.0 if total is None else float(total)), components


class ReasoningEnv(gym.Env):
    """Base of the single-turn envs; subclasses define the task source and the default reward.

    Subclasses set ``family`` and ``template_file`` and implement :meth:`make_row` (item ``index`` of stream
    ``seed`` as a dict of reward columns), :meth:`prompt_fields` and :meth:`make_default_reward`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}
    family: ClassVar[str] = ""
    template_file: ClassVar[str] = ""
    reward_columns: ClassVar[tuple[str, ...]] = ()
    levels: ClassVar[tuple[int, ...]] = (1, 2, 3, 4, 5)

    def __init__(self, *, split: str = "train", difficulty: int = 2, template: str = "r1zero",
                 reward: Callable[..., Any] | None = None, reward_weights: Mapping[str, float] | None = None,
                 reward_gates: Mapping[str, str] | None = None, max_prompt_chars: int = 1 << 16,
                 max_completion_chars: int = MAX_COMPLETION_CHARS,
                 render_mode: str | None = None) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r} must be 'train' or 'test'")
        if template not in templates.TEMPLATE_NAMES:
            raise ValueError(f"template={template!r} must be one of {templates.TEMPLATE_NAMES}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ValueError(f"render_mode={render_mode!r} must be None or one of {modes}")
        if reward is not None and not callable(reward):
            raise TypeError(f"reward must be a callable (rewards contract), got {type(reward).__name__}")
        if reward is not None and (reward_weights is not None or reward_gates is not None):
            raise ValueError("reward_weights / reward_gates configure the default reward; with reward= "
                             "given, compose it yourself (rewards.combine)")
        if reward_gates is not None:
            names = {"accuracy", "format"}
            if not isinstance(reward_gates, Mapping) or not all(
                k in names and v in names and k != v for k, v in reward_gates.items()
            ):
                raise ValueError(f"reward_gates={reward_gates!r} must map a default component ('accuracy', "
                                 "'format') to the other, e.g. {'format': 'accuracy'}")
        self.split, self.template, self.render_mode = split, template, render_mode
        self.observation_space = observation_space_for(template, max_prompt_chars)
        self.action_space = UnicodeText(max_completion_chars)
        self.set_difficulty(difficulty)
        self._reward, self._reward_weights, self._reward_gates = reward, reward_weights, reward_gates
        self._data_seed: int | None = None
        self._next_index = 0
        self._row: dict[str, Any] | None = None
        self._prompt: Any = None
        self._done = False
        self._last_text = ""

    # -- subclass hooks ------------------------------------------------------------------------------------

    def make_row(self, index: int, seed: int) -> dict[str, Any]:  # pragma: no cover - abstract
        """Item ``index`` of stream ``seed`` (reward columns plus any display fields)."""
        raise NotImplementedError

    def prompt_fields(self, row: Mapping[str, Any]) -> dict[str, str]:  # pragma: no cover - abstract
        """The template placeholders of a row, formatted as text."""
        raise NotImplementedError

    def make_default_reward(self, weights: Mapping[str, float] | None,
                            gates: Mapping[str, str] | None = None) -> Callable[..., Any]:
        """The default reward (accuracy + format; see :func:`default_reward`)."""
        raise NotImplementedError  # pragma: no cover

    def set_difficulty(self, level: int) -> None:
        """Sets the difficulty used by items generated from now on (curricula call this)."""
        if level not in self.levels:
            raise ValueError(f"difficulty={level!r} must be one of {self.levels}")
        self.difficulty = int(level)

    # -- public API -----------------------------------------------------------------------------------------

    @property
    def reward_fn(self) -> Callable[..., Any]:
        """The reward scoring a step: ``reward=`` if given, else the default (built on first use, so envs
        that only produce prompts, e.g. for export, never load a reward)."""
        if self._reward is None:
            self._reward = self.make_default_reward(self._reward_weights, self._reward_gates)
        return self._reward

    def render_prompt(self, row: Mapping[str, Any]) -> Any:
        """The observation (prompt text, or chat messages) of a row."""
        return templates.render(self.template_file, self.template, self.prompt_fields(row))

    def columns(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The reward columns of a row."""
        return {c: row[c] for c in self.reward_columns}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"index", "difficulty"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; allowed: ['difficulty', 'index']")
        if seed is not None:
            self._data_seed, self._next_index = int(seed), 0
        elif self._data_seed is None:
            self._data_seed = int(self.np_random.integers(1 << 62))
        if "difficulty" in options:
            self.set_difficulty(options["difficulty"])
        index = options.get("index", self._next_index)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"options['index']={index!r} must be a non-negative int")
        index = int(index)
        row = self.make_row(index, self._data_seed)
        self._next_index = index + 1
        self._row, self._done = row, False
        self._prompt = self.render_prompt(row)
        self._last_text = self._prompt if isinstance(self._prompt, str) else self._prompt[-1]["content"]
        info = {**copy.deepcopy(row), "index": index, "seed": self._data_seed, "split": self.split,
                "difficulty": self.difficulty}
        return copy.deepcopy(self._prompt), info

    def check_action(self, action: Any) -> str:
        """Raises ``TypeError`` for a non-string action and ``ResetNeeded`` outside an episode."""
        if not isinstance(action, str):
            raise TypeError(f"the action must be the completion text (str), got {type(action).__name__}")
        if self._row is None:
            raise ResetNeeded("Cannot call env.step() before calling env.reset()")
        if self._done:
            raise ResetNeeded("The episode is over: call env.reset() before env.step()")
        return action

    def step(self, action: str) -> tuple[Any, float, bool, bool, dict]:
        completion = self.check_action(action)
        total, components = score(self.reward_fn, completion, self._prompt, self.columns(self._row))
        self._done, self._last_text = True, completion
        empty = "" if isinstance(self._prompt, str) else ()
        return empty, total, True, False, {"rewards": components}

    def render(self) -> str | None:
        """``"ansi"``: the current prompt, or the last completion after a step."""
        return self._last_text if self.render_mode == "ansi" else None


class RowTable:
    """Rows loaded from a file or dataset, served in a per-(seed, split, epoch) shuffled order.

    Item ``i`` is row ``perm_e[i % n]`` with ``e = i // n``, so every index maps to exactly one row and each
    epoch visits all rows once; ``shuffle=False`` serves rows in file order.
    """

    def __init__(self, rows: list[dict[str, Any]], family: str, *, shuffle: bool = True) -> None:
        if not rows:
            raise ValueError(f"{family}: the data source has no rows")
        self.rows, self.family, self.shuffle = rows, family, shuffle
        self._perm_key: tuple[int, str, int] | None = None
        self._perm: list[int] = []

    def row(self, index: int, seed: int, split: str) -> dict[str, Any]:
        """The row served as item ``index`` (a copy)."""
        n = len(self.rows)
        epoch, pos = divmod(index, n)
        if not self.shuffle:
            return dict(self.rows[pos], row=pos)
        key = (seed, split, epoch)
        if key != self._perm_key:
            from rlenv.tasks._seeding import item_rng

            self._perm = item_rng(self.family + "/order", seed, split, epoch).permutation(n).tolist()
            self._perm_key = key
        return dict(self.rows[self._perm[pos]], row=self._perm[pos])
