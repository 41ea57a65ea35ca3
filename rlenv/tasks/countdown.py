"""Countdown number puzzles: a fast generator that is solvable by construction, and an exact solver.

An item is a list of 3-6 numbers and a target; the player writes an arithmetic expression (``+ - * /``,
parentheses) that uses every number exactly once and equals the target (TinyZero's countdown task).

Key ideas:

* **Solvable by construction.** The generator draws the numbers, then combines two random pool entries with
  a random operator until one value is left (integer intermediates only: ``a - b`` with ``a > b``, ``a / b``
  only when exact). That value is the target and the combination is a witness solution (``item["solution"]``).
* **Shortcut control.** Built naively, many targets are simply the sum or the product of all the numbers, so a
  model that always adds (or multiplies) everything scores well without searching. ``is_shortcut`` names these
  targets; by default the generator rejects them and only draws one on purpose at ``shortcut_rate`` (2 % by
  default), sum or product with equal odds; a product rarely fits the target range and the draw then falls
  back to an ordinary item, so the measured rates are lower (~0.9 % sums and ~0.2 % products at the default
  ranges). :func:`target_distribution` reports the rates.
* **Reproducible per item.** Item ``i`` of (seed, split) comes from its own SeedSequence stream
  (:mod:`rlenv.tasks._seeding`), so it can be regenerated alone and seeds never share streams.

References: TinyZero (Pan et al., 2025) countdown task; Countdown (Channel 4) rules.

Left out on purpose: the solver only searches integer intermediates (the classic rules); an item solvable
only through fractions (e.g. ``(1 + 1/3) * 6``) may get ``None`` even though the reward accepts such answers.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlenv.tasks._seeding import UniformStream, check_split, draw_on_side, item_rng

__all__ = [
    "CountdownConfig",
    "generate",
    "generate_item",
    "is_shortcut",
    "naive_item",
    "solve",
    "solve_steps",
    "target_distribution",
]

_OPS = ("+", "-", "*", "/")
# difficulty level -> (min_numbers, max_numbers, min_value, max_value, min_target, max_target)
_LEVELS: dict[int, tuple[int, int, int, int, int, int]] = {
    1: (3, 3, 1, 20, 1, 50),
    2: (3, 4, 1, 99, 10, 100),
    3: (4, 4, 1, 99, 10, 300),
    4: (5, 5, 1, 100, 100, 999),
    5: (6, 6, 1, 100, 100, 999),
}


@dataclass(frozen=True, kw_only=True)
class CountdownConfig:
    """How countdown items are drawn. The defaults match TinyZero's 3-4 number task."""

    min_numbers: int = 3
    """Fewest numbers in an item (3-6)."""
    max_numbers: int = 4
    """Most numbers in an item (3-6, >= min_numbers)."""
    min_value: int = 1
    """Smallest number drawn (>= 1)."""
    max_value: int = 99
    """Largest number drawn."""
    min_target: int = 10
    """Smallest admissible target (>= 0)."""
    max_target: int = 100
    """Largest admissible target."""
    operators: tuple[str, ...] = _OPS
    """Operators the generator combines numbers with (a non-empty subset of + - * /)."""
    shortcut_rate: float = 0.02
    """Fraction of items whose target is the sum or product of all numbers (0 rejects them all)."""
    max_tries: int = 200
    """Draws per item before giving up (a config whose target range is unreachable fails loudly)."""

    def __post_init__(self) -> None:
        if not 3 <= self.min_numbers <= self.max_numbers <= 6:
            raise ValueError(
                f"need 3 <= min_numbers <= max_numbers <= 6, got {self.min_numbers}, {self.max_numbers}"
            )
        if not 1 <= self.min_value <= self.max_value:
            raise ValueError(f"need 1 <= min_value <= max_value, got {self.min_value}, {self.max_value}")
        if not 0 <= self.min_target <= self.max_target:
            raise ValueError(f"need 0 <= min_target <= max_target, got {self.min_target}, {self.max_target}")
        if not self.operators or any(op not in _OPS for op in self.operators):
            raise ValueError(f"operators={self.operators!r} must be a non-empty subset of {_OPS}")
        if not 0.0 <= self.shortcut_rate <= 1.0:
            raise ValueError(f"shortcut_rate={self.shortcut_rate} must be in [0, 1]")
        if self.max_tries < 1:
            raise ValueError(f"max_tries={self.max_tries} must be >= 1")

    @classmethod
    def for_difficulty(cls, level: int, **overrides: Any) -> CountdownConfig:
        """A preset per difficulty level 1-5 (3 small numbers ... 6 numbers with targets up to 999).

        Example:
            >>> CountdownConfig.for_difficulty(5).max_numbers
            6
        """
        if level not in _LEVELS:
            raise ValueError(f"difficulty={level!r} must be one of {sorted(_LEVELS)}")
        lo_n, hi_n, lo_v, hi_v, lo_t, hi_t = _LEVELS[level]
        fields = dict(min_numbers=lo_n, max_numbers=hi_n, min_value=lo_v, max_value=hi_v,
                      min_target=lo_t, max_target=hi_t)
        return cls(**{**fields, **overrides})


