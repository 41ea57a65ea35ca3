"""End-to-end GRPO on the toy environment with a tiny Llama (HF path) and the bundled MoE policy."""

import json
import os

import pytest
import torch

import rlenv.train.update as update_module
from rlenv.train.checkpoint import latest_checkpoint
from rlenv.train.config import GRPOConfig
from rlenv.train.grpo import train
from rlenv.train.optim import build_optimizer, build_scheduler, optimizer_step
from rlenv.train.policy import SamplingParams, load_policy
from tests.train.conftest import TOY_ENV


def _config(tiny_hf_dir, run_dir, **kw):
    base = dict(
        policy=f"hf:{tiny_hf_dir}",
        env_id=TOY_ENV,
        run_dir=str(run_dir),
        steps=2,
        prompts_per_step=2,
        num_generations=4,
        max_new_tokens=12,
        micro_batch_size=4,
        lr=1e-3,
        progress=False,
        tensorboard=False,
        stop_strings=(),
    )
    return GRPOConfig(**{**base, **kw})


def _weights(checkpoint):
    return load_policy(checkpoint).module.state_dict()


def _records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_grpo_trains_logs_and_checkpoints(tiny_hf_dir, tmp_path):
    result = train(_config(tiny_hf_dir, tmp_path, num_iterations=2, beta=0.05, scale_rewards="batch"))
    assert result.steps == 2 and result.checkpoint == latest_checkpoint(str(tmp_path))
    records = _records(tmp_path)
    assert [r["step"] for r in records] == [1, 2]
    for key in (
        "reward/total",
        "reward/accuracy",
        "reward/format",
        "loss/policy",
        "loss/kl",
        "policy/entropy",
        "policy/clip_region",
        "adv/mean",
        "perf/tokens_per_s",
        "perf/rollout_s",
        "perf/train_s",
        "rollout/completion_len",
        "rollout/format_rate",
        "rollout/dropped_groups",
        "optim/lr",
    ):
        assert key in records[-1], key
    # the second update of a batch sees a ratio != 1 and a KL > 0 to the frozen initial policy
    assert records[-1]["loss/kl"] > 0
    before = load_policy(f"hf:{tiny_hf_dir}").module.state_dict()
    after = _weights(result.checkpoint)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_resume_continues_exactly(tiny_hf_dir, tmp_path):
    kw = dict(steps=4, warmup_steps=1, num_iterations=2, old_logprobs="rollout")
    straight = train(_config(tiny_hf_dir, tmp_path / "a", **kw))
    half = train(_config(tiny_hf_dir, tmp_path / "b", stop_after=2, **kw))
    assert half.steps == 2
    resumed = train(_config(tiny_hf_dir, tmp_path / "b", resume=True, **kw))
    assert resumed.steps == 4
    a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    ra, rb = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert [r["reward/total"] for r in ra] == [r["reward/total"] for r in rb]


def test_a_nan_loss_skips_the_update_and_is_logged(tiny_hf_dir, tmp_path, monkeypatch):
    real = update_module.grpo_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # the first micro-batch of step 1
            object.__setattr__(out, "loss", out.loss * float("nan"))
        return out

    monkeypatch.setattr(update_module, "grpo_loss", poisoned)
    result = train(_config(tiny_hf_dir, tmp_path, steps=2))
    records = _records(tmp_path)
    assert [r["train/skipped_updates"] for r in records] == [1.0, 0.0]
    assert result.metrics["train/skipped_updates_total"] == 1.0
    assert all(torch.isfinite(v).all() for v in _weights(result.checkpoint).values())


def test_optimizer_step_skips_nonfinite_gradients():
    model = torch.nn.Linear(2, 1)
    from rlenv.train.config import OptimConfig

    config = OptimConfig(lr=0.1)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, 10)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.tensor([[float("inf"), 1.0]])).sum().backward()
    result = optimizer_step(model, optimizer, scheduler, 1.0)
    assert result.skipped and scheduler.last_epoch == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_a_dying_reward_worker_does_not_stop_training(tiny_hf_dir, tmp_path):
    result = train(_config(tiny_hf_dir, tmp_path, env_kwargs='{"fail_every": 3}'))
    assert result.steps == 2
    assert result.metrics["rollout/reward_failures_total"] > 0


def test_hf_rollout_logprobs_match_the_training_forward(tiny_hf_dir):
    policy = load_policy(f"hf:{tiny_hf_dir}")
    out = policy.generate(
        ["count a: 1 ", "count a: 22 "], 2, SamplingParams(max_new_tokens=6, temperature=0.7, seed=3)
    )
    scored = policy.logprobs(out.prompt_ids, out.completion_ids, temperature=0.7)
    for row, lps in enumerate(out.logprobs):
        torch.testing.assert_close(scored[row, : len(lps)], torch.tensor(lps), atol=1e-4, rtol=0)
    again = policy.generate(
        ["count a: 1 ", "count a: 22 "], 2, SamplingParams(max_new_tokens=6, temperature=0.7, seed=3)
    )
    assert again.completion_ids == out.completion_ids


