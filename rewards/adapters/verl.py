"""verl adapter: ``compute_score`` dispatching on ``data_source`` to rlenv's rewards.

verl calls a custom reward function once per response with the decoded response (no prompt), the dataset's
``reward_model.ground_truth`` and ``data_source`` columns, and ``extra_info``. Point verl at this module::

    custom_reward_function:
      path: /path/to/site-packages/rewards/adapters/verl.py   # or examples/verl_reward.py
      name: compute_score
      reward_kwargs: {format_score: 0.1}                      # optional, forwarded as **kw

(command-line form: ``custom_reward_function.path=$(python -c "import rewards.adapters.verl as m;
print(m.__file__)") custom_reward_function.name=compute_score``).

Dispatch (``data_source`` compared case-insensitively):

* contains ``countdown`` (TinyZero, ``rlenv/Countdown-v0``): ground truth
  ``{"target": int, "numbers": [...]}`` (``nums`` also accepted) -> :func:`rewards.make_countdown_reward`
  (``format_score`` from ``**kw``, default 0).
* a code source (``codecontests``, ``apps``, ``taco``, ``codeforces``, ``livecodebench``, ``humaneval``,
  ``mbpp``, ``primeintellect``, or containing ``code``): ground truth a dict or JSON object with ``tests`` |
  ``test`` + ``entry_point`` | ``inputs`` + ``outputs`` -> :data:`rewards.code_accuracy`.
* a math source (``openai/gsm8k``, ``lighteval/MATH``, ``DigitalLearningGmbH/MATH-lighteval``,
  ``HuggingFaceH4/MATH-500``, ``math_dapo``, ``aime*``, ``amc*``, ``numina_*``, or containing ``gsm8k`` /
  ``math``): ground truth the reference answer string -> :data:`rewards.math_accuracy`.
* anything else: ``ValueError`` naming the source and the supported families.

Key idea: one module-level reward object per family (built once, picklable), judged through ``explain`` so the
dict form can carry the reason.

References: verl ``verl/utils/reward_score/__init__.py`` (``default_compute_score``), TinyZero
``verl/utils/reward_score/countdown.py``.

Left out on purpose: verl is not imported; no reward model sources (``searchR1``, geometry3k).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["compute_score", "reward_family"]

_CODE_SOURCES = ("codecontests", "apps", "taco", "codeforces", "livecodebench", "humaneval", "mbpp",
                 "primeintellect")  # fmt: skip
_MATH_SOURCES = ("openai/gsm8k", "lighteval/math", "digitallearninggmbh/math-lighteval",
                 "huggingfaceh4/math-500", "math_dapo", "math")  # fmt: skip
_CODE_KEYS = ("tests", "test_setup_code", "test", "entry_point", "inputs", "outputs", "fn_name")


def reward_family(data_source: str) -> str:
    """Returns ``"countdown"``, ``"code"`` or ``"math"`` for a verl ``data_source``.

    Args:
        data_source: The dataset's ``data_source`` column.

    Returns:
        The reward family.

    Raises:
        TypeError: If ``data_source`` is not a string.
        ValueError: If the source is not recognised.

    Example:
        >>> [reward_family(s) for s in ("countdown", "openai/gsm8k", "codecontests", "aime_2024")]
        ['countdown', 'math', 'code', 'math']
    """
    if not isinstance(data_source, str):
        raise TypeError(f"data_source must be a string, got {data_source!r}")
    source = data_source.lower()
    if "countdown" in source:
        return "countdown"
    if source in _CODE_SOURCES or "code" in source or any(source.endswith("/" + s) for s in _CODE_SOURCES):
        return "code"
    if (
        source in _MATH_SOURCES
        or source.startswith(("aime", "amc", "numina_"))
        or "gsm8k" in source
        or ("math" in source)
    ):
        return "math"
    raise ValueError(
        f"unknown data_source {data_source!r}: rlenv scores countdown sources (containing 'countdown'), code "
        f"sources {list(_CODE_SOURCES)} and math sources {list(_MATH_SOURCES)} / aime* / amc* / numina_*"
    )


def _mapping(ground_truth: Any, family: str) -> Mapping[str, Any]:
    if isinstance(ground_truth, (str, bytes)):
        try:
            ground_truth = json.loads(ground_truth)
        except ValueError:
            raise ValueError(
                f"{family} ground_truth must be a dict or a JSON object, got {ground_truth!r:.200}"
            ) from None
    if not isinstance(ground_truth, Mapping):
        raise TypeError(f"{family} ground_truth must be a dict, got {type(ground_truth).__name__}")
    return ground_truth


def _countdown_row(ground_truth: Any) -> dict[str, Any]:
    truth = _mapping(ground_truth, "countdown")
    numbers = truth.get("numbers", truth.get("nums"))
    if numbers is None or "target" not in truth:
        raise ValueError(f"countdown ground_truth needs 'target' and 'numbers', got keys {sorted(truth)}")
    return {"nums": list(numbers), "target": truth["target"]}


def _code_row(ground_truth: Any) -> dict[str, Any]:
    truth = _mapping(ground_truth, "code")
    row = {k: truth[k] for k in _CODE_KEYS if k in truth}
    if not row:
        raise ValueError(f"code ground_truth needs one of {list(_CODE_KEYS)}, got keys {sorted(truth)}")
    return row


def _math_answer(ground_truth: Any) -> str:
    if isinstance(ground_truth, bool) or not isinstance(ground_truth, (str, int, float)):
        raise TypeError(f"math ground_truth must be a string or a number, got {type(ground_truth).__name__}")
    return ground_truth if isinstance(ground_truth, str) else str(ground_truth)


@functools.lru_cache(maxsize=16)
def _countdown_reward(format_score: float) -> Any:
    import rewards

    if format_score == 0.0:
        return rewards.countdown_accuracy
    return rewards.make_countdown_reward(format_score=format_score)


def _reward(family: str, kw: Mapping[str, Any]) -> Any:
    import rewards

    if family == "countdown":
        return _countdown_reward(kw.get("format_score", 0.0))
    if family == "code":
        return rewards.code_accuracy
    return rewards.math_accuracy


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **kw: Any
) -> float | dict[str, Any]:
    """Scores one verl response with the rlenv reward for its ``data_source``.

    Args:
        data_source: The dataset's ``data_source`` (selects the reward family, see the module docstring).
        solution_str: The decoded response (verl passes it without the prompt).
        ground_truth: ``reward_model.ground_truth``: a countdown dict, a code-test dict / JSON object, or a
            math reference answer.
        extra_info: verl's ``extra_info`` column; unused.
        **kw: ``format_score`` (countdown), ``return_dict`` (bool: return ``{"score", "acc", "reason"}``);
            anything else verl passes is ignored.

    Returns:
        The score as a float (an unjudgeable reference scores 0.0), or a dict when ``return_dict=True``.

    Raises:
        ValueError: On an unknown ``data_source`` or a malformed ``ground_truth``.
        TypeError: On a ``data_source`` that is not a string or a ``ground_truth`` of the wrong type.

    Example:
        >>> compute_score("countdown", "<think>..</think><answer>(7 - 3) * 6</answer>",
        ...               {"target": 24, "numbers": [3, 6, 7]})
        1.0
        >>> compute_score("countdown", "<answer>7 * 3</answer>", {"target": 24, "numbers": [3, 7]},
        ...               return_dict=True)
        {'score': 0.0, 'acc': 0.0, 'reason': 'wrong_value'}
    """
    family = reward_family(data_source)
    if family == "countdown":
        row = _countdown_row(ground_truth)
    elif family == "code":
        row = _code_row(ground_truth)
    else:
        row = {"answer": _math_answer(ground_truth)}
    reward = _reward(family, kw)
    result = reward.explain(solution_str, **row)
    score = 0.0 if result.value is None else float(result.value)
    if not kw.get("return_dict", False):
        return score
    acc = 1.0 if result.value is not None and result.value >= reward.value_range[1] else 0.0
    return {"score": score, "acc": acc, "reason": result.reason}
