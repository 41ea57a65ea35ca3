"""Export environment items as rows (JSONL, Hugging Face ``datasets``) for TRL, verl or any trainer.

A row holds the ``prompt`` (text, or chat messages for ``template="chat"``), the reward columns (``nums`` /
``target``, ``answer``, ``tests`` / ``entry_point`` ...), display fields, and its provenance: ``env_id``,
``seed``, ``index``, ``split`` and ``env_kwargs`` (JSON). Feeding the rows to ``GRPOTrainer`` with the
rewards from :mod:`rewards` reproduces the environment's scoring, since TRL forwards every extra column.

Key idea: items are pure functions of (env id, env kwargs, seed, index), so a row is never the only copy of
itself: :func:`regenerate` rebuilds it exactly, which makes exported data sets auditable and lets a run
resume from indices instead of files.

References: TRL ``GRPOTrainer`` dataset format (``prompt`` column, extra columns passed to reward functions).

Left out on purpose: env kwargs that are not JSON-serialisable, and in-memory ``data`` (a list of rows, a
``datasets.Dataset``), are recorded by type name only; regenerating such rows needs them passed again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym

__all__ = ["export_rows", "regenerate", "to_hf_dataset", "to_jsonl"]

# kwargs that change scoring, not items: left out of the provenance record
_SCORING_KWARGS = ("reward", "reward_weights", "tester", "render_mode")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"__unserializable__": type(value).__name__}


def _kwargs_record(env_kwargs: dict[str, Any]) -> str:
    kept = {k: v for k, v in env_kwargs.items() if k not in _SCORING_KWARGS}
    data = kept.get("data")
    if data is not None and not isinstance(data, (str, os.PathLike)):
        kept["data"] = {"__unserializable__": type(data).__name__}  # rows in memory: not copied into each row
    return json.dumps(_jsonable(kept), sort_keys=True)


def export_rows(env_id: str, n: int, *, seed: int = 0, start: int = 0,
                **env_kwargs: Any) -> list[dict[str, Any]]:
    """Items ``start .. start + n - 1`` of ``env_id`` (stream ``seed``) as rows.

    Args:
        env_id: A registered rlenv id.
        n: Number of rows (>= 0).
        seed: Data-set seed.
        start: First index.
        **env_kwargs: Env constructor arguments (``split``, ``difficulty``, ``template``, ``source``, ...).

    Returns:
        One dict per item: ``prompt``, the item's fields, ``env_id``, ``seed``, ``index``, ``split``,
        ``env_kwargs``.

    Raises:
        ValueError: On negative ``n``, ``seed`` or ``start``.

    Example:
        >>> import rlenv
        >>> row = export_rows("rlenv/Countdown-v0", 1, seed=3)[0]
        >>> sorted(k for k in row if k in ("prompt", "nums", "target", "index"))
        ['index', 'nums', 'prompt', 'target']
    """
    if n < 0 or seed < 0 or start < 0:
        raise ValueError(f"n, seed and start must be >= 0, got n={n}, seed={seed}, start={start}")
    env = gym.make(env_id, **env_kwargs).unwrapped
    record = _kwargs_record(env_kwargs)
    rows = []
    for index in range(start, start + n):
        item = env.make_row(index, seed)
        prompt = env.render_prompt(item)
        prompt = list(prompt) if isinstance(prompt, tuple) else prompt
        rows.append({"prompt": prompt, **item, "env_id": env_id, "seed": seed, "index": index,
                     "split": env.split, "env_kwargs": record})
    env.close()
    return rows


def regenerate(row: dict[str, Any], **env_kwargs: Any) -> dict[str, Any]:
    """Rebuilds an exported row from its provenance (``env_id``, ``env_kwargs``, ``seed``, ``index``).

    Args:
        row: A row from :func:`export_rows` (only the provenance columns are read).
        **env_kwargs: Override the recorded kwargs (needed when one was not JSON-serialisable).

    Raises:
        ValueError: If the row lacks provenance, or a recorded kwarg could not be serialised.

    Example:
        >>> import rlenv
        >>> row = export_rows("rlenv/Math-v0", 1, seed=5, start=7, difficulty=3)[0]
        >>> regenerate(row) == row
        True
    """
    missing = [k for k in ("env_id", "seed", "index", "env_kwargs") if k not in row]
    if missing:
        raise ValueError(f"row lacks provenance column(s) {missing}; was it made by rlenv.export_rows?")
    kwargs = {**json.loads(row["env_kwargs"]), **env_kwargs}
    bad = [k for k, v in kwargs.items() if isinstance(v, dict) and "__unserializable__" in v]
    if bad:
        raise ValueError(f"env kwargs {bad} were not serialisable when exported; pass them again: "
                         f"regenerate(row, {bad[0]}=...)")
    fresh = export_rows(row["env_id"], 1, seed=int(row["seed"]), start=int(row["index"]), **kwargs)[0]
    fresh["env_kwargs"] = row["env_kwargs"]
    return fresh


def to_jsonl(env_id: str, n: int, path: str | os.PathLike, *, seed: int = 0, start: int = 0,
             **env_kwargs: Any) -> Path:
    """Writes :func:`export_rows` to a JSONL file and returns its path.

    Example:
        >>> import rlenv, tempfile, os
        >>> path = to_jsonl("rlenv/Countdown-v0", 3, os.path.join(tempfile.mkdtemp(), "cd.jsonl"))
        >>> len(path.read_text().splitlines())
        3
    """
    path = Path(path)
    rows = export_rows(env_id, n, seed=seed, start=start, **env_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def to_hf_dataset(env_id: str, n: int, *, seed: int = 0, start: int = 0, **env_kwargs: Any) -> Any:
    """A ``datasets.Dataset`` of :func:`export_rows` (``datasets`` is imported only here).

    Ready for ``trl.GRPOTrainer(train_dataset=..., reward_funcs=[...])``: the ``prompt`` column plus the
    reward columns TRL forwards to each reward function.

    Example:
        >>> import rlenv
        >>> ds = to_hf_dataset("rlenv/Math-v0", 4, seed=0)  # doctest: +SKIP
        >>> ds.column_names[:2]  # doctest: +SKIP
        ['prompt', 'problem']
    """
    import datasets

    return datasets.Dataset.from_list(export_rows(env_id, n, seed=seed, start=start, **env_kwargs))
