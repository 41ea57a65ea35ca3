"""``rlenv train``: GRPO with the DAPO and Dr. GRPO variants, on any rlenv environment.

Key idea: the whole algorithm is a short loop over steps::

    batch    = collect_batch(policy, env)      # G completions per prompt, env rewards, dynamic sampling
    metrics  = grpo_update(policy, ref, batch) # advantages, clipped loss (+ k3 KL), num_iterations updates
    log(metrics); checkpoint on schedule

The pieces live in small modules: :mod:`~rlenv.train.rollout`, :mod:`~rlenv.train.sampling`,
:mod:`~rlenv.train.advantages`, :mod:`~rlenv.train.losses`, :mod:`~rlenv.train.update`,
:mod:`~rlenv.train.runner` (device, optimiser, resume) and :mod:`~rlenv.train.checkpoint`.

Presets of the published recipes (set the fields on :class:`GRPOConfig`)::

    GRPO (DeepSeekMath)  loss_type="grpo", scale_rewards="group", epsilon_high=0.2, beta=0.04
    DAPO                 loss_type="dapo", epsilon_high=0.28, dynamic_sampling=True, overlong_buffer>0, beta=0
    Dr. GRPO             loss_type="dr_grpo", scale_rewards="none", beta=0

Example::

    rlenv train --env-id rlenv/Countdown-v0 --policy runs/sft --steps 100 --dynamic-sampling
    torchrun --nproc_per_node 2 -m rlenv.train.cli train --device cpu   # data parallel (gloo)

References: DeepSeekMath (arXiv:2402.03300), DeepSeek-R1 (arXiv:2501.12948), DAPO (arXiv:2503.14476),
Dr. GRPO (arXiv:2503.20783), TRL ``GRPOTrainer``.

Left out on purpose: multi-turn episodes, vLLM / asynchronous generation, value functions (this is GRPO).
"""

from __future__ import annotations

import math
import time

import torch

from rlenv.train.config import GRPOConfig, StageResult
from rlenv.train.distributed import reduce_sum
from rlenv.train.metrics import expert_load_stats
from rlenv.train.rollout import RolloutBatch, collect_batch, make_env
from rlenv.train.runner import Run, start_run
from rlenv.train.update import grpo_update

__all__ = ["GRPOConfig", "batch_metrics", "train"]


def batch_metrics(batch: RolloutBatch, num_experts: int = 0) -> dict[str, float]:
    """Reward, accuracy, format, length, truncation and expert-load figures of a rollout batch (this rank).

    Example:
        >>> import torch
        >>> from rlenv.train.policy import Rollouts
        >>> r = Rollouts([[1], [1]], [[2, 3], [4]], [[0.0, 0.0], [0.0]], [True, False], ["ab", "c"])
        >>> b = RolloutBatch(r, [0], torch.tensor([1.0, 0.0]), {"accuracy": [1.0, 0.0]}, torch.ones(2))
        >>> m = batch_metrics(b)
        >>> m["reward/total"], m["rollout/accuracy"], m["rollout/truncated_rate"], m["rollout/completion_len"]
        (0.5, 0.5, 0.5, 1.5)
    """
    out: dict[str, float] = {}
    rewards = [v for v in batch.rewards.tolist() if math.isfinite(v)]
    if rewards:
        out["reward/total"] = sum(rewards) / len(rewards)
        out["reward/std"] = float(batch.rewards[~batch.rewards.isnan()].std(unbiased=False))
    for name, values in batch.components.items():
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            out[f"reward/{name}"] = sum(finite) / len(finite)
    if "reward/accuracy" in out:
        out["rollout/accuracy"] = out["reward/accuracy"]
    if "format" in batch.components:
        values = [v for v in batch.components["format"] if math.isfinite(v)]
        out["rollout/format_rate"] = sum(v > 0 for v in values) / max(1, len(values))
    lengths = [len(c) for c in batch.rollouts.completion_ids]
    if lengths:
        out["rollout/completion_len"] = sum(lengths) / len(lengths)
        out["rollout/completion_len_max"] = float(max(lengths))
        out["rollout/truncated_rate"] = sum(not f for f in batch.rollouts.finished) / len(lengths)
    if batch.rollouts.routing:
        out.update(expert_load_stats(batch.rollouts.routing, num_experts))
    return out


def _step(run: Run, env: object, ref: object, config: GRPOConfig) -> dict[str, float]:
    started = time.perf_counter()
    batch, run.state.data_position = collect_batch(
        run.policy, env, config, position=run.state.data_position, dist=run.dist
    )
    rolled = time.perf_counter()
    metrics = grpo_update(
        run.policy, ref, batch, config, run.optimizer, run.scheduler, run.dist, run.autocast  # type: ignore[arg-type]
    )
    trained = time.perf_counter()
    metrics.update(batch_metrics(batch, getattr(run.policy, "num_experts", 0)))
    metrics.update(batch.stats)
    tokens = float(reduce_sum(torch.tensor(float(sum(map(len, batch.rollouts.completion_ids))))))
    metrics.update({
        "perf/rollout_s": rolled - started,
        "perf/train_s": trained - rolled,
        "perf/step_s": trained - started,
        "perf/tokens_per_s": tokens / max(trained - started, 1e-9),
        "perf/rollout_tokens_per_s": tokens / max(rolled - started, 1e-9),
    })
    counters = run.state.counters
    for key in ("train/skipped_updates", "rollout/dropped_groups", "rollout/reward_failures"):
        counters[key + "_total"] = counters.get(key + "_total", 0.0) + metrics.get(key, 0.0)
        metrics[key + "_total"] = counters[key + "_total"]
    return metrics


def train(config: GRPOConfig) -> StageResult:
    """Runs GRPO (or DAPO / Dr. GRPO, per ``config``) and returns the final checkpoint and metrics.

    Args:
        config: The :class:`GRPOConfig`.

    Returns:
        A :class:`StageResult`; ``checkpoint`` is usable as the ``policy`` of a later stage.

    Example:
        >>> train(GRPOConfig(steps=1, progress=False, run_dir="/tmp/rlenv-doc-grpo")).steps  # doctest: +SKIP
        1
    """
    run = start_run(config, total_updates=config.steps * config.num_iterations)
    env = make_env(config.env_id, config.env_kwargs, config.seed, config.prompt_filter)
    ref = run.policy.frozen_copy() if config.beta > 0 else None
    if ref is not None and run.resumed_from is not None:
        # The reference is the *initial* policy, not the resumed weights.
        from rlenv.train.policy import load_policy

        ref = load_policy(config.policy, device=run.device, seed=config.seed).frozen_copy()
    bar = run.progress("grpo")
    try:
        while run.running():
            metrics = _step(run, env, ref, config)
            run.state.step += 1
            run.logger.log(run.state.step, metrics)
            bar.update(1)
            bar.set_postfix(reward=f"{metrics.get('reward/total', float('nan')):.3f}",
                            loss=f"{metrics.get('loss/policy', float('nan')):.4f}")
            if run.after_step():
                break
    finally:
        bar.close()
        env.close()
    return run.finish()
