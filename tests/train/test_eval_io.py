"""pass@k estimator, atomic checkpoints, metrics logging and expert-load statistics."""

import itertools
import json
import os

import pytest
import torch

from rlenv.train.checkpoint import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint
from rlenv.train.evaluate import is_success, pass_at_k
from rlenv.train.metrics import MetricsLogger, expert_load_stats, read_metrics
from rlenv.train.plot import series


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 2, 1), (5, 2, 3), (6, 3, 2), (4, 4, 4), (7, 1, 7)])
def test_pass_at_k_is_the_probability_over_all_k_subsets(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute)


def test_pass_at_k_rejects_inconsistent_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_is_success_prefers_the_component():
    assert is_success(0.1, {"accuracy": 1.0}, "accuracy", 1.0)
    assert not is_success(1.0, {"accuracy": 0.0}, "accuracy", 1.0)
    assert is_success(1.0, {}, "accuracy", 1.0)  # falls back to the total
    assert not is_success(float("nan"), {}, "accuracy", 0.0)


class _Saveable:
    def __init__(self):
        self.module = torch.nn.Linear(2, 2)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        torch.save(self.module.state_dict(), os.path.join(directory, "w.pt"))


def test_checkpoints_are_complete_pruned_and_restore_state(tmp_path):
    policy = _Saveable()
    optimizer = torch.optim.AdamW(policy.module.parameters(), lr=0.1)
    policy.module(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    for step in (1, 2, 3):
        torch.manual_seed(step)
        path = save_checkpoint(
            str(tmp_path),
            policy=policy,
            optimizer=optimizer,
            scheduler=None,
            state=TrainerState(step=step, data_position=10 * step),
            keep=2,
        )
    after_save = torch.rand(3)  # what the run would draw next
    assert latest_checkpoint(str(tmp_path)) == path
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["latest", "step-00000002", "step-00000003"]
    torch.manual_seed(999)
    fresh = torch.optim.AdamW(_Saveable().module.parameters(), lr=0.1)
    state = load_checkpoint(path, optimizer=fresh, scheduler=None)
    assert (state.step, state.data_position) == (3, 30)
    assert torch.equal(torch.rand(3), after_save)  # RNG restored
    torch.testing.assert_close(
        fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )


def test_a_fresh_run_in_a_used_directory_keeps_its_own_checkpoints(tmp_path):
    # An earlier run left steps 3 and 4; a fresh run's step 2 used to be pruned as the oldest, leaving
    # `latest` pointing nowhere and the next stage with no checkpoint to load.
    policy = _Saveable()
    for steps in ((3, 4), (1, 2)):
        for step in steps:
            path = save_checkpoint(str(tmp_path), policy=policy, optimizer=None, scheduler=None,
                                   state=TrainerState(step=step), keep=2)
    assert latest_checkpoint(str(tmp_path)) == path and os.path.isdir(path)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["latest", "step-00000001", "step-00000002"]


def test_latest_checkpoint_of_an_empty_run_is_none(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None


def test_metrics_logger_writes_jsonl_and_truncates_on_resume(tmp_path):
    logger = MetricsLogger(str(tmp_path))
    for step in (1, 2, 3):
        logger.log(step, {"loss/policy": step / 10, "reward/total": float("nan")})
    assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2, 3]
    assert read_metrics(str(tmp_path))[0]["reward/total"] == "nan"
    MetricsLogger(str(tmp_path), resume_step=2)
    assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2]
    assert series(read_metrics(str(tmp_path)))["loss/policy"] == ([1, 2], [0.1, 0.2])
    with open(tmp_path / "metrics.jsonl") as f:
        assert all(json.loads(line) for line in f)


def test_expert_load_statistics():
    balanced = [torch.tensor([[[0], [1], [2], [3]]])]  # one layer, 4 tokens, top-1, 4 experts
    skewed = [torch.tensor([[[0], [0], [0], [1]]])]
    assert expert_load_stats(balanced, 4)["moe/load_cv"] == pytest.approx(0.0)
    stats = expert_load_stats(skewed, 4)
    assert stats["moe/load_max_over_mean"] == pytest.approx(3.0)
    assert expert_load_stats([], 4) == {}


@pytest.mark.parametrize("field", ["lr", "min_lr_ratio", "max_grad_norm"])
def test_nan_settings_are_refused(field):
    from rlenv.train.config import SFTConfig

    with pytest.raises(ValueError, match=f"{field} is NaN"):
        SFTConfig(**{field: float("nan")})
