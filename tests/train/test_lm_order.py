"""Batches of the supervised stages: epoch-wise shuffling, length-grouped batches, padded widths."""

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


def test_bf16_on_cpu_rounds_batch_widths_and_keeps_the_loss(tmp_path) -> None:
    # oneDNN caches a kernel per GEMM shape for bf16 on a CPU: widths are rounded up to a multiple of 32
    # there (bounded memory), and the extra padding is masked out, so the loss is that of the unpadded batch.
    import torch

    from rlenv.train.config import SFTConfig
    from rlenv.train.lm import Example, lm_loss
    from rlenv.train.runner import start_run

    torch.manual_seed(0)
    run = start_run(
        SFTConfig(run_dir=str(tmp_path), policy="tiny", precision="bf16", device="cpu", tensorboard=False),
        total_updates=1,
    )
    assert run.width_multiple == 32
    widths = []
    hook = run.policy.module.register_forward_pre_hook(lambda module, args: widths.append(args[0].shape[1]))
    batch = [Example(tuple(range(5, 5 + n)), tuple([0] * 3 + [1] * (n - 3))) for n in (7, 40)]
    rounded, count = lm_loss(run, batch)
    run.config = SFTConfig(run_dir=str(tmp_path), policy="tiny", precision="fp32", tensorboard=False)
    assert run.width_multiple == 1
    run.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # same precision, exact widths
    exact, count_exact = lm_loss(run, batch)
    hook.remove()
    assert widths == [64, 40] and count == count_exact == 4 + 37
    torch.testing.assert_close(rounded.float(), exact.float(), rtol=2e-2, atol=0)
