"""Rollouts: prompts from an environment, G completions per prompt, rewards from the environment.

Key idea: the environment is the data set and the judge. ``env.reset(options={"index": i})`` renders prompt
``i`` (the same item every time, so a group shares one prompt), the policy samples G completions, and
``env.step(completion)`` scores each one (``info["rewards"]`` holds the per-component breakdown). A reward
that raises (a dead reward worker, a crashed sandbox) turns that completion's reward into NaN -- left out of
its group's baseline, advantage 0, counted in ``rollout/reward_failures`` -- and training goes on.

With a ``prompt_filter`` (:class:`FilteredItems`) prompt ``i`` is the ``i``-th item of the stream the filter
accepts, e.g. only countdown problems whose solver search fits in a search trace; every rank computes the same
mapping, so indices keep naming the same item everywhere.

With dynamic sampling (DAPO) a step keeps drawing rounds of fresh prompts until it holds
``prompts_per_step`` informative groups or ``max_sampling_rounds`` is reached. Under data parallelism each
rank samples its slice of every round's prompts and the ranks agree on the number of rounds, so the data
position advances identically everywhere.

Left out on purpose: multi-turn episodes (a non-terminal ``step`` is judged by its first reward), asynchronous
rollouts overlapping training.
"""

from __future__ import annotations

import importlib
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

from rlenv.train.config import GRPOConfig, parse_env_kwargs
from rlenv.train.distributed import DistInfo, reduce_max
from rlenv.train.policy import Policy, Rollouts, SamplingParams
from rlenv.train.sampling import generation_seed, informative_groups, soft_overlong_penalty, truncation_mask

__all__ = ["FilteredItems", "RolloutBatch", "collect_batch", "make_env", "prompt_text", "sample_groups",
           "score_completions"]


class FilteredItems(gym.Wrapper):
    """Serves as item ``i`` the ``i``-th item of the wrapped stream that ``keep(info)`` accepts.

    ``reset`` keeps the wrapped environment's contract in accepted items: ``options={"index": i}`` replays
    accepted item ``i``, a plain ``reset()`` moves to the next accepted item, a new ``seed`` starts a new
    stream at its first accepted item; ``step`` scores the item reset last. Accepted indices are found by
    scanning the stream in order, once; a filter that rejects ``max_scan`` items in a row is a ``ValueError``
    (it would otherwise scan forever).

    Example:
        >>> env = make_env("rlenv/Countdown-v0", {}, seed=0)
        >>> even = FilteredItems(env, lambda info: info["target"] % 2 == 0)
        >>> all(even.reset(options={"index": i})[1]["target"] % 2 == 0 for i in range(5))
        True
    """

    def __init__(
        self, env: gym.Env, keep: Callable[[Mapping[str, Any]], bool], max_scan: int = 10_000
    ) -> None:
        super().__init__(env)
        self.keep, self.max_scan = keep, max_scan
        self._accepted: list[int] = []  # stream index of accepted item i
        self._scanned, self._next = 0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self.env.reset(seed=seed)
            self._accepted, self._scanned, self._next = [], 0, 0
        options = dict(options or {})
        index = options.get("index", self._next)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise ValueError(f"options['index']={index!r} must be a non-negative int")
        while len(self._accepted) <= index:
            _, info = self.env.reset(options={**options, "index": self._scanned})
            if self.keep(info):
                self._accepted.append(self._scanned)
            elif self._scanned - (self._accepted[-1] if self._accepted else -1) >= self.max_scan:
                raise ValueError(f"the prompt filter {self.keep!r} rejected {self.max_scan} items in a row "
                                 f"(stream items up to {self._scanned}); it accepts (almost) nothing")
            self._scanned += 1
        index = int(index)
        observation, info = self.env.reset(options={**options, "index": self._accepted[index]})
        self._next = index + 1
        return observation, {**info, "index": index, "stream_index": self._accepted[index]}


