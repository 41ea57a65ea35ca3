"""Prompt templates as data: one JSON file per environment version (``countdown-v0.json`` for Countdown-v0).

Key idea: the prompt is part of an environment's semantics, so it lives in a versioned data file next to the
code, not in string literals scattered through it. Changing a prompt means a new file and a new env version.

Each file holds the task's ``question`` text and three framings of it:

* ``r1zero`` — DeepSeek-R1-Zero's template (Table 1 of the paper); the text ends with the assistant turn
  opened (``Assistant:``).
* ``tinyzero`` — TinyZero's base-model template, which prefills ``<think>`` after "Let me solve this step by
  step." (rewards detect the prefill through the ``prompts`` column).
* ``chat`` — a system and a user message for chat models (the observation is a tuple of message dicts).
* ``compact`` (countdown only) — ``User: <the task in one sentence> Assistant:``, for the small bundled
  character-level policy on a CPU, where every prompt character costs a token in every rollout and update.
* ``terse`` (countdown only) — ``User: [numbers] -> target Assistant:``: the same task in less than half the
  characters, for a policy trained from scratch on it (it states no instructions, so it suits SFT, not
  R1-Zero).

Placeholders are ``{name}``; only known names are substituted, so literal braces in questions (LaTeX, code)
are left alone.

References: DeepSeek-R1 (arXiv:2501.12948) Table 1; TinyZero (github.com/Jiayi-Pan/TinyZero,
examples/data_preprocess/countdown.py).

Left out on purpose: tokenizer chat templates are not applied here; trainers do that.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any, Literal

__all__ = ["TEMPLATE_NAMES", "TemplateName", "load_template", "render", "render_feedback"]

TemplateName = Literal["r1zero", "tinyzero", "chat", "compact", "terse"]
TEMPLATE_NAMES: tuple[str, ...] = ("r1zero", "tinyzero", "chat", "compact", "terse")
_FIELD = re.compile(r"\{([a-z_]+)\}")


@cache
def load_template(name: str) -> dict[str, Any]:
    """The parsed template file ``<name>.json`` (e.g. ``"countdown-v0"``).

    Raises:
        ValueError: If no such file ships with rlenv.

    Example:
        >>> load_template("countdown-v0")["env_id"]
        'rlenv/Countdown-v0'
    """
    path = resources.files("rlenv.templates") / f"{name}.json"
    if not path.is_file():
        files = resources.files("rlenv.templates").iterdir()
        available = sorted(p.name[:-5] for p in files if p.name.endswith(".json"))
        raise ValueError(f"no prompt template file {name!r}; available: {available}")
    return json.loads(path.read_text(encoding="utf-8"))


def _fill(text: str, fields: dict[str, str]) -> str:
    return _FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), text)


def _check_style(data: dict[str, Any], style: str) -> dict[str, str]:
    if style not in data["templates"]:
        raise ValueError(f"template={style!r} is not one of {sorted(data['templates'])} for {data['env_id']}")
    return data["templates"][style]


def render(name: str, style: str, fields: dict[str, str]) -> str | tuple[dict[str, str], ...]:
    """Renders the prompt of one item.

    Args:
        name: Template file name (``"countdown-v0"``).
        style: ``"r1zero"``, ``"tinyzero"`` or ``"chat"``.
        fields: Placeholder values (``nums``, ``target``, ``problem``, ...), already formatted as text.

    Returns:
        The prompt text, or for ``"chat"`` a tuple of ``{"role", "content"}`` messages.

    Example:
        >>> render("countdown-v0", "tinyzero", {"nums": "[1, 2, 3]", "target": "6"}).endswith("<think>")
        True
    """
    data = load_template(name)
    spec = _check_style(data, style)
    question = _fill(data["question"], fields)
    full = {**fields, "question": question}
    if style == "chat":
        return (
            {"role": "system", "content": _fill(spec["system"], full)},
            {"role": "user", "content": _fill(spec["user"], full)},
        )
    return _fill(spec["prompt"], full)


def render_feedback(name: str, style: str, fields: dict[str, str]) -> str:
    """Renders a multi-turn feedback turn (the text appended after a failed attempt).

    Example:
        >>> text = render_feedback("code_feedback-v0", "r1zero", {"attempt": "1", "max_attempts": "3",
        ...     "passed": "0", "total": "2", "failures": "assert f(1) == 2"})
        >>> text.startswith("\\nUser: Attempt 1 of 3 failed")
        True
    """
    data = load_template(name)
    spec = _check_style(data, style)
    if "feedback" not in data:
        raise ValueError(f"{data['env_id']} has no feedback template")
    return _fill(spec["feedback"], {**fields, "feedback": _fill(data["feedback"], fields)})
