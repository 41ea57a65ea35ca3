"""Supervised next-token training shared by ``rlenv pretrain``, ``rlenv sft`` and ``rlenv distill``.

Key idea: a data set is a list of token sequences with a 0/1 loss mask per token; a step takes the next
``batch_size * grad_accum_steps`` examples (per rank) of a seeded, epoch-wise shuffled order (so the data
position alone says where a resumed or data-parallel run is), right-pads them, and minimises the masked mean
next-token cross-entropy, accumulated over ``grad_accum_steps`` micro-batches. Pretraining masks nothing; SFT
masks the prompt.

On a CPU, where a step's cost follows the padded tokens, each micro-batch runs as passes of rows of similar
lengths (:func:`rlenv.train.policy.split_by_length`): the same rows, the same summed loss and gradient,
~25% fewer padded tokens on the countdown SFT data (SFT steps ~20% faster). Right-padded batches need no
attention mask, so the policy's fused causal attention applies.

Left out on purpose: the bundled model's multi-token-prediction loss, sequence packing with cross-document
attention masks (documents are packed back to back, separated by EOS, as GPT-2 did).
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rlenv.train.config import OptimConfig, StageResult
from rlenv.train.distributed import all_reduce_grads
from rlenv.train.optim import optimizer_step
from rlenv.train.policy import Packed, split_by_length
from rlenv.train.runner import Run, start_run

__all__ = ["Example", "deal_by_length", "example_order", "grouped_order", "lm_loss", "train_lm"]


@dataclass(frozen=True)
class Example:
    """Token ids and a per-token loss mask (1 = predict this token) of the same length."""

    ids: tuple[int, ...]
    mask: tuple[int, ...]


def example_order(n: int, position: int, count: int, seed: int) -> list[int]:
    """Indices of examples ``position .. position + count - 1`` of an endless epoch-wise shuffled stream.

    Example:
        >>> order = example_order(4, 0, 8, seed=0)
        >>> sorted(order[:4]) == sorted(order[4:]) == [0, 1, 2, 3]
        True
    """
    out = []
    for pos in range(position, position + count):
        epoch, offset = divmod(pos, n)
        out.append(_epoch_permutation(n, seed, epoch)[offset])
    return out


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    # Cached: shuffling all n indices for every example cost ~3 ms each (a third of a small SFT step).
    perm = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(perm)
    return tuple(perm)


_GROUP_WINDOW = 32
"""Steps' worth of examples sorted by length together when batches are grouped by length."""


def grouped_order(lengths: Sequence[int], position: int, count: int, seed: int, step_size: int,
                  batch_size: int) -> list[int]:
    """Like :func:`example_order`, with each batch drawn from examples of similar length.

    The stream is cut into windows of ``_GROUP_WINDOW * step_size`` positions; a window's examples (the
    same ones :func:`example_order` yields there, so every example is seen as often) are sorted by length,
    cut into batches of ``batch_size`` and the batches shuffled. Padding falls with no change to what is
    learned per epoch; order stays a pure function of the position, so resumed runs see the same batches.

    Example:
        >>> lengths = [5, 1, 5, 1]
        >>> order = grouped_order(lengths, 0, 8, seed=0, step_size=2, batch_size=2)
        >>> [len({lengths[i] for i in order[k : k + 2]}) for k in range(0, 8, 2)]  # one length per batch
        [1, 1, 1, 1]
    """
    window, key = _GROUP_WINDOW * step_size, tuple(lengths)
    out: list[int] = []
    pos, end = position, position + count
    while pos < end:  # one cached window lookup per window touched, not per example
        index, offset = divmod(pos, window)
        take = min(window - offset, end - pos)
        out += _grouped_window(key, index, window, seed, batch_size)[offset : offset + take]
        pos += take
    return out


@functools.lru_cache(maxsize=2)
def _grouped_window(lengths: tuple[int, ...], index: int, window: int, seed: int,
                    batch_size: int) -> tuple[int, ...]:
    members = sorted(example_order(len(lengths), index * window, window, seed), key=lengths.__getitem__)
    batches = [members[i : i + batch_size] for i in range(0, window, batch_size)]
    random.Random(f"rlenv.train.lm/group/{seed}/{index}").shuffle(batches)
    return tuple(i for batch in batches for i in batch)


def deal_by_length(lengths: Sequence[int], world: int) -> list[list[int]]:
    """Deals ``len(lengths)`` rows (a multiple of ``world``) to ``world`` ranks, the same count each, in a
    snake over the rows sorted by length: rank 0, 1, ..., world - 1, then back from world - 1 to 0, and so
    on. Returns each rank's row positions, shortest row first.

    A data-parallel step waits for its slowest rank. Dealt round-robin, the last rank got the longer row of
    every pair: on the r1 recipe's SFT data (two ranks of 8 rows) rank 1 computed ~11% longer than rank 0;
    dealt in a snake, rank 0 (which holds the longest row) ~4% longer than rank 1, and steps took ~3% less.

    Example:
        >>> deal_by_length([10, 1, 9, 2, 5, 6], 2)  # sorted: 1 2 5 6 9 10
        [[1, 5, 2], [3, 4, 0]]
    """
    if world < 1 or len(lengths) % world:
        raise ValueError(f"cannot deal {len(lengths)} rows evenly to {world} ranks")
    ranks: list[list[int]] = [[] for _ in range(world)]
    for i, j in enumerate(sorted(range(len(lengths)), key=lambda j: (lengths[j], j))):
        block, offset = divmod(i, world)
        ranks[offset if block % 2 == 0 else world - 1 - offset].append(j)
    return ranks


