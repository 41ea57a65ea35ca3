"""``rlenv sample`` and ``rlenv score``: look at an environment's items, score a file of completions.

``rlenv sample rlenv/Countdown-v0 -n 5`` prints five prompts with their reward columns (``--json`` prints
regenerable JSONL rows instead, as :func:`rlenv.export_rows` makes them).

``rlenv score rlenv/Countdown-v0 completions.jsonl`` scores one completion per line with the environment's
reward and prints a summary table (mean / min / max per reward component, how many were judged, the solved
rate). A line carries a ``completion`` and either the reward columns (rows exported by rlenv, or your own)
or just an ``index`` (and optionally ``seed``), from which the item is regenerated.

Key idea: both commands go through the environment itself (its items, templates and default reward), so what
they print is exactly what a trainer would see.

References: cleanrl-style dataclass configs whose field docstrings are the ``--help`` (tyro).

Left out on purpose: no model calls; completions come from a file.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import gymnasium as gym
import tyro

import rlenv
from rlenv.envs._base import score as score_one

__all__ = ["SampleConfig", "ScoreConfig", "sample", "score"]


def _env_kwargs(text: str) -> dict[str, Any]:
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"env_kwargs={text!r} is not JSON: {e}") from e
    if not isinstance(kwargs, dict):
        raise ValueError(f"env_kwargs={text!r} must be a JSON object")
    return kwargs


def _check_env_id(env_id: str) -> None:
    gym.spec(env_id)  # unknown ids raise gymnasium's NameNotFound with its "did you mean"


@dataclass(frozen=True, kw_only=True)
class SampleConfig:
    """Print items from an environment."""

    env: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="ENV_ID")]
    """Environment id, e.g. rlenv/Countdown-v0."""
    n: Annotated[int, tyro.conf.arg(aliases=("-n",))] = 5
    """Number of items."""
    seed: int = 0
    """Data-set seed."""
    start: int = 0
    """First item index."""
    split: Literal["train", "test"] = "train"
    """Which stream."""
    difficulty: int | None = None
    """Difficulty level 1-5 (None: the env's default)."""
    template: Literal["r1zero", "tinyzero", "chat"] = "r1zero"
    """Prompt template."""
    env_kwargs: str = "{}"
    """Further env kwargs as a JSON object, e.g. '{"source": "gsm8k", "data": "gsm8k_test.jsonl"}'."""
    json: bool = False
    """Print JSONL rows (prompt, reward columns, provenance) instead of readable text."""

    def __post_init__(self) -> None:
        if self.n < 0 or self.seed < 0 or self.start < 0:
            raise ValueError(f"n, seed and start must be >= 0, got {self.n}, {self.seed}, {self.start}")
        if self.difficulty is not None and self.difficulty not in range(1, 6):
            raise ValueError(f"difficulty={self.difficulty} must be in 1..5")
        _env_kwargs(self.env_kwargs)

    def kwargs(self) -> dict[str, Any]:
        """The env constructor kwargs this config asks for."""
        extra = {"difficulty": self.difficulty} if self.difficulty is not None else {}
        return {"split": self.split, "template": self.template, **extra, **_env_kwargs(self.env_kwargs)}


def sample(config: SampleConfig) -> int:
    """Prints ``config.n`` items of ``config.env``; returns 0.

    Example:
        >>> sample(SampleConfig(env="rlenv/Countdown-v0", n=1, json=True))  # doctest: +ELLIPSIS
        {"prompt": ...
        0
    """
    _check_env_id(config.env)
    rows = rlenv.export_rows(config.env, config.n, seed=config.seed, start=config.start, **config.kwargs())
    for row in rows:
        if config.json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        print(f"--- {config.env} item {row['index']} (seed {row['seed']}, {row['split']}) ---")
        prompt = row["prompt"]
        if isinstance(prompt, list):
            prompt = "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)
        print(prompt)
        skip = {"prompt", "env_id", "seed", "index", "split", "env_kwargs"}
        print(json.dumps({k: v for k, v in row.items() if k not in skip}, ensure_ascii=False))
    return 0


@dataclass(frozen=True, kw_only=True)
class ScoreConfig:
    """Score a JSONL file of completions with an environment's reward."""

    env: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="ENV_ID")]
    """Environment id, e.g. rlenv/Countdown-v0."""
    completions: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="COMPLETIONS_JSONL")]
    """JSONL file: one object per line with a completion and either the reward columns or an index."""
    completion_key: str = "completion"
    """Key of the completion text in each line."""
    seed: int = 0
    """Seed used to regenerate items for lines that carry an index but no seed."""
    env_kwargs: str = "{}"
    """Env kwargs as a JSON object (must match the ones the items were made with when regenerating)."""
    output: Path | None = None
    """Optional JSONL file receiving each line's total and components."""

    def __post_init__(self) -> None:
        if not self.completion_key:
            raise ValueError("completion_key must be non-empty")
        _env_kwargs(self.env_kwargs)


def _score_lines(config: ScoreConfig) -> list[dict[str, Any]]:
    env = gym.make(config.env, **_env_kwargs(config.env_kwargs)).unwrapped
    results = []
    with config.completions.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            completion = row.get(config.completion_key)
            if not isinstance(completion, str):
                raise ValueError(f"{config.completions}:{lineno}: no string {config.completion_key!r} field")
            try:
                columns = env.columns(row)
                prompt = row.get("prompt")
            except KeyError:
                if "index" not in row:
                    raise ValueError(f"{config.completions}:{lineno}: needs the reward columns "
                                     f"{list(env.reward_columns)} or an 'index'") from None
                item = env.make_row(int(row["index"]), int(row.get("seed", config.seed)))
                columns, prompt = env.columns(item), env.render_prompt(item)
            total, components = score_one(env.reward_fn, completion, prompt, columns)
            results.append({"line": lineno, "total": total, **components})
    return results


def _summary(results: list[dict[str, Any]]) -> list[tuple[str, float, float, float, int]]:
    names = [k for k in results[0] if k not in ("line", "total")] + ["total"]
    table = []
    for name in names:
        values = [r[name] for r in results if r.get(name) is not None and math.isfinite(r[name])]
        if values:
            table.append((name, sum(values) / len(values), min(values), max(values), len(values)))
        else:
            table.append((name, math.nan, math.nan, math.nan, 0))
    return table


def score(config: ScoreConfig) -> int:
    """Scores every completion in ``config.completions`` and prints a summary table; returns 0."""
    _check_env_id(config.env)
    if not config.completions.is_file():
        raise ValueError(f"no such completions file: {str(config.completions)!r}")
    results = _score_lines(config)
    if not results:
        print(f"{config.completions}: no completions", file=sys.stderr)
        return 1
    if config.output is not None:
        with config.output.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in results)
    solved = sum(r["total"] >= 1.0 - 1e-9 for r in results) / len(results)
    print(f"{config.env}: {len(results)} completions from {config.completions}")
    print(f"{'component':<16}{'mean':>8}{'min':>8}{'max':>8}{'judged':>8}")
    for name, mean, lo, hi, judged in _summary(results):
        print(f"{name:<16}{mean:>8.3f}{lo:>8.3f}{hi:>8.3f}{judged:>8d}")
    print(f"solved (total >= 1): {solved:.1%}")
    return 0
