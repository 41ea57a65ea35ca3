"""Per-step metrics: JSONL always, TensorBoard when installed, and the summaries the trainer logs.

Key idea: one flat dict of namespaced keys per step (``reward/<name>``, ``loss/policy``, ``loss/kl``,
``policy/clip_high``, ``rollout/completion_len``, ``perf/tokens_per_s``, ``moe/load_cv``, ...), appended as
one JSON line to ``RUN_DIR/metrics.jsonl`` so a run can be watched with ``tail -f`` and plotted with
``rlenv plot``. On resume, lines past the resumed step are dropped so the file stays one trajectory.

Left out on purpose: wandb / mlflow (a JSONL file is easy to ship anywhere).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["MetricsLogger", "expert_load_stats", "read_metrics", "summarize"]


def summarize(prefix: str, values: Sequence[float]) -> dict[str, float]:
    """Mean / std / min / max of finite values under ``prefix/...`` (empty when none are finite).

    Example:
        >>> summarize("adv", [1.0, -1.0])
        {'adv/mean': 0.0, 'adv/std': 1.0, 'adv/min': -1.0, 'adv/max': 1.0}
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {}
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite))
    out = {"mean": mean, "std": std, "min": min(finite), "max": max(finite)}
    return {f"{prefix}/{k}": v for k, v in out.items()}


def expert_load_stats(routing: Sequence[torch.Tensor], num_experts: int) -> dict[str, float]:
    """Expert-load balance of rollouts: per MoE layer, tokens per expert; reports the coefficient of
    variation (std / mean, 0 = perfectly balanced) and max / mean load, averaged over layers.

    Args:
        routing: Per row, (MoE layers, tokens, top_k) expert ids (-1 entries are ignored).
        num_experts: Routed experts per layer.

    Returns:
        ``{"moe/load_cv": ..., "moe/load_max_over_mean": ...}`` or ``{}`` without routing.

    Example:
        >>> expert_load_stats([torch.tensor([[[0], [1], [-1]]])], 2)
        {'moe/load_cv': 0.0, 'moe/load_max_over_mean': 1.0}
    """
    if not routing or num_experts <= 0:
        return {}
    layers = routing[0].size(0)
    cvs, peaks = [], []
    for layer in range(layers):
        ids = torch.cat([row[layer].reshape(-1) for row in routing]).long().cpu()  # (tokens * k,)
        load = torch.bincount(ids[ids >= 0], minlength=num_experts).float()  # (E,)
        mean = load.mean().clamp(min=1e-9)
        cvs.append(float(load.std(unbiased=False) / mean))
        peaks.append(float(load.max() / mean))
    return {"moe/load_cv": sum(cvs) / layers, "moe/load_max_over_mean": sum(peaks) / layers}


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
    """All records of ``RUN_DIR/metrics.jsonl`` (skipping torn last lines)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class MetricsLogger:
    """Writes one JSON line per logged step (and TensorBoard scalars when asked and installed).

    Args:
        run_dir: The run directory.
        enabled: False on non-main data-parallel ranks (nothing is written).
        tensorboard: Also write TensorBoard events (silently off when tensorboard is not installed).
        resume_step: When resuming, records with ``step > resume_step`` are dropped first.
    """

    def __init__(
        self, run_dir: str, *, enabled: bool = True, tensorboard: bool = False, resume_step: int | None = None
    ) -> None:
        self.path = os.path.join(run_dir, "metrics.jsonl")
        self.enabled = enabled
        self.last: dict[str, float] = {}
        self.writer = None
        if not enabled:
            return
        os.makedirs(run_dir, exist_ok=True)
        if resume_step is None:
            open(self.path, "w").close()
        else:
            kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step]
            with open(self.path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(os.path.join(run_dir, "tensorboard"))
            except ImportError:
                self.writer = None

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Appends the metrics of ``step``."""
        clean = {k: float(v) for k, v in values.items() if v is not None}
        self.last.update(clean)
        if not self.enabled:
            return
        record = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in clean.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in clean.items():
                if math.isfinite(value):
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
