"""``rlenv distill``: rejection-sampling distillation from a teacher policy into a student.

Key idea (DeepSeek-R1's distillation, and its rejection-sampling SFT data): sample ``samples_per_prompt``
completions per training prompt from the teacher, keep only those our rewards accept (the ``accept_key``
component reaches ``accept_threshold``; at most ``max_per_prompt`` distinct ones per prompt), write them to
``RUN_DIR/distill.jsonl``, then fine-tune the student on them with :func:`rlenv.train.sft.sft` (all SFT
fields of :class:`DistillConfig` apply; ``policy`` is the student).

Left out on purpose: logit (KL) distillation, which needs teacher and student to share a tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import os

from rlenv.train.config import DistillConfig, SFTConfig, StageResult
from rlenv.train.evaluate import is_success
from rlenv.train.optim import resolve_device
from rlenv.train.policy import Policy, SamplingParams, load_policy
from rlenv.train.rollout import make_env, prompt_text, score_completions
from rlenv.train.sampling import generation_seed
from rlenv.train.sft import sft

__all__ = ["DistillConfig", "distill", "sample_accepted"]


def sample_accepted(teacher: Policy, env: object, config: DistillConfig) -> tuple[list[dict], int]:
    """Samples from the teacher and keeps the accepted completions; returns ``(rows, samples_drawn)``."""
    rows: list[dict] = []
    per_call = max(1, 64 // config.samples_per_prompt)
    drawn = 0
    for start in range(0, config.num_prompts, per_call):
        chunk = list(range(start, min(config.num_prompts, start + per_call)))
        prompts = [prompt_text(env.reset(options={"index": i})[0], teacher) for i in chunk]  # type: ignore
        sampling = SamplingParams(
            max_new_tokens=config.max_new_tokens, temperature=config.temperature,
            seed=generation_seed(config.seed, chunk[0]), stop_strings=config.stop_strings,
        )
        out = teacher.generate(prompts, config.samples_per_prompt, sampling)
        drawn += len(out)
        for j, index in enumerate(chunk):
            texts = out.texts[j * config.samples_per_prompt : (j + 1) * config.samples_per_prompt]
            rewards, parts, _ = score_completions(env, index, texts)
            seen: set[str] = set()
            for text, reward, part in zip(texts, rewards, parts, strict=True):
                if len(seen) >= config.max_per_prompt or text in seen:
                    continue
                if is_success(reward, part, config.accept_key, config.accept_threshold):
                    seen.add(text)
                    rows.append({"prompt": prompts[j], "completion": text, "index": index, "reward": reward})
    return rows, drawn


def distill(config: DistillConfig) -> StageResult:
    """Builds the accepted-sample data set from ``config.teacher`` and fine-tunes ``config.policy`` on it.

    Args:
        config: The :class:`DistillConfig`.

    Returns:
        The SFT stage's :class:`StageResult` with ``distill/accepted`` and ``distill/acceptance_rate``
        added to its metrics; ``checkpoint`` is None when the teacher produced nothing acceptable.

    Example:
        >>> distill(DistillConfig(steps=1, run_dir="/tmp/rlenv-doc-distill")).steps  # doctest: +SKIP
        1
    """
    teacher = load_policy(config.teacher, device=resolve_device(config.device), seed=config.seed)
    teacher.module.eval()
    env = make_env(config.env_id, config.env_kwargs, config.seed)
    try:
        rows, drawn = sample_accepted(teacher, env, config)
    finally:
        env.close()
    del teacher
    stats = {"distill/accepted": float(len(rows)), "distill/acceptance_rate": len(rows) / max(1, drawn)}
    os.makedirs(config.run_dir, exist_ok=True)
    path = os.path.join(config.run_dir, "distill.jsonl")
    with open(path, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    print(f"distill: kept {len(rows)} of {drawn} teacher samples -> {path}")
    if not rows:
        return StageResult(run_dir=config.run_dir, checkpoint=None, metrics=stats, steps=0)
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    sft_config = SFTConfig(**{**{n: getattr(config, n) for n in names}, "data": path})
    result = sft(sft_config)
    return dataclasses.replace(result, metrics={**result.metrics, **stats})
