"""Difficulty curricula: a wrapper that sets an env's difficulty before each episode from a schedule.

Two schedules:

* :class:`FixedSchedule` — difficulty by episode count (``milestones=((0, 1), (500, 2), (2000, 3))``).
* :class:`AdaptiveSchedule` — raise the level when the success rate over the last ``window`` episodes at the
  current level passes ``raise_above``; lower it when it collapses below ``lower_below``. The window restarts
  after each change, so a rate is always measured at one level.

Key idea: schedules are frozen configs (picklable, printable); all mutable state (episode count, recent
outcomes, current level) lives in :class:`CurriculumWrapper`, which calls the env's ``set_difficulty`` (all
rlenv envs take levels 1-5). An explicit ``options={"difficulty": k}`` at reset still wins.

References: Bengio et al. (2009), curriculum learning; Kimi k1.5 (arXiv:2501.12599) and DAPO-style
difficulty filtering as motivation for success-rate-driven curricula.

Left out on purpose: no per-item difficulty estimates; success is ``episode return >= success_threshold``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

__all__ = ["AdaptiveSchedule", "CurriculumWrapper", "FixedSchedule"]


@dataclass(frozen=True, kw_only=True)
class FixedSchedule:
    """Difficulty as a step function of the number of finished episodes."""

    milestones: tuple[tuple[int, int], ...] = ((0, 1), (1000, 2), (3000, 3), (6000, 4), (10000, 5))
    """(first episode, level) pairs, episodes strictly increasing, the first at episode 0."""

    def __post_init__(self) -> None:
        episodes = [e for e, _ in self.milestones]
        if not self.milestones or episodes[0] != 0 or episodes != sorted(set(episodes)):
            raise ValueError(f"milestones={self.milestones!r} must start at episode 0 and strictly increase")

    @property
    def start(self) -> int:
        """The first level."""
        return self.milestones[0][1]

    def next_level(self, level: int, episodes: int, recent: deque[bool]) -> int:
        """The level for the episode after ``episodes`` finished ones.

        Example:
            >>> FixedSchedule(milestones=((0, 1), (10, 3))).next_level(1, 10, deque())
            3
        """
        current = self.milestones[0][1]
        for first, lvl in self.milestones:
            if episodes >= first:
                current = lvl
        return current


@dataclass(frozen=True, kw_only=True)
class AdaptiveSchedule:
    """Raise the level on sustained success, lower it on collapse."""

    start: int = 1
    """Initial level."""
    min_level: int = 1
    """Lowest level."""
    max_level: int = 5
    """Highest level."""
    window: int = 64
    """Episodes at the current level needed before any decision."""
    raise_above: float = 0.7
    """Success rate over the window above which the level goes up."""
    lower_below: float = 0.1
    """Success rate over the window below which the level goes down."""

    def __post_init__(self) -> None:
        if not self.min_level <= self.start <= self.max_level:
            raise ValueError(f"need min_level <= start <= max_level, got {self.min_level}, {self.start}, "
                             f"{self.max_level}")
        if self.window < 1:
            raise ValueError(f"window={self.window} must be >= 1")
        if not 0.0 <= self.lower_below < self.raise_above <= 1.0:
            raise ValueError(f"need 0 <= lower_below < raise_above <= 1, got {self.lower_below}, "
                             f"{self.raise_above}")

    def next_level(self, level: int, episodes: int, recent: deque[bool]) -> int:
        """The level after observing ``recent`` outcomes at ``level``.

        Example:
            >>> s = AdaptiveSchedule(window=4)
            >>> s.next_level(1, 4, deque([True] * 4)), s.next_level(3, 4, deque([False] * 4))
            (2, 2)
        """
        if len(recent) < self.window:
            return level
        rate = sum(recent) / len(recent)
        if rate > self.raise_above:
            return min(level + 1, self.max_level)
        if rate < self.lower_below:
            return max(level - 1, self.min_level)
        return level


class CurriculumWrapper(gym.Wrapper):
    """Sets the wrapped env's difficulty before each episode from ``schedule``.

    Attributes:
        level: The current difficulty level.
        episodes: Finished episodes so far.
        history: ``(episode, level)`` each time the level changed.

    Example:
        >>> import gymnasium as gym, rlenv
        >>> env = CurriculumWrapper(gym.make("rlenv/Countdown-v0"), AdaptiveSchedule(window=2))
        >>> _, info = env.reset(seed=0)
        >>> info["difficulty"]
        1
    """

    def __init__(self, env: gym.Env, schedule: FixedSchedule | AdaptiveSchedule, *,
                 success_threshold: float = 0.9) -> None:
        super().__init__(env)
        if not hasattr(env.unwrapped, "set_difficulty"):
            raise TypeError(f"{env.unwrapped!r} has no set_difficulty(level); wrap an rlenv environment")
        self.schedule, self.success_threshold = schedule, float(success_threshold)
        window = getattr(schedule, "window", 1)
        self.level, self.episodes = schedule.start, 0
        self.recent: deque[bool] = deque(maxlen=window)
        self.history: list[tuple[int, int]] = [(0, self.level)]
        self._return = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        options = dict(options or {})
        options.setdefault("difficulty", self.level)
        self._return = 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if terminated or truncated:
            self.episodes += 1
            self.recent.append(self._return >= self.success_threshold)
            new = self.schedule.next_level(self.level, self.episodes, self.recent)
            if new != self.level:
                self.level = new
                self.recent.clear()
                self.history.append((self.episodes, new))
            info = {**info, "curriculum_level": self.level}
        return obs, reward, terminated, truncated, info

    @property
    def success_rate(self) -> float | None:
        """Success rate over the current window (None before any episode at this level)."""
        return sum(self.recent) / len(self.recent) if self.recent else None
