"""``rlenv eval``: pass@1 and pass@k of a policy on held-out items of an environment's test split.

Key idea: sample ``n = num_samples`` completions per item, count the ``c`` correct ones (a completion is
correct when its ``success_key`` reward component reaches ``success_threshold``), and report the unbiased
estimator of Chen et al. (2021)::

    pass@k = E_items[ 1 - C(n - c, k) / C(n, k) ]

computed as a stable product. The items come from the environment's ``split="test"`` seed stream, which shares
no problem with the training split (the environments guarantee it: a problem's side is a hash of its content),
and sampling is seeded per batch (from the seed and the batch's first item), so the same settings draw the
same samples; another ``batch_size`` or ``num_samples`` draws others (the estimate stays unbiased).

References: "Evaluating Large Language Models Trained on Code" (Chen et al. 2021, arXiv:2107.03374), sec. 2.1.

Left out on purpose: maj@k / cons@k voting, per-difficulty breakdowns.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlenv.train.config import EvalConfig, EvalResult
from rlenv.train.optim import resolve_device
from rlenv.train.policy import SamplingParams, load_policy
from rlenv.train.rollout import make_env, prompt_text, score_completions
from rlenv.train.sampling import generation_seed

__all__ = ["EvalConfig", "EvalResult", "evaluate", "is_success", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct.

    Args:
        n: Samples drawn.
        c: Correct samples (0 <= c <= n).
        k: The k of pass@k (1 <= k <= n).

    Returns:
        The probability that at least one of k samples drawn without replacement is correct.

    Raises:
        ValueError: If the counts are inconsistent.

    Example:
        >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), round(pass_at_k(4, 1, 2), 4)
        (0.25, 1.0, 0.5)
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def is_success(reward: float, parts: dict[str, float], key: str, threshold: float) -> bool:
    """Whether a judged completion counts as correct (component ``key`` if reported, else the total).

    Example:
        >>> is_success(0.1, {"accuracy": 1.0}, "accuracy", 1.0), is_success(0.1, {}, "accuracy", 1.0)
        (True, False)
    """
    value = parts.get(key, reward)
    return value is not None and math.isfinite(value) and value >= threshold


def _env_kwargs(config: EvalConfig) -> dict[str, Any]:
    from rlenv.train.config import parse_env_kwargs

    kwargs = parse_env_kwargs(config.env_kwargs)
    kwargs.setdefault("split", config.split)
    return kwargs


def _summary(
    records: Sequence[dict[str, Any]], config: EvalConfig
) -> tuple[dict[int, float], dict[str, float]]:
    n = config.num_samples
    pass_k = {k: float(np.mean([pass_at_k(n, r["correct"], k) for r in records])) for k in config.ks}
    samples = [s for r in records for s in r["samples"]]
    metrics: dict[str, float] = {f"eval/pass@{k}": v for k, v in pass_k.items()}
    metrics["eval/completion_len"] = float(np.mean([s["length"] for s in samples]))
    metrics["eval/truncated_rate"] = float(np.mean([not s["finished"] for s in samples]))
    rewards = [s["reward"] for s in samples if math.isfinite(s["reward"])]
    if rewards:
        metrics["reward/total"] = float(np.mean(rewards))
    for name in sorted({k for s in samples for k in s["rewards"]}):
        values = [s["rewards"][name] for s in samples if math.isfinite(s["rewards"].get(name, math.nan))]
        if values:
            metrics[f"reward/{name}"] = float(np.mean(values))
            if name == "format":
                metrics["eval/format_rate"] = float(np.mean([v > 0 for v in values]))
    return pass_k, metrics


def evaluate(config: EvalConfig) -> EvalResult:
    """Evaluates ``config.policy`` on ``config.num_items`` held-out items.

    Args:
        config: The :class:`EvalConfig`.

    Returns:
        An :class:`EvalResult` with pass@k per k and aggregate reward figures.

    Example:
        >>> evaluate(EvalConfig(num_items=2)).num_items  # doctest: +SKIP
        2
    """
    device = resolve_device(config.device)
    policy = load_policy(config.policy, device=device, seed=config.seed)
    policy.module.eval()
    env = make_env(config.env_id, _env_kwargs(config), config.seed)
    indices = list(range(config.start_index, config.start_index + config.num_items))
    per_call = max(1, config.batch_size // config.num_samples)
    records: list[dict[str, Any]] = []
    for start in range(0, len(indices), per_call):
        chunk = indices[start : start + per_call]
        prompts = [prompt_text(env.reset(options={"index": i})[0], policy) for i in chunk]
        sampling = SamplingParams(
            max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p,
            seed=generation_seed(config.seed, chunk[0]), stop_strings=config.stop_strings,
        )
        out = policy.generate(prompts, config.num_samples, sampling)
        for j, index in enumerate(chunk):
            rows = range(j * config.num_samples, (j + 1) * config.num_samples)
            rewards, parts, _ = score_completions(env, index, [out.texts[r] for r in rows])
            samples = [
                {"text": out.texts[r], "reward": rw, "rewards": pt, "length": len(out.completion_ids[r]),
                 "finished": out.finished[r],
                 "correct": is_success(rw, pt, config.success_key, config.success_threshold)}
                for r, rw, pt in zip(rows, rewards, parts, strict=True)
            ]
            records.append({"index": index, "prompt": prompts[j], "samples": samples,
                            "correct": sum(s["correct"] for s in samples)})
    env.close()
    pass_k, metrics = _summary(records, config)
    if config.output:
        os.makedirs(os.path.dirname(os.path.abspath(config.output)), exist_ok=True)
        with open(config.output, "w") as f:
            json.dump({"pass_at_k": pass_k, "metrics": metrics, "items": records}, f, indent=1)
    line = " ".join(f"pass@{k}={v:.4f}" for k, v in pass_k.items())
    print(f"{line} ({len(indices)} items, n={config.num_samples})")
    return EvalResult(
        pass_at_k=pass_k, num_items=len(indices), num_samples=config.num_samples, metrics=metrics
    )
