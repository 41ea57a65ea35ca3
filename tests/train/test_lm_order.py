"""Data order of the supervised stages: epoch-wise shuffling and length-grouped batches."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rlenv.train.lm import _GROUP_WINDOW, example_order, grouped_order

LENGTHS = [random.Random(i).randint(20, 300) for i in range(200)]


def _padding(lengths: list[int], order: list[int], batch_size: int) -> float:
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    total = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - sum(lengths[i] for i in order) / total


@pytest.mark.parametrize("batch_size", [4, 16])
def test_grouped_order_sees_the_same_examples_as_the_shuffled_stream(batch_size: int) -> None:
    window = _GROUP_WINDOW * batch_size
    for index in range(3):
        grouped = grouped_order(LENGTHS, index * window, window, 0, batch_size, batch_size)
        plain = example_order(len(LENGTHS), index * window, window, 0)
        assert Counter(grouped) == Counter(plain)


def test_grouped_order_cuts_padding() -> None:
    count = _GROUP_WINDOW * 16 * 2
    grouped = _padding(LENGTHS, grouped_order(LENGTHS, 0, count, 0, 16, 16), 16)
    plain = _padding(LENGTHS, example_order(len(LENGTHS), 0, count, 0), 16)
    assert grouped < 0.1 < plain


def test_grouped_order_is_a_function_of_the_position() -> None:
    whole = grouped_order(LENGTHS, 0, 640, 3, 16, 8)
    pieces = [i for start in range(0, 640, 16) for i in grouped_order(LENGTHS, start, 16, 3, 16, 8)]
    assert whole == pieces
    assert whole != grouped_order(LENGTHS, 0, 640, 4, 16, 8)
