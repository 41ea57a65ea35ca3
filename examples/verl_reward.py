"""A verl ``custom_reward_function`` file scoring with rlenv's safe rewards.

verl loads this file and calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` once per
response. Point your PPO / GRPO config at it::

    custom_reward_function:
      path: examples/verl_reward.py
      name: compute_score
      reward_kwargs:
        format_score: 0.1    # TinyZero's countdown scoring: 0 no answer, 0.1 answered but wrong, 1 correct

or on the command line::

    python -m verl.trainer.main_ppo ... \\
        custom_reward_function.path=examples/verl_reward.py \\
        custom_reward_function.name=compute_score \\
        +custom_reward_function.reward_kwargs.format_score=0.1

The dataset's ``data_source`` picks the reward: ``countdown`` (ground truth ``{"target", "numbers"}``, as in
TinyZero's parquet files), gsm8k / MATH-style sources (ground truth the reference answer) and code sources
(ground truth the tests); see :mod:`rewards.adapters.verl`. The countdown equation is parsed, never
``eval``-ed, so a model writing ``44**35**19`` cannot stall the reward workers as it stalls TinyZero's.

Run ``python examples/verl_reward.py`` to score a few TinyZero-style responses locally (no verl needed).
"""

from __future__ import annotations

from typing import Any

from rewards.adapters.verl import compute_score as _rlenv_compute_score


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> float | dict[str, Any]:
    """verl entry point: the rlenv reward for ``data_source`` (TinyZero scoring for countdown by default)."""
    kwargs.setdefault("format_score", 0.1)
    return _rlenv_compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)


def main() -> None:
    truth = {"target": 24, "numbers": [3, 6, 7]}
    responses = {
        "correct": "Let me see. 7-3=4, 4*6=24.</think>\n<answer>(7 - 3) * 6</answer>",
        "wrong value": "</think><answer>7 * 3 + 6</answer>",
        "power tower": "</think><answer>7**6**3</answer>",
        "no answer": "I am not sure.",
    }
    for label, response in responses.items():
        score = compute_score("countdown", response, truth)
        detail = compute_score("countdown", response, truth, return_dict=True)
        print(f"{label:<12} score={score:<4} reason={detail['reason']}")


if __name__ == "__main__":
    main()
