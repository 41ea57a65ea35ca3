"""Composition of rewards: weighted sums, gating, and a per-component breakdown for logging.

``combine({"format": think_format, "accuracy": countdown_accuracy}, gates={"accuracy": "format"})`` is one
reward whose value is the weighted sum of its components, where a gated component counts only on samples
whose gate component scored above 0 (accuracy without the format is worth nothing: the usual guard against a
model that learns to answer but drops the layout the parser relies on).

Key idea: components are any callables honouring TRL's contract ``fn(completions, **columns)``, not only
:class:`rewards.Reward` objects; every column is forwarded to every component, each ignoring what it does not
need. ``None`` ("cannot be judged") follows TRL's ``nansum``: a ``None`` component is left out of the sum, and
the total is ``None`` only when every component is ``None``.

References: TRL ``GRPOTrainer`` (``reward_funcs`` + ``reward_weights``, NaN-sum of ``None``); DeepSeek-R1
(arXiv:2501.12948): accuracy and format rewards summed.

Left out on purpose: no normalisation across components (that is the trainer's advantage computation), no
chained gates (a gate is judged on its own raw value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewards._contract import Reward, RewardResult

__all__ = ["CombinedReward", "combine"]


def _check_values(name: str, values: Any, n: int) -> list[float | None]:
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)) or len(values) != n:
        raise ValueError(f"component {name!r} must return a list of {n} values, got {values!r:.200}")
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"component {name!r} returned {v!r}; values must be finite floats or None")
        out.append(float(v))
    return out


class CombinedReward(Reward):
    """A weighted, optionally gated sum of reward components (see :func:`combine`).

    Attributes:
        components: Component name -> callable.
        weights: Component name -> weight.
        gates: Gated component name -> name of the component that must score above 0.
    """

    def __init__(
        self,
        components: Mapping[str, Callable[..., Any]],
        weights: Mapping[str, float],
        gates: Mapping[str, str],
        name: str,
    ) -> None:
        self.components = dict(components)
        self.weights = dict(weights)
        self.gates = dict(gates)
        self.__name__ = name
        self.value_range = self._range()

    def _range(self) -> tuple[float, float]:
        lo_total = hi_total = 0.0
        for key, fn in self.components.items():
            lo, hi = getattr(fn, "value_range", (-math.inf, math.inf))
            w = self.weights[key]
            if w == 0:
                continue
            ends = (w * lo, w * hi, 0.0)  # 0.0: gated off, or None (left out of the sum)
            lo_total += min(ends)
            hi_total += max(ends)
        slack = 1e-9 * (1.0 + abs(lo_total) + abs(hi_total))  # summation order may differ by an ulp
        return (lo_total - slack, hi_total + slack)

    def _values(self, completions: Any, kwargs: Mapping[str, Any]) -> dict[str, list[RewardResult]]:
        n = len(completions)
        results: dict[str, list[RewardResult]] = {}
        for key, fn in self.components.items():
            if isinstance(fn, Reward):
                results[key] = list(fn.explain_all(completions, **kwargs))
                _check_values(key, [r.value for r in results[key]], n)
            else:
                values = _check_values(key, fn(completions, **kwargs), n)
                results[key] = [RewardResult(v, "ok" if v is not None else "unjudged") for v in values]
        return results

    def _total(self, i: int, results: Mapping[str, list[RewardResult]]) -> float | None:
        total, judged = 0.0, False
        for key, per_sample in results.items():
            value = per_sample[i].value
            if value is None:
                continue
            judged = True
            gate = self.gates.get(key)
            if gate is not None:
                gate_value = results[gate][i].value
                if gate_value is None or gate_value <= 0:
                    continue
            total += self.weights[key] * value
        return total if judged else None

    def explain_all(self, completions: Any, **kwargs: Any) -> list[RewardResult]:
        """One result per completion: the total, and each component's value and reason in ``detail``."""
        if isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
            raise TypeError(f"completions must be a list, got {type(completions).__name__}")
        results = self._values(completions, kwargs)
        out = []
        for i in range(len(completions)):
            detail = " ".join(f"{k}={r[i].value}({r[i].reason})" for k, r in results.items())
            out.append(RewardResult(self._total(i, results), "combined", detail))
        return out

    def breakdown(self, completions: Any, **kwargs: Any) -> dict[str, list[float | None]]:
        """Per-component raw values (before weights and gates) and the ``"total"``, for logging.

        Example:
            >>> from rewards import combine, think_format, tag_count
            >>> combine({"format": think_format, "tags": tag_count}).breakdown(["<think>a</think>"])
            {'format': [0.0], 'tags': [0.5], 'total': [0.5]}
        """
        if isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
            raise TypeError(f"completions must be a list, got {type(completions).__name__}")
        results = self._values(completions, kwargs)
        table: dict[str, list[float | None]] = {k: [r.value for r in rs] for k, rs in results.items()}
        table["total"] = [self._total(i, results) for i in range(len(completions))]
        return table

    def __repr__(self) -> str:
        parts = ", ".join(f"{self.weights[k]:g}*{k}" for k in self.components)
        return f"<reward {self.__name__} = {parts}; gates {self.gates}>"


def combine(
    components: Mapping[str, Callable[..., Any]],
    *,
    weights: Mapping[str, float] | None = None,
    gates: Mapping[str, str] | None = None,
    name: str = "combined",
) -> CombinedReward:
    """Combines rewards: ``sum(weight[k] * value[k])``, a gated component counting only when its gate > 0.

    Args:
        components: Name -> reward callable (any ``fn(completions, **columns) -> list[float | None]``).
        weights: Name -> weight; missing names weigh 1.0.
        gates: Gated name -> gate name, e.g. ``{"accuracy": "format"}``.
        name: The combined reward's ``__name__`` (TRL logs it).

    Returns:
        A picklable :class:`CombinedReward` (as long as its components are picklable).

    Raises:
        ValueError: On no components, an unknown name in ``weights``/``gates``, a self-gate, or a non-finite
            weight.
        TypeError: On a component that is not callable.

    Example:
        >>> from rewards import combine, countdown_accuracy, think_format
        >>> r1 = combine({"format": think_format, "accuracy": countdown_accuracy},
        ...              weights={"format": 0.1}, gates={"accuracy": "format"})
        >>> r1(["<think>..</think><answer>3*8</answer>", "<answer>3*8</answer>"], nums=[[3, 8]] * 2,
        ...    target=[24, 24])
        [1.1, 0.0]
    """
    if not isinstance(components, Mapping) or not components:
        raise ValueError(f"components must be a non-empty mapping name -> reward, got {components!r}")
    for key, fn in components.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"component names must be non-empty strings, got {key!r}")
        if not callable(fn):
            raise TypeError(f"component {key!r} is not callable: {fn!r}")
    weights = dict(weights or {})
    gates = dict(gates or {})
    for label, mapping in (("weights", weights), ("gates", gates)):
        unknown = sorted(set(mapping) - set(components))
        if unknown:
            raise ValueError(f"{label} names unknown components {unknown}; known: {sorted(components)}")
    for key, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise ValueError(f"weights[{key!r}] must be a finite number, got {w!r}")
    for key, gate in gates.items():
        if gate not in components or gate == key:
            raise ValueError(
                f"gates[{key!r}] = {gate!r} must name another component; components are {sorted(components)}"
            )
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    full_weights = {k: float(weights.get(k, 1.0)) for k in components}
    return CombinedReward(components, full_weights, gates, name)
