"""Batches of the supervised stages: epoch-wise shuffling, length-grouped batches, padded widths."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rlenv.train.lm import _GROUP_WINDOW, deal_by_length, example_order, grouped_order

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


@pytest.mark.parametrize("multiple", [1, 32])
def test_split_by_length_covers_the_batch_and_cuts_padded_tokens(multiple: int) -> None:
    from rlenv.train.policy import split_by_length

    rng = random.Random(multiple)
    for _ in range(50):
        lengths = [rng.choice([rng.randint(170, 190), rng.randint(220, 300)]) for _ in range(16)]
        parts = split_by_length(lengths, multiple, pass_cost=192)
        assert sorted(i for part in parts for i in part) == list(range(16))
        cost = sum(192 + len(p) * -(-max(lengths[i] for i in p) // multiple) * multiple for p in parts)
        assert cost <= 192 + 16 * -(-max(lengths) // multiple) * multiple  # never worse than one pass
    assert split_by_length([100] * 8, pass_cost=0) == [list(range(8))]  # equal lengths: one pass
    assert len(split_by_length([100] * 4 + [300] * 4, pass_cost=192)) == 2
    assert split_by_length([]) == []


def test_a_step_in_length_passes_has_the_gradient_of_one_padded_pass(tmp_path, monkeypatch) -> None:
    # SFT micro-batches on a CPU run as passes of similar lengths; the update must be the same one
    import torch

    from rlenv.train import lm, policy
    from rlenv.train.config import SFTConfig
    from rlenv.train.runner import start_run

    rng = random.Random(0)
    data = [lm.Example(tuple(rng.randrange(5, 200) for _ in range(n)), tuple([0] * 4 + [1] * (n - 4)))
            for n in [12, 60, 13, 58, 11, 64, 14, 61]]  # fmt: skip
    grads = []
    for cost in (10**9, 0):  # one pass (splitting never pays), then one pass per length
        monkeypatch.setattr(policy, "_PASS_COST", cost)
        torch.manual_seed(0)
        config = SFTConfig(run_dir=str(tmp_path / str(cost)), policy="tiny", device="cpu",
                           tensorboard=False, progress=False)  # fmt: skip
        run = start_run(config, total_updates=1)
        widths = []
        run.policy.module.register_forward_pre_hook(lambda m, args, w=widths: w.append(args[0].shape[1]))
        run.optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: grads.append([p.grad.clone() for g in opt.param_groups
                                                    for p in g["params"] if p.grad is not None])
        )  # fmt: skip
        lm._step(run, data, batch_size=8, accum=1, lengths=None)
        assert sorted(widths) == ([64] if cost else [11, 12, 13, 14, 58, 60, 61, 64])
    one, passes = grads
    assert len(one) == len(passes) > 0
    for a, b in zip(one, passes, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_deal_by_length_gives_every_rank_the_same_count_and_about_the_same_tokens(world: int) -> None:
    rng = random.Random(world)
    for _ in range(50):
        lengths = [rng.randint(20, 300) for _ in range(8 * world)]
        ranks = deal_by_length(lengths, world)
        assert sorted(j for rows in ranks for j in rows) == list(range(len(lengths)))
        assert all(len(rows) == 8 for rows in ranks)
        assert all([lengths[j] for j in rows] == sorted(lengths[j] for j in rows) for rows in ranks)
        tokens = [sum(lengths[j] for j in rows) for rows in ranks]
        # a snake over sorted rows: ranks differ by at most the longest row
        assert max(tokens) - min(tokens) <= max(lengths)
        if world == 2:  # round-robin would give rank 1 the longer row of every pair
            pairs = sorted(lengths)
            round_robin = sum(pairs[1::2]) - sum(pairs[0::2])
            assert abs(tokens[1] - tokens[0]) <= round_robin


def test_deal_by_length_rejects_an_uneven_deal() -> None:
    with pytest.raises(ValueError, match="evenly"):
        deal_by_length([1, 2, 3], 2)
    with pytest.raises(ValueError, match="evenly"):
        deal_by_length([1, 2], 0)


def test_the_logged_learning_rate_is_the_one_each_step_applied(tmp_path) -> None:
    # It was read after the scheduler had moved on, so each record showed the next step's rate.
    from rlenv.train.config import PretrainConfig
    from rlenv.train.metrics import read_metrics
    from rlenv.train.optim import lr_factor
    from rlenv.train.pretrain import pretrain

    config = PretrainConfig(run_dir=str(tmp_path), policy="tiny", steps=4, warmup_steps=2, lr=1e-3,
                            corpus_size=16, seq_len=32, batch_size=2, progress=False, tensorboard=False,
                            device="cpu")
    pretrain(config)
    logged = [r["optim/lr"] for r in read_metrics(str(tmp_path))]
    applied = [1e-3 * lr_factor(step, 2, 4, config.min_lr_ratio) for step in range(4)]
    assert logged == pytest.approx(applied)


def test_resuming_a_run_stopped_at_stop_after_with_the_same_stop_trains_nothing(tmp_path) -> None:
    from rlenv.train.config import PretrainConfig
    from rlenv.train.metrics import read_metrics
    from rlenv.train.pretrain import pretrain

    common = dict(run_dir=str(tmp_path), policy="tiny", steps=4, stop_after=2, corpus_size=16, seq_len=32,
                  batch_size=2, progress=False, tensorboard=False, device="cpu")
    assert pretrain(PretrainConfig(**common)).steps == 2
    again = pretrain(PretrainConfig(**common, resume=True))  # it trained one more step every time before
    assert again.steps == 2 and again.checkpoint.endswith("step-00000002")
    assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2]


def test_a_completion_longer_than_max_len_keeps_the_end_of_its_prompt() -> None:
    from rlenv.train.policy import load_policy
    from rlenv.train.sft import encode_rows

    policy = load_policy("tiny")
    row = {"prompt": "Q: what comes next? A:", "completion": "x" * 200}
    (example,) = encode_rows(policy, [row], max_len=40)
    prompt = policy.encode(row["prompt"])
    assert len(example.ids) == 40 and example.mask.count(0) == 10  # a quarter of the row for the prompt
    assert list(example.ids[:10]) == prompt[-10:]
    short = {"prompt": "Q: what comes next? A:", "completion": "x" * 30}  # fits: only the prompt is cut
    (fits,) = encode_rows(policy, [short], max_len=40)
    assert fits.mask.count(1) == len(policy.encode(short["completion"])) + (policy.eos_id is not None)
