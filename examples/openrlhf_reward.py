"""An OpenRLHF ``--remote_rm_url`` reward file scoring with rlenv's safe rewards.

OpenRLHF's reinforced fine-tuning loads this file and calls ``reward_func(queries, prompts, labels)``;
``queries`` are prompt + response, so the prompt is stripped before scoring (TinyZero's prompt contains an
example ``<answer>``, which must never be scored). Use it as::

    python -m openrlhf.cli.train_ppo_ray ... \\
        --remote_rm_url examples/openrlhf_reward.py \\
        --label_key label

with a ``label`` column holding, per row, a JSON object such as ``{"target": 24, "numbers": [3, 6, 7]}``
(countdown), ``{"data_source": "openai/gsm8k", "ground_truth": "72"}`` (any verl-style source), a code-test
object, or a plain reference answer string (math). See :mod:`rewards.adapters.openrlhf`.

Run ``python examples/openrlhf_reward.py`` to score a small batch locally (no OpenRLHF needed).
"""

from __future__ import annotations

import json
from typing import Any

import torch  # noqa: F401  (loaded first: the adapter then returns tensors, which OpenRLHF builds samples from)

from rewards.adapters.openrlhf import reward_func as _rlenv_reward_func


def reward_func(queries: list[str], prompts: list[str], labels: list[Any], **kwargs: Any) -> dict[str, Any]:
    """OpenRLHF entry point: ``{"rewards", "scores", "extra_logs"}`` (TinyZero scoring for countdown)."""
    kwargs.setdefault("format_score", 0.1)
    return _rlenv_reward_func(queries, prompts, labels, **kwargs)


def main() -> None:
    prompt = (
        "User: Using the numbers [3, 6, 7], create an equation that equals 24. Return the final answer in "
        "<answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.\nAssistant: <think>"
    )
    responses = [
        "7-3=4, times 6.</think>\n<answer>(7 - 3) * 6</answer>",
        "hmm</think><answer>7 + 6 + 3</answer>",
        "I give up.",
    ]
    label = json.dumps({"target": 24, "numbers": [3, 6, 7]})
    out = reward_func([prompt + r for r in responses], [prompt] * 3, [label] * 3)
    print("rewards:", [round(float(v), 4) for v in out["rewards"]])  # float32 tensors, as OpenRLHF gets them
    print("scores: ", [round(float(v), 4) for v in out["scores"]])
    print("extra_logs:", {k: [round(float(v), 4) for v in vs] for k, vs in out["extra_logs"].items()})


if __name__ == "__main__":
    main()