def test_hf_sampling_ignores_the_models_own_generation_defaults(tiny_hf_dir):
    # A checkpoint's generation_config (Qwen2.5-Instruct ships a repetition penalty) would reshape the
    # distribution the tokens come from, while the rollout's log-probs are plain softmax(logits / T).
    policy = load_policy(f"hf:{tiny_hf_dir}")
    sampling = SamplingParams(max_new_tokens=12, temperature=1.0, seed=0)
    plain = policy.generate(["count a:"], 4, sampling).completion_ids
    policy.module.generation_config.repetition_penalty = 1e9
    policy.module.generation_config.no_repeat_ngram_size = 1
    assert policy.generate(["count a:"], 4, sampling).completion_ids == plain
    assert policy.module.generation_config.repetition_penalty == 1e9  # the model's own config is kept


@pytest.mark.parametrize("pad_is_eos", [False, True])
def test_hf_rows_stopped_by_a_stop_string_keep_only_sampled_tokens(tiny_hf_dir, pad_is_eos):
    # HF pads a row it stopped at a stop string; with pad == EOS (a tokenizer without a pad token) that
    # padding looked like a sampled EOS and was trained on.
    from rlenv.train.hf_policy import HFPolicy
    from rlenv.train.policy import SamplingParams

    policy = HFPolicy.from_pretrained(tiny_hf_dir)
    if pad_is_eos:
        policy.pad_id = policy.eos_id
    body = policy.encode("<answer>4</answer>")
    sampling = SamplingParams(max_new_tokens=len(body) + 2, temperature=1.0, stop_strings=("</answer>",))
    rows = policy._rollouts([[1]], [body + [policy.pad_id] * 2], [[-0.5] * (len(body) + 2)], sampling)
    assert rows.completion_ids == [body] and rows.finished == [True] and rows.texts == ["<answer>4</answer>"]
    assert rows.logprobs == [[-0.5] * len(body)]


def test_bundled_moe_routing_replay_reproduces_rollout_logprobs():
    policy = load_policy("tiny", seed=0)
    assert policy.is_moe
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, seed=1, return_routing=True)
    out = policy.generate(["12+3=", "7*8="], 2, sampling)
    assert out.routing is not None and len(out.routing) == 4
    with torch.no_grad():
        replayed = policy.logprobs(out.prompt_ids, out.completion_ids, out.routing)
    for row, lps in enumerate(out.logprobs):
        torch.testing.assert_close(replayed[row, : len(lps)], torch.tensor(lps), atol=2e-3, rtol=0)


def test_grpo_with_the_bundled_moe_policy_logs_expert_load(tmp_path):
    config = GRPOConfig(
        policy="tiny",
        env_id=TOY_ENV,
        run_dir=str(tmp_path),
        steps=1,
        prompts_per_step=2,
        num_generations=2,
        max_new_tokens=6,
        progress=False,
        tensorboard=False,
    )
    result = train(config)
    assert "moe/load_cv" in result.metrics and result.metrics["moe/load_cv"] >= 0


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo"])
def test_other_loss_types_run(tiny_hf_dir, tmp_path, loss_type):
    result = train(_config(tiny_hf_dir, tmp_path, steps=1, loss_type=loss_type, scale_rewards="none"))
    assert result.steps == 1 and "loss/policy" in result.metrics


def _update_once(skip, rows_scored):
    """One GRPO update of the tiny bundled policy on a fixed batch: one all-correct, one mixed and one
    all-wrong group (so 8 of 12 rows have a zero advantage)."""
    import contextlib

    from rlenv.train.distributed import DistInfo
    from rlenv.train.rollout import RolloutBatch

    torch.manual_seed(0)
    policy = load_policy("tiny", seed=0)
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, seed=1, return_routing=True)
    rollouts = policy.generate(["12+3=", "7*8=", "40-9="], 4, sampling)
    rewards = torch.tensor([1.0] * 4 + [1.0, 0.0, 0.0, 1.0] + [0.0] * 4)
    batch = RolloutBatch(rollouts=rollouts, indices=[0, 1, 2], rewards=rewards, components={},
                         loss_weight=torch.ones(12))
    config = GRPOConfig(policy="tiny", env_id=TOY_ENV, prompts_per_step=3, num_generations=4,
                        micro_batch_size=2, lr=1e-2, skip_zero_advantage=skip)
    optimizer = build_optimizer(policy.module, config)
    scheduler = build_scheduler(optimizer, config, 10)
    score = policy.score

    def counted(prompt_ids, *args, **kwargs):
        rows_scored.append(len(prompt_ids))
        return score(prompt_ids, *args, **kwargs)

    policy.score = counted
    update_module.grpo_update(policy, None, batch, config, optimizer, scheduler, DistInfo(),
                              contextlib.nullcontext)
    return dict(policy.module.named_parameters())


def test_skipping_zero_advantage_rows_leaves_the_update_unchanged():
    rows_all, rows_live = [], []
    full, skipped = _update_once(False, rows_all), _update_once(True, rows_live)
    assert sum(rows_all) == 12 and sum(rows_live) == 4  # only the mixed group is scored
    initial = dict(load_policy("tiny", seed=0).module.named_parameters())
    for name, param in full.items():
        torch.testing.assert_close(skipped[name], param, atol=1e-6, rtol=1e-5, msg=name)
    assert any(not torch.equal(param, initial[name]) for name, param in full.items())
