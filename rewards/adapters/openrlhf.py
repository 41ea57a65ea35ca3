"""OpenRLHF adapter: ``reward_func(queries, prompts, labels)`` for ``--remote_rm_url /path/to/file.py``.

OpenRLHF's reinforced fine-tuning loads a Python file given as ``--remote_rm_url`` and calls its
``reward_func(queries, prompts, labels)``, where ``queries`` are prompt + response decoded together,
``prompts`` the prompts alone and ``labels`` the dataset's ``--label_key`` column. It expects
``{"rewards": ..., "scores": ..., "extra_logs": {...}}``.

Usage::

    --remote_rm_url examples/openrlhf_reward.py \\
    --label_key label      # one JSON object or answer string per row, see below

Labels select the reward per row:

* a dict or JSON object with ``data_source`` (and ``ground_truth``): scored as verl would
  (:func:`rewards.adapters.verl.compute_score`);
* a dict / JSON object with ``target`` and ``numbers`` (or ``nums``): countdown;
* a dict / JSON object with ``tests`` | ``test`` + ``entry_point`` | ``inputs`` + ``outputs``: code;
* any other string: a math reference answer.

Key idea: the response is the query with its prompt stripped, so an example ``<answer>`` inside the prompt
(TinyZero's template has one) is never scored. ``rewards`` and ``scores`` are torch tensors when torch is
already loaded in the process, else plain lists (``rewards/`` does not depend on torch). OpenRLHF builds its
samples from tensors, and a Ray worker that runs a reward file may not have imported torch yet: point
``--remote_rm_url`` at ``examples/openrlhf_reward.py``, which imports torch first, rather than at this
module.
``extra_logs`` carries the strict format reward and the share of rows that produced an answer.

OpenRLHF before 0.10.1 read a score of 0.0 as missing and used the reward instead (its issue #1219:
``scores or rewards`` on a one-element tensor), so a wrong answer with a format bonus counted as
partly solved in ``--dynamic_filtering``; use 0.10.1 or later.

References: OpenRLHF ``examples/scripts/reward_func.py`` and its "reinforced fine-tuning" documentation.

Left out on purpose: OpenRLHF is not imported; there is no reward-server (HTTP) mode.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rewards.adapters.verl import compute_score

__all__ = ["reward_func", "strip_prompt"]


def strip_prompt(query: str, prompt: str) -> str:
    """Returns the response part of ``query`` (prompt + response).

    Args:
        query: The decoded prompt and response.
        prompt: The decoded prompt.

    Returns:
        ``query`` without its leading ``prompt``; if the query has something before the prompt (padding, a
        BOS token), the text after the prompt's first occurrence (a response that repeats its prompt keeps
        the repeat); if the prompt is not found, the whole query.

    Example:
        >>> strip_prompt("User: 1+1? Assistant: <answer>2</answer>", "User: 1+1? Assistant:")
        ' <answer>2</answer>'
    """
    if query.startswith(prompt):
        return query[len(prompt) :]
    at = query.find(prompt) if prompt else -1
    return query[at + len(prompt) :] if at >= 0 else query


# End-of-turn tokens OpenRLHF leaves in a response (it decodes with skip_special_tokens=False): ChatML
# <|im_end|>, Llama <|eot_id|>, DeepSeek <｜end▁of▁sentence｜>, SentencePiece </s>.
_END_MARKERS = re.compile(r"(?:\s*(?:<\|[^<>|\s]{1,40}\|>|<｜[^<>｜\s]{1,40}｜>|</s>))+\s*\Z")


def _without_end_markers(response: str) -> str:
    tail = response[-512:]
    match = _END_MARKERS.search(tail)
    return response[: len(response) - len(tail) + match.start()] if match else response


def _parse_label(label: Any) -> tuple[str, Any]:
    """Returns (data_source, ground_truth) for one label (see the module docstring)."""
    value = label
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            value = json.loads(label)
        except ValueError:
            value = label
    if isinstance(value, Mapping):
        if "data_source" in value:
            return str(value["data_source"]), value.get("ground_truth", value)
        if "target" in value and ("numbers" in value or "nums" in value):
            return "countdown", value
        if any(k in value for k in ("tests", "test", "inputs")):
            return "code", value
        raise ValueError(f"cannot tell the task of label {label!r:.200}: no data_source, target or tests")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return "math", str(value)
    raise TypeError(f"labels must be strings or dicts, got {type(label).__name__}")


def _as_output(values: list[float]) -> Any:
    torch = sys.modules.get("torch")  # never imported here: rewards/ does not depend on torch
    return torch.tensor(values, dtype=torch.float32) if torch is not None else values


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kw: Any
) -> dict[str, Any]:
    """Scores OpenRLHF rollouts with rlenv's rewards.

    Args:
        queries: Prompt + response per rollout.
        prompts: The prompt per rollout.
        labels: The ``--label_key`` column per rollout (see the module docstring).
        **kw: Forwarded to :func:`rewards.adapters.verl.compute_score` (e.g. ``format_score``).

    Returns:
        ``{"rewards", "scores", "extra_logs"}``; ``scores`` is 1.0 for a fully correct answer, else 0.0
        (OpenRLHF's dynamic filtering reads it).

    Raises:
        ValueError: If the three lists differ in length or a label cannot be mapped to a task.

    Example:
        >>> out = reward_func(["Q: 3 8 -> 24 A:<answer>3*8</answer>"], ["Q: 3 8 -> 24 A:"],
        ...                   ['{"target": 24, "numbers": [3, 8]}'])
        >>> [float(v) for v in out["rewards"]], [float(v) for v in out["scores"]]
        ([1.0], [1.0])
    """
    if not len(queries) == len(prompts) == len(labels):
        raise ValueError(f"got {len(queries)} queries, {len(prompts)} prompts and {len(labels)} labels")
    from rewards.format import think_format

    responses = [strip_prompt(q, p) for q, p in zip(queries, prompts, strict=True)]
    kw = {k: v for k, v in kw.items() if k != "return_dict"}
    rewards: list[float] = []
    scores: list[float] = []
    answered: list[float] = []
    for response, label in zip(responses, labels, strict=True):
        source, truth = _parse_label(label)
        result = compute_score(source, response, truth, return_dict=True, **kw)
        rewards.append(result["score"])
        scores.append(result["acc"])
        answered.append(0.0 if result["reason"] in ("no_answer_tag", "no_answer") else 1.0)
    ends = [_without_end_markers(r) for r in responses]  # the strict format allows nothing after </answer>
    formats = [float(v or 0.0) for v in think_format(ends, prompts=list(prompts))]
    extra = {"think_format": _as_output(formats), "answered": _as_output(answered)}
    return {"rewards": _as_output(rewards), "scores": _as_output(scores), "extra_logs": extra}
