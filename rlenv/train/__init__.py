"""Training: GRPO (with DAPO / Dr. GRPO variants), pretraining, SFT, distillation, evaluation and the CLI.

The one place where :mod:`rewards`, :mod:`rlenv` environments and :mod:`policies` meet. Each stage is a config
dataclass and a function returning a result (``train(GRPOConfig) -> StageResult``), so stages chain from
Python as well as from the ``rlenv`` command line. Public names are resolved lazily (PEP 562): importing
``rlenv.train`` (e.g. for ``rlenv sample``) does not load torch until a trainer name is used.

Quickstart::

    from rlenv.train import GRPOConfig, train, EvalConfig, evaluate
    result = train(GRPOConfig(env_id="rlenv/Countdown-v0", steps=10))
    print(evaluate(EvalConfig(policy=result.checkpoint)).pass_at_k)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # configs and results
    "GRPOConfig": "rlenv.train.config",
    "PretrainConfig": "rlenv.train.config",
    "SFTConfig": "rlenv.train.config",
    "DistillConfig": "rlenv.train.config",
    "EvalConfig": "rlenv.train.config",
    "PlotConfig": "rlenv.train.config",
    "OptimConfig": "rlenv.train.config",
    "StageResult": "rlenv.train.config",
    "EvalResult": "rlenv.train.config",
    # stages
    "train": "rlenv.train.grpo",
    "pretrain": "rlenv.train.pretrain",
    "sft": "rlenv.train.sft",
    "distill": "rlenv.train.distill",
    "evaluate": "rlenv.train.evaluate",
    "plot": "rlenv.train.plot",
    "RecipeConfig": "rlenv.train.recipes",
    "run_recipe": "rlenv.train.recipes",
    # algorithm pieces
    "group_advantages": "rlenv.train.advantages",
    "grpo_loss": "rlenv.train.losses",
    "aggregate_loss": "rlenv.train.losses",
    "clipped_surrogate": "rlenv.train.losses",
    "k3_kl": "rlenv.train.losses",
    "soft_overlong_penalty": "rlenv.train.sampling",
    "informative_groups": "rlenv.train.sampling",
    "pass_at_k": "rlenv.train.evaluate",
    # policies
    "Policy": "rlenv.train.policy",
    "HFPolicy": "rlenv.train.hf_policy",
    "SamplingParams": "rlenv.train.policy",
    "Rollouts": "rlenv.train.policy",
    "load_policy": "rlenv.train.policy",
    # checkpoints and metrics
    "latest_checkpoint": "rlenv.train.checkpoint",
    "read_metrics": "rlenv.train.metrics",
}

__all__ = [  # noqa: RUF022 - grouped as in _LAZY
    "GRPOConfig",
    "PretrainConfig",
    "SFTConfig",
    "DistillConfig",
    "EvalConfig",
    "PlotConfig",
    "OptimConfig",
    "StageResult",
    "EvalResult",
    "train",
    "pretrain",
    "sft",
    "distill",
    "evaluate",
    "plot",
    "RecipeConfig",
    "run_recipe",
    "group_advantages",
    "grpo_loss",
    "aggregate_loss",
    "clipped_surrogate",
    "k3_kl",
    "soft_overlong_penalty",
    "informative_groups",
    "pass_at_k",
    "Policy",
    "HFPolicy",
    "SamplingParams",
    "Rollouts",
    "load_policy",
    "latest_checkpoint",
    "read_metrics",
]
assert set(__all__) == set(_LAZY), "keep __all__ and _LAZY in step"

if TYPE_CHECKING:  # pragma: no cover
    from rlenv.train.advantages import group_advantages
    from rlenv.train.checkpoint import latest_checkpoint
    from rlenv.train.config import (
        DistillConfig,
        EvalConfig,
        EvalResult,
        GRPOConfig,
        OptimConfig,
        PlotConfig,
        PretrainConfig,
        SFTConfig,
        StageResult,
    )
    from rlenv.train.distill import distill
    from rlenv.train.evaluate import evaluate, pass_at_k
    from rlenv.train.grpo import train
    from rlenv.train.hf_policy import HFPolicy
    from rlenv.train.losses import aggregate_loss, clipped_surrogate, grpo_loss, k3_kl
    from rlenv.train.metrics import read_metrics
    from rlenv.train.plot import plot
    from rlenv.train.policy import Policy, Rollouts, SamplingParams, load_policy
    from rlenv.train.pretrain import pretrain
    from rlenv.train.recipes import RecipeConfig, run_recipe
    from rlenv.train.sampling import informative_groups, soft_overlong_penalty
    from rlenv.train.sft import sft


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rlenv.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
