"""Per-item random streams: every item is a pure function of (task family, seed, split, index).

Key idea: reasoning-gym seeds item ``i`` of a data set with ``Random(seed + i)``, so the data sets of seeds 42
and 43 share all but one item. Here every item gets its own ``numpy.random.SeedSequence`` whose entropy is the
seed and whose ``spawn_key`` is ``(family, split, index)``: streams of different seeds, splits, families or
indices are statistically independent, and item ``i`` can be regenerated alone (GRPO groups replay
one prompt).

Disjoint streams are not disjoint items: two streams can draw the same problem (a 3-number countdown, an
easy code task). So each item's content also has a side, fixed by a hash of its content key
(:func:`split_of`): about one key in :data:`TEST_SHARE` is a test problem, the others train problems, and a
generator redraws (from the item's own stream) until the item falls on its split's side. The test split then
shares no problem with the train split of any seed.

Nothing here touches a global RNG (neither ``random`` nor ``numpy.random``'s legacy state).

References: NumPy, "Parallel random number generation" (SeedSequence spawning).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import TypeVar

import numpy as np

__all__ = ["SPLITS", "SPLIT_TRIES", "TEST_SHARE", "UniformStream", "check_split", "draw_on_side",
           "family_key", "item_rng", "split_of"]

# split name -> spawn-key component; train and test streams are disjoint by construction.
SPLITS: dict[str, int] = {"train": 0, "test": 1}


def check_split(split: str) -> int:
    """Returns the spawn-key component of ``split`` or raises ``ValueError`` naming the allowed values."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {sorted(SPLITS)}")
    return SPLITS[split]


TEST_SHARE = 8
"""One content key in ``TEST_SHARE`` is a test problem; the others are train problems."""

SPLIT_TRIES = 256
"""Draws a generator makes for an item on its split's side ((7/8)^256 ~ 1e-15 for a test item to fail)."""


def split_of(key: str) -> str:
    """The split a problem belongs to, from its content key (a stable hash: the same on every machine).

    Example:
        >>> keys = [f"countdown {n} 24" for n in range(800)]
        >>> 60 < sum(split_of(k) == "test" for k in keys) < 140  # about one in TEST_SHARE
        True
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "little") % TEST_SHARE == 0 else "train"


_Item = TypeVar("_Item")


def draw_on_side(split: str, draw: Callable[[], _Item], key: Callable[[_Item], str], what: str) -> _Item:
    """Calls ``draw`` until the drawn item's content ``key`` is on ``split``'s side (:func:`split_of`).

    Raises:
        ValueError: No such item in :data:`SPLIT_TRIES` draws (``what`` names the item in the message).

    Example:
        >>> draw_on_side("train", iter(range(100)).__next__, lambda n: f"demo {n}", "number") >= 0
        True
    """
    for _ in range(SPLIT_TRIES):
        item = draw()
        if split_of(key(item)) == split:
            return item
    raise ValueError(f"no {what} on the {split} side after {SPLIT_TRIES} draws; widen the settings")


def family_key(name: str) -> int:
    """A stable 32-bit key for a task family name (``"countdown"``, ``"math/linear"``, ...)."""
    return zlib.crc32(name.encode())


def item_rng(family: str, seed: int, split: str, index: int) -> np.random.Generator:
    """The private generator of one item.

    Args:
        family: Task family name; different families never share streams.
        seed: Data-set seed (any non-negative int).
        split: ``"train"`` or ``"test"``.
        index: Item index (non-negative).

    Returns:
        A fresh ``numpy.random.Generator`` (PCG64) for this item only.

    Raises:
        ValueError: On a negative seed or index, or an unknown split.

    Example:
        >>> a = item_rng("countdown", 42, "train", 7).integers(1 << 30)
        >>> bool(a == item_rng("countdown", 42, "train", 7).integers(1 << 30))
        True
    """
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    ss = np.random.SeedSequence(int(seed), spawn_key=(family_key(family), check_split(split), int(index)))
    return np.random.Generator(np.random.PCG64(ss))


class UniformStream:
    """Uniform floats drawn from an item's generator in blocks (one numpy call per block, not per draw).

    Generation code calls ``randint`` / ``choice`` many times per item; a numpy call per draw would cost more
    than the item itself.

    Example:
        >>> s = UniformStream(item_rng("demo", 0, "train", 0))
        >>> 1 <= s.randint(1, 6) <= 6
        True
    """

    __slots__ = ("_buf", "_pos", "_rng")

    def __init__(self, rng: np.random.Generator, block: int = 64) -> None:
        self._rng = rng
        self._buf: list[float] = rng.random(block).tolist()
        self._pos = 0

    def random(self) -> float:
        """A float in [0, 1)."""
        if self._pos == len(self._buf):
            self._buf = self._rng.random(len(self._buf)).tolist()
            self._pos = 0
        u = self._buf[self._pos]
        self._pos += 1
        return u

    def randint(self, lo: int, hi: int) -> int:
        """An int in [lo, hi] (both inclusive)."""
        return lo + int(self.random() * (hi - lo + 1))

    def choice(self, seq):
        """A uniformly chosen element of a non-empty sequence."""
        return seq[int(self.random() * len(seq))]

    def shuffle(self, items: list) -> list:
        """Shuffles ``items`` in place (Fisher-Yates) and returns it."""
        for i in range(len(items) - 1, 0, -1):
            j = int(self.random() * (i + 1))
            items[i], items[j] = items[j], items[i]
        return items
