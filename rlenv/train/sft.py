"""``rlenv sft``: supervised fine-tuning on (prompt, completion) rows -- DeepSeek-R1's cold start.

Key idea: each row becomes ``prompt + completion + EOS``; only completion tokens (and EOS) are predicted
unless ``prompt_loss`` is set. Rows come from a JSONL file with ``prompt`` / ``completion`` keys, or from the
generators of :mod:`rlenv.train.corpus` (``"countdown"``: solver-written countdown traces in the environment's
prompt format; ``"siblings"``: sibling tasks). Rows longer than ``max_len`` lose the start of their prompt.

Example::

    rlenv sft --policy runs/base/checkpoints/step-00000200 --data countdown --steps 100

Left out on purpose: chat templates and multi-turn conversations (prompts are rendered by the environment).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from rlenv.train.config import SFTConfig, StageResult
from rlenv.train.lm import Example, train_lm
from rlenv.train.policy import Policy

__all__ = ["SFTConfig", "encode_rows", "load_rows", "sft"]


def load_rows(data: str, num_rows: int, seed: int) -> list[dict]:
    """Rows with ``prompt`` and ``completion``: a JSONL file, or the "countdown" / "siblings" generators."""
    if os.path.isfile(data):
        with open(data) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for i, row in enumerate(rows):
            if not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
                raise ValueError(f"{data}: row {i} needs string 'prompt' and 'completion', got {sorted(row)}")
        return rows
    from rlenv.train import corpus

    if data == "countdown":
        return corpus.countdown_sft_rows(num_rows, seed)
    if data == "siblings":
        return corpus.sibling_rows(num_rows, seed)
    raise ValueError(f"SFTConfig.data={data!r} is neither a JSONL file nor one of ('countdown', 'siblings')")


def encode_rows(
    policy: Policy, rows: Sequence[dict], max_len: int, prompt_loss: bool = False
) -> list[Example]:
    """Tokenises rows into examples (completion + EOS predicted; long prompts cut from the left).

    A completion that alone fills ``max_len`` keeps the prompt's end (up to a quarter of ``max_len``) and
    loses its own end, EOS included: trained with no context at all it would teach nothing about the prompt,
    and its first token would have nothing to be predicted from.
    """
    examples = []
    eos = [policy.eos_id] if policy.eos_id is not None else []
    for row in rows:
        prompt, completion = policy.encode(row["prompt"]), policy.encode(row["completion"]) + eos
        if len(completion) >= max_len and prompt:
            completion = completion[: max_len - min(len(prompt), max(1, max_len // 4))]
        prompt = prompt[max(0, len(prompt) + len(completion) - max_len) :]
        if not prompt and not completion:
            continue
        ids = tuple(prompt + completion)
        mask = tuple([int(prompt_loss)] * len(prompt) + [1] * len(completion))
        examples.append(Example(ids, mask))
    return examples


def sft(config: SFTConfig) -> StageResult:
    """Fine-tunes ``config.policy`` on ``config.data``.

    Args:
        config: The :class:`SFTConfig`.

    Returns:
        A :class:`StageResult` whose ``checkpoint`` is the fine-tuned policy.

    Example:
        >>> sft(SFTConfig(steps=1, run_dir="/tmp/rlenv-doc-sft")).steps  # doctest: +SKIP
        1
    """

    def build(policy: Policy) -> list[Example]:
        rows = load_rows(config.data, config.num_rows, config.seed)
        return encode_rows(policy, rows, config.max_len, config.prompt_loss)

    return train_lm(
        config, build, batch_size=config.batch_size, grad_accum_steps=config.grad_accum_steps, desc="sft",
        group_by_length=config.group_by_length,
    )