def lm_loss(run: Run, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of masked next-token cross-entropies and the number of predicted tokens of a micro-batch."""
    multiple = run.width_multiple
    width = -(-max(len(e.ids) for e in examples) // multiple) * multiple  # rounded up (bf16 on a CPU)
    pad = run.policy.pad_id
    tokens = torch.tensor([list(e.ids) + [pad] * (width - len(e.ids)) for e in examples])  # (B, T)
    attention = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in examples])  # (B, T)
    mask = torch.tensor([list(e.mask) + [0] * (width - len(e.ids)) for e in examples], dtype=torch.float32)
    packed = Packed(tokens, attention, mask, prompt_len=0)
    with run.autocast():
        logits, aux = run.policy.forward_logits(packed, None)  # (B, T, V)
    targets = tokens[:, 1:].to(logits.device)  # (B, T - 1)
    weight = mask[:, 1:].to(logits.device)  # (B, T - 1)
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none"
    ).view_as(targets)  # (B, T - 1)
    return (losses * weight).sum() + aux.float() * 0.0, weight.sum()


def _step(run: Run, data: Sequence[Example], batch_size: int, accum: int,
          lengths: Sequence[int] | None) -> dict[str, float]:
    config = run.config
    per_rank, rank, world = batch_size * accum, run.dist.rank, run.dist.world_size
    if lengths is None and world > 1:
        # The step's rows sorted by length and dealt in a snake (deal_by_length): every rank gets about the
        # same tokens, so no rank waits long at the all-reduce for one that drew the long rows.
        step = example_order(len(data), run.state.data_position, per_rank * world, config.seed)
        order = [step[j] for j in deal_by_length([len(data[i].ids) for i in step], world)[rank]]
    elif lengths is None:
        step = order = example_order(len(data), run.state.data_position, per_rank, config.seed)
    else:
        count = per_rank * world
        step = grouped_order(lengths, run.state.data_position, count, config.seed, count, batch_size)
        order = step[rank * per_rank : (rank + 1) * per_rank]
    run.state.data_position += per_rank * world
    micro = [order[i : i + batch_size] for i in range(0, per_rank, batch_size)]
    # The loss is the mean over the whole step's tokens (every rank knows the step's rows): each rank
    # divides by the step's count, and all_reduce_grads averages, hence the factor world.
    step_tokens = sum(sum(data[i].mask[1:]) for i in step)
    finite, loss_sum = True, 0.0
    passes = [
        [rows[j] for j in part]
        for rows in micro
        for part in (
            split_by_length([len(data[i].ids) for i in rows], run.width_multiple)
            if run.device.type == "cpu"  # a CPU's cost follows the padded tokens; a GPU's the passes
            else [range(len(rows))]
        )
    ]
    for rows in passes:
        loss, _ = lm_loss(run, [data[i] for i in rows])
        loss = loss * world / max(step_tokens, 1)
        if not math.isfinite(float(loss.detach())):
            finite = False
            continue
        loss.backward()
        loss_sum += float(loss.detach()) / world
    sums = all_reduce_grads(run.policy.module.parameters(), sums=(loss_sum, float(not finite)))
    loss_sum, ok = sums[0], sums[1] == 0.0
    lr = run.optimizer.param_groups[0]["lr"]  # the rate this step applies (the scheduler then moves on)
    result = optimizer_step(
        run.policy.module, run.optimizer, run.scheduler, config.max_grad_norm, loss_finite=ok
    )
    metrics = {
        "loss/lm": loss_sum,
        "loss/perplexity": math.exp(min(loss_sum, 50.0)),
        "optim/grad_norm": result.grad_norm,
        "optim/lr": lr,
        "train/skipped_updates": float(result.skipped),
        "train/tokens": float(step_tokens),
    }
    if not result.skipped:
        metrics.update(run.policy.after_optimizer_step())
    return metrics


def train_lm(
    config: OptimConfig, build_data: object, *, batch_size: int, grad_accum_steps: int, desc: str,
    group_by_length: bool = False,
) -> StageResult:
    """Runs a supervised stage: ``build_data(policy) -> list[Example]`` then ``config.steps`` updates.

    ``group_by_length`` draws each micro-batch from examples of similar length (:func:`grouped_order`).
    """
    run = start_run(config, total_updates=config.steps)
    data = build_data(run.policy)  # type: ignore[operator]
    if not data:
        raise ValueError(f"{type(config).__name__}: the training data is empty")
    lengths = tuple(len(e.ids) for e in data) if group_by_length else None
    bar = run.progress(desc)
    try:
        while run.running():
            started = time.perf_counter()
            metrics = _step(run, data, batch_size, grad_accum_steps, lengths)
            elapsed = time.perf_counter() - started
            metrics["perf/tokens_per_s"] = metrics["train/tokens"] / max(elapsed, 1e-9)
            metrics["perf/train_s"] = elapsed
            run.state.step += 1
            run.logger.log(run.state.step, metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss/lm']:.4f}")
            if run.after_step():
                break
    finally:
        bar.close()
    return run.finish()