def _resolve(spec: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` string names."""
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"prompt_filter={spec!r}: cannot import {name!r} from {module!r} ({err})") from err


def make_env(env_id: str, env_kwargs: str | dict[str, Any], seed: int, prompt_filter: str = "") -> Any:
    """``gymnasium.make`` of an rlenv (or any ``module:Id``) environment with JSON/dict kwargs, reset once
    with ``seed`` so that ``options={"index": i}`` names the same item in every process; with a
    ``prompt_filter`` ("module:function" of an item's info) wrapped in :class:`FilteredItems`."""
    import rlenv  # noqa: F401 - registers the rlenv/* ids

    kwargs = parse_env_kwargs(env_kwargs) if isinstance(env_kwargs, str) else dict(env_kwargs)
    env = gym.make(env_id, disable_env_checker=True, **kwargs)
    if prompt_filter:
        env = FilteredItems(env, _resolve(prompt_filter))
    env.reset(seed=seed)
    return env


def prompt_text(observation: Any, policy: Policy) -> str:
    """The prompt string of an observation: text as is; chat messages through the policy's chat template."""
    if isinstance(observation, str):
        return observation
    return policy.render_chat(observation)


@dataclass
class RolloutBatch:
    """Scored rollouts of whole groups, group-major.

    Attributes:
        rollouts: The completions (``len == groups * G``).
        indices: The prompt index of each group.
        rewards: (N,) environment reward plus overlong shaping; NaN when the reward failed.
        components: Per reward component, one value per row (NaN where missing).
        loss_weight: (N,) 0 for rows excluded from the loss (overlong filtering), else 1.
        stats: Counters of the collection (rounds, dropped groups, failures, timings).
    """

    rollouts: Rollouts
    indices: list[int]
    rewards: torch.Tensor
    components: dict[str, list[float]]
    loss_weight: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)

    def select_groups(self, groups: Sequence[int], group_size: int) -> RolloutBatch:
        """The batch restricted to the given groups, in order."""
        rows = [g * group_size + j for g in groups for j in range(group_size)]
        return RolloutBatch(
            rollouts=self.rollouts.select(rows),
            indices=[self.indices[g] for g in groups],
            rewards=self.rewards[rows] if rows else self.rewards[:0],
            components={k: [v[r] for r in rows] for k, v in self.components.items()},
            loss_weight=self.loss_weight[rows] if rows else self.loss_weight[:0],
            stats=dict(self.stats),
        )

    @staticmethod
    def concat(parts: Sequence[RolloutBatch]) -> RolloutBatch:
        keys = sorted({k for p in parts for k in p.components})
        n = [len(p.rollouts) for p in parts]
        return RolloutBatch(
            rollouts=Rollouts.concat([p.rollouts for p in parts]),
            indices=[i for p in parts for i in p.indices],
            rewards=torch.cat([p.rewards for p in parts]),
            components={
                k: [v for p, m in zip(parts, n, strict=True) for v in p.components.get(k, [math.nan] * m)]
                for k in keys
            },
            loss_weight=torch.cat([p.loss_weight for p in parts]),
        )


def score_completions(
    env: Any, index: int, completions: Sequence[str]
) -> tuple[list[float], list[dict[str, float]], int]:
    """Scores completions of prompt ``index`` with the environment; a failing reward gives NaN.

    Returns:
        ``(rewards, breakdowns, failures)``.
    """
    rewards, breakdowns, failures = [], [], 0
    for text in completions:
        try:
            env.reset(options={"index": index})
            _, reward, _, _, info = env.step(text)
            value = math.nan if reward is None else float(reward)
            parts = {k: (math.nan if v is None else float(v)) for k, v in (info.get("rewards") or {}).items()}
        except Exception:  # a reward worker dying must not stop training: count it, judge the sample NaN
            value, parts, failures = math.nan, {}, failures + 1
        rewards.append(value)
        breakdowns.append(parts)
    return rewards, breakdowns, failures


def sample_groups(
    policy: Policy, env: Any, indices: Sequence[int], config: GRPOConfig, round_: int = 0
) -> RolloutBatch:
    """Samples and scores G completions for each prompt index (no filtering)."""
    group = config.num_generations
    prompts = []
    for index in indices:
        observation, _ = env.reset(options={"index": index})
        prompts.append(prompt_text(observation, policy))
    chunk = config.groups_per_generate or max(1, len(indices))
    started, parts = time.perf_counter(), []
    for start in range(0, len(indices), chunk):
        sampling = SamplingParams(
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            seed=generation_seed(config.seed, indices[start], round_),
            stop_strings=config.stop_strings,
            return_routing=config.routing_replay and policy.is_moe,
        )
        parts.append(policy.generate(prompts[start : start + chunk], group, sampling))
    rollouts = Rollouts.concat(parts)
    generated = time.perf_counter()
    rewards, breakdowns, failures = [], [], 0
    for g, index in enumerate(indices):
        r, b, f = score_completions(env, index, rollouts.texts[g * group : (g + 1) * group])
        rewards += r
        breakdowns += b
        failures += f
    for row, completion in enumerate(rollouts.completion_ids):
        penalty = soft_overlong_penalty(
            len(completion), config.max_new_tokens, config.overlong_buffer, config.overlong_penalty
        )
        rewards[row] += penalty
    keys = sorted({k for b in breakdowns for k in b})
    return RolloutBatch(
        rollouts=rollouts,
        indices=list(indices),
        rewards=torch.tensor(rewards, dtype=torch.float32),
        components={k: [b.get(k, math.nan) for b in breakdowns] for k in keys},
        loss_weight=truncation_mask(rollouts.finished, config.mask_truncated),
        stats={
            "perf/generate_s": generated - started,
            "perf/reward_s": time.perf_counter() - generated,
            "rollout/reward_failures": float(failures),
        },
    )


def collect_batch(
    policy: Policy, env: Any, config: GRPOConfig, *, position: int, dist: DistInfo
) -> tuple[RolloutBatch, int]:
    """Collects one step's groups on this rank, with DAPO dynamic sampling when enabled.

    Args:
        policy: The policy to sample from.
        env: The environment (prompts and rewards).
        config: The GRPO config.
        position: Global index of the next unused prompt.
        dist: This process's rank information.

    Returns:
        ``(batch, new_position)``; the batch holds at most this rank's share of ``prompts_per_step`` groups.
    """
    share = _share(config.prompts_per_step, dist)
    kept: list[RolloutBatch] = []
    have, rounds, dropped, totals = 0, 0, 0, {"perf/generate_s": 0.0, "perf/reward_s": 0.0}
    failures = 0.0
    while True:
        start = position + sum(_share(config.prompts_per_step, DistInfo(r, dist.world_size)) for r in
                               range(dist.rank))
        indices = list(range(start, start + share))
        position += config.prompts_per_step
        batch = sample_groups(policy, env, indices, config, rounds)
        rounds += 1
        for key in totals:
            totals[key] += batch.stats[key]
        failures += batch.stats["rollout/reward_failures"]
        if config.dynamic_sampling:
            keep = informative_groups(batch.rewards, config.num_generations).nonzero().flatten().tolist()
            dropped += len(indices) - len(keep)
            batch = batch.select_groups(keep[: share - have], config.num_generations)
        kept.append(batch)
        have += len(batch.indices)
        more = have < share and config.dynamic_sampling and rounds < config.max_sampling_rounds
        need = torch.tensor(float(more))
        if float(reduce_max(need)) == 0.0:
            break
    out = RolloutBatch.concat(kept)
    out.stats = {
        **totals,
        "rollout/reward_failures": failures,
        "rollout/sampling_rounds": float(rounds),
        "rollout/dropped_groups": float(dropped),
        "rollout/groups": float(len(out.indices)),
    }
    return out, position


def _share(total: int, dist: DistInfo) -> int:
    """Prompts of ``total`` handled by ``dist.rank`` (the first ranks take the remainder)."""
    base, extra = divmod(total, dist.world_size)
    return base + (1 if dist.rank < extra else 0)
