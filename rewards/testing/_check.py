"""``check_reward``: property-test any reward function against the reward contract.

Key idea: the contract (TRL's ``fn(completions, **columns) -> list[float | None]``) has properties every
reward must keep whatever the model writes: it never raises, returns one value per completion, values are
finite and inside the declared range, the same input gives the same output, the function survives pickling
(trainers ship it to worker processes), and each sample is judged within a time budget. Hypothesis draws
batches of arbitrary and hostile completions plus dataset rows and checks all of these at once, shrinking any
failure.

Left out on purpose: correctness of the values (that is what example tables are for); ``None`` is accepted
only when ``allow_none=True``, since it means the *reference* cannot be judged.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards.testing._strategies import any_completions, chat_completions

__all__ = ["CheckReport", "check_reward"]


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_reward` exercised.

    Attributes:
        n_batches: Batches the reward was called on.
        n_completions: Completions judged in total.
        slowest_seconds_per_sample: The worst per-sample time seen (batch time / batch size).
    """

    n_batches: int
    n_completions: int
    slowest_seconds_per_sample: float


def _row_strategy(columns: Any) -> st.SearchStrategy[dict[str, Any]]:
    if columns is None:
        return st.just({})
    if isinstance(columns, st.SearchStrategy):
        return columns
    if not isinstance(columns, Mapping):
        raise TypeError(
            "columns must be None, a strategy of row dicts, or a mapping column -> strategy | value, "
            f"got {type(columns).__name__}"
        )
    parts = {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in columns.items()}
    return st.fixed_dictionaries(parts)


def _check_values(name: str, values: Any, n: int, value_range: tuple[float, float], allow_none: bool) -> None:
    assert isinstance(values, list), f"{name} returned {type(values).__name__}, expected a list"
    assert len(values) == n, f"{name} returned {len(values)} values for {n} completions"
    lo, hi = value_range
    for v in values:
        if v is None:
            assert allow_none, f"{name} returned None (pass allow_none=True if references can be unjudgeable)"
            continue
        assert isinstance(v, (int, float)) and not isinstance(v, bool), f"{name} returned {v!r}"
        assert math.isfinite(v), f"{name} returned a non-finite value {v!r}"
        assert lo <= v <= hi, f"{name} returned {v!r} outside {value_range}"


def check_reward(
    fn: Callable[..., Any],
    *,
    columns: Mapping[str, Any] | st.SearchStrategy[dict[str, Any]] | None = None,
    completions: st.SearchStrategy[Any] | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    allow_none: bool = False,
    max_seconds_per_sample: float = 2.0,
    max_batch_size: int = 4,
    max_examples: int | None = None,
    check_pickle: bool = True,
    extra_kwargs: Mapping[str, Any] | None = None,
) -> CheckReport:
    """Property-tests ``fn`` against the reward contract; raises ``AssertionError`` (shrunk) on a violation.

    For a :class:`rewards.Reward` it also checks that ``explain_all`` agrees with ``__call__`` (fast paths).

    Args:
        fn: The reward, ``fn(completions, **columns) -> list[float | None]``.
        columns: The dataset columns ``fn`` needs, per row: a mapping column -> strategy or constant
            (``{"answer": st.just("42")}``), or one strategy drawing a whole row dict (for correlated columns
            such as ``countdown_problems()``). Rows are drawn per completion and passed as keyword lists.
        completions: Strategy for one completion (default: arbitrary, hostile and well-formed text, and
            sometimes chat messages).
        value_range: Inclusive bounds every value must lie in.
        allow_none: Whether ``None`` ("cannot be judged") is an acceptable value.
        max_seconds_per_sample: Time budget per completion (batch time divided by batch size).
        max_batch_size: Largest batch drawn.
        max_examples: Hypothesis examples; default: the active settings profile.
        check_pickle: Also check that ``fn`` pickles and the copy gives the same values.
        extra_kwargs: Constant keyword arguments added to every call (e.g. ``{"trainer_state": None}``); the
            check always adds ``prompts`` and an unknown keyword to prove they are accepted.

    Returns:
        A :class:`CheckReport` of what was exercised.

    Raises:
        AssertionError: On the first (shrunk) violation.
        TypeError: If ``columns`` has an unsupported type.

    Example:
        >>> from hypothesis import strategies as st
        >>> from rewards import countdown_accuracy
        >>> from rewards.testing import check_reward, countdown_problems
        >>> report = check_reward(countdown_accuracy, columns=countdown_problems(), max_examples=10)
        >>> report.n_batches >= 10
        True
    """
    rows = _row_strategy(columns)
    one = completions if completions is not None else st.one_of(any_completions(), chat_completions())
    batch = st.lists(st.tuples(one, rows, st.sampled_from(["", "Assistant: <think>"])), min_size=1,
                     max_size=max_batch_size)  # fmt: skip
    name = getattr(fn, "__name__", repr(fn))
    stats: dict[str, Any] = {"batches": 0, "completions": 0, "slowest": 0.0, "first": None}
    base = dict(extra_kwargs or {})

    def call(f: Callable[..., Any], drawn: list[tuple[Any, dict[str, Any], str]]) -> Any:
        kwargs: dict[str, Any] = {**base, "prompts": [p for _, _, p in drawn], "unknown_kwarg_xyz": object()}
        for key in drawn[0][1]:
            kwargs[key] = [row[key] for _, row, _ in drawn]
        return f([c for c, _, _ in drawn], **kwargs)

    profile = settings()
    slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
    run_settings = settings(
        max_examples=max_examples if max_examples is not None else profile.max_examples,
        deadline=None,
        suppress_health_check=slow_ok,
    )

    @run_settings
    @given(drawn=batch)
    def prop(drawn: list[tuple[Any, dict[str, Any], str]]) -> None:
        start = time.perf_counter()
        values = call(fn, drawn)
        per_sample = (time.perf_counter() - start) / len(drawn)
        _check_values(name, values, len(drawn), value_range, allow_none)
        assert per_sample <= max_seconds_per_sample, (
            f"{name} took {per_sample:.3f}s per sample > {max_seconds_per_sample}s"
        )
        again = call(fn, drawn)
        assert again == values, f"{name} is not deterministic: {values} then {again}"
        explain_all = getattr(fn, "explain_all", None)
        if callable(explain_all):  # a rewards.Reward: its explanations must agree with its values
            explained = [r.value for r in call(explain_all, drawn)]
            assert explained == values, f"{name}: explain_all gives {explained} but __call__ gives {values}"
        stats["batches"] += 1
        stats["completions"] += len(drawn)
        stats["slowest"] = max(stats["slowest"], per_sample)
        if stats["first"] is None:
            stats["first"] = drawn

    prop()
    if check_pickle and stats["first"] is not None:
        clone = pickle.loads(pickle.dumps(fn))
        assert getattr(clone, "__name__", None) == getattr(fn, "__name__", None), f"{name}: __name__ changed"
        sample = stats["first"]
        assert call(clone, sample) == call(fn, sample), f"{name}: the unpickled copy scores differently"
    return CheckReport(stats["batches"], stats["completions"], stats["slowest"])