def is_shortcut(nums: list[int], target: int) -> bool:
    """True when ``target`` is the sum or the product of all of ``nums``.

    Example:
        >>> is_shortcut([2, 3, 4], 24), is_shortcut([2, 3, 4], 10)
        (True, False)
    """
    return target == sum(nums) or target == math.prod(nums)


def _combine(a: int, op: str, b: int) -> int | None:
    """Integer Countdown arithmetic: positive differences, exact divisions; None when not allowed."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a > b else None
    return a // b if b > 1 and a % b == 0 else None


def _random_witness(nums: list[int], ops: tuple[str, ...], s: UniformStream) -> tuple[int, str] | None:
    """Folds the numbers with random operators into one value and its expression (None on a dead end)."""
    pool = [(v, str(v)) for v in nums]
    while len(pool) > 1:
        i = int(s.random() * len(pool))
        j = int(s.random() * (len(pool) - 1))
        j += j >= i
        (a, ea), (b, eb) = pool[i], pool[j]
        if a < b:  # keep '-' and '/' meaningful: the larger operand goes first
            (a, ea), (b, eb) = (b, eb), (a, ea)
        op = s.choice(ops)
        value = _combine(a, op, b)
        if value is None:  # '-' or '/' not allowed here: '+' (or '*'), if the settings allow one
            op = next((o for o in ("+", "*") if o in ops), op)
            value = _combine(a, op, b)
            if value is None:
                return None
        for k in sorted((i, j), reverse=True):
            del pool[k]
        expr = f"{ea} {op} {eb}" if len(pool) == 0 else f"({ea} {op} {eb})"
        pool.append((value, expr))
    return pool[0]


def _draw_numbers(config: CountdownConfig, s: UniformStream) -> list[int]:
    n = s.randint(config.min_numbers, config.max_numbers)
    return [s.randint(config.min_value, config.max_value) for _ in range(n)]


def _forced_shortcut(config: CountdownConfig, s: UniformStream) -> dict[str, Any] | None:
    """An item whose target is the sum or the product of its numbers (drawn at ``shortcut_rate``)."""
    use_sum = s.random() < 0.5
    for _ in range(config.max_tries):
        nums = _draw_numbers(config, s)
        target = sum(nums) if use_sum else math.prod(nums)
        if config.min_target <= target <= config.max_target:
            op = " + " if use_sum else " * "
            return {"nums": nums, "target": target, "solution": op.join(map(str, nums))}
    return None


def generate_item(index: int, *, seed: int = 0, split: str = "train",
                  config: CountdownConfig | None = None) -> dict[str, Any]:
    """Item ``index`` of the (seed, split) stream: ``{"nums", "target", "solution"}``.

    Args:
        index: Item index (>= 0).
        seed: Data-set seed.
        split: ``"train"`` or ``"test"`` (disjoint streams, and no problem on both sides:
            :func:`rlenv.tasks._seeding.split_of` of :func:`content_key`).
        config: Generator settings (defaults: :class:`CountdownConfig`).

    Returns:
        A dict with ``nums`` (list of int), ``target`` (int) and ``solution`` (a witness expression).

    Raises:
        ValueError: If no admissible item is found within ``config.max_tries`` draws.

    Example:
        >>> item = generate_item(0, seed=42)
        >>> item == generate_item(0, seed=42) and 10 <= item["target"] <= 100
        True
    """
    config = config or CountdownConfig()
    s = UniformStream(item_rng("countdown", seed, split, index))
    return draw_on_side(split, lambda: _draw_item(config, s),
                        lambda item: content_key(item["nums"], item["target"]), "countdown item")


def content_key(nums: Sequence[int], target: int) -> str:
    """What makes two countdown problems the same: the numbers as a multiset and the target."""
    return f"countdown {sorted(nums)} {target}"


def _draw_item(config: CountdownConfig, s: UniformStream) -> dict[str, Any]:
    if config.shortcut_rate > 0 and s.random() < config.shortcut_rate:
        forced = _forced_shortcut(config, s)
        if forced is not None:
            return forced
    for _ in range(config.max_tries):
        nums = _draw_numbers(config, s)
        for _ in range(4):  # a few operator draws per number draw: numbers are the expensive part to redo
            witness = _random_witness(nums, config.operators, s)
            if witness is None:
                continue
            target, expr = witness
            if config.min_target <= target <= config.max_target and not is_shortcut(nums, target):
                return {"nums": nums, "target": target, "solution": expr}
    raise ValueError(
        f"no countdown item with a target in [{config.min_target}, {config.max_target}] after "
        f"{config.max_tries} draws; widen the target range or the number range"
    )


def generate(n: int, *, seed: int = 0, split: str = "train", start: int = 0,
             config: CountdownConfig | None = None) -> list[dict[str, Any]]:
    """Items ``start .. start + n - 1`` of the (seed, split) stream.

    Example:
        >>> [len(item["nums"]) in (3, 4) for item in generate(3, seed=1)]
        [True, True, True]
    """
    check_split(split)
    config = config or CountdownConfig()
    return [generate_item(i, seed=seed, split=split, config=config) for i in range(start, start + n)]


def naive_item(index: int, *, seed: int = 0, config: CountdownConfig | None = None) -> dict[str, Any]:
    """The naive construction (random operator fold, no shortcut filter), kept as the benchmark baseline.

    Example:
        >>> "target" in naive_item(0)
        True
    """
    config = config or CountdownConfig()
    s = UniformStream(item_rng("countdown/naive", seed, "train", index))
    for _ in range(config.max_tries):
        nums = _draw_numbers(config, s)
        witness = _random_witness(nums, config.operators, s)
        if witness is not None and config.min_target <= witness[0] <= config.max_target:
            return {"nums": nums, "target": witness[0], "solution": witness[1]}
    raise ValueError("no naive countdown item found; widen the target range")


def target_distribution(items: list[dict[str, Any]], bins: int = 10) -> dict[str, Any]:
    """Summarises generated items: shortcut rates, target histogram and how many numbers items have.

    Args:
        items: Rows with ``nums`` and ``target``.
        bins: Number of equal-width target bins.

    Returns:
        ``{"n", "sum_rate", "product_rate", "n_numbers": {k: share}, "target_min", "target_max",
        "histogram": [(lo, hi, share), ...]}``.

    Example:
        >>> d = target_distribution(generate(200, seed=0))
        >>> d["sum_rate"] < 0.05 and d["product_rate"] < 0.05
        True
    """
    if not items:
        raise ValueError("target_distribution needs at least one item")
    n = len(items)
    targets = [it["target"] for it in items]
    lo, hi = min(targets), max(targets)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    hist = Counter((t - lo) // width for t in targets)
    return {
        "n": n,
        "sum_rate": sum(it["target"] == sum(it["nums"]) for it in items) / n,
        "product_rate": sum(it["target"] == math.prod(it["nums"]) for it in items) / n,
        "n_numbers": {k: c / n for k, c in sorted(Counter(len(it["nums"]) for it in items).items())},
        "target_min": lo,
        "target_max": hi,
        "histogram": [(lo + b * width, lo + (b + 1) * width - 1, hist[b] / n) for b in range(bins)],
    }


# -- solver ------------------------------------------------------------------------------------------------


def _search(pool: tuple[tuple[int, str], ...], target: int, dead: set[tuple[int, ...]],
            steps: list[tuple[int, str, int, int]]) -> str | None:
    if len(pool) == 1:
        return pool[0][1] if pool[0][0] == target else None
    key = tuple(sorted(v for v, _ in pool))
    if key in dead:
        return None
    for i in range(len(pool)):
        for j in range(i + 1, len(pool)):
            (a, ea), (b, eb) = (pool[i], pool[j]) if pool[i][0] >= pool[j][0] else (pool[j], pool[i])
            rest = tuple(p for k, p in enumerate(pool) if k not in (i, j))
            for op in _OPS:
                value = _combine(a, op, b)
                if value is None:
                    continue
                expr = f"{ea} {op} {eb}" if not rest else f"({ea} {op} {eb})"
                steps.append((a, op, b, value))
                found = _search((*rest, (value, expr)), target, dead, steps)
                if found is not None:
                    return found
                steps.pop()
    dead.add(key)
    return None


def solve_steps(nums: list[int], target: int) -> list[tuple[int, str, int, int]] | None:
    """Ordered steps ``(a, op, b, result)`` reaching ``target`` with every number used once, or None.

    Exhaustive depth-first search over integer intermediates with memoised dead ends.

    Example:
        >>> solve_steps([3, 5, 2], 16)
        [(5, '+', 3, 8), (8, '*', 2, 16)]
    """
    _check_item(nums, target)
    steps: list[tuple[int, str, int, int]] = []
    pool = tuple((int(v), str(int(v))) for v in nums)
    return steps if _search(pool, int(target), set(), steps) is not None else None


def solve(nums: list[int], target: int) -> str | None:
    """An equation using every number exactly once that equals ``target``, or None if none exists.

    Example:
        >>> solve([3, 5, 2], 16)
        '(5 + 3) * 2'
    """
    _check_item(nums, target)
    pool = tuple((int(v), str(int(v))) for v in nums)
    return _search(pool, int(target), set(), [])


def _check_item(nums: list[int], target: int) -> None:
    if isinstance(nums, (str, bytes)) or not all(isinstance(v, numbers.Integral) and v >= 0 for v in nums):
        raise TypeError(f"nums must be a list of non-negative ints, got {nums!r}")
    if not 1 <= len(nums) <= 8:
        raise ValueError(f"solve handles 1-8 numbers, got {len(nums)}")
    if not isinstance(target, numbers.Integral):
        raise TypeError(f"target must be an int, got {type(target).__name__}")
