"""``rlenv plot RUN_DIR``: learning curves of a run as PNG files (matplotlib, Agg backend, no display).

Key idea: metrics.jsonl holds namespaced keys; one figure per namespace (``reward``, ``loss``, ``policy``,
``rollout``, ``perf``, ...), one panel per key, step on the x axis, optionally smoothed with a moving average.

Left out on purpose: comparing several runs in one figure, interactive plots (use TensorBoard).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

from rlenv.train.config import PlotConfig
from rlenv.train.metrics import read_metrics

__all__ = ["PlotConfig", "plot", "series"]


def series(records: list[dict], smooth: int = 1) -> dict[str, tuple[list[int], list[float]]]:
    """Per metric key, its (steps, values) with non-finite values dropped, moving-averaged over ``smooth``.

    Example:
        >>> series([{"step": 1, "a/x": 1.0}, {"step": 2, "a/x": 3.0}], smooth=2)
        {'a/x': ([1, 2], [1.0, 2.0])}
    """
    raw: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for record in records:
        for key, value in record.items():
            if key == "step" or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            raw[key][0].append(int(record["step"]))
            raw[key][1].append(float(value))
    out = {}
    for key, (steps, values) in raw.items():
        smoothed = [sum(values[max(0, i - smooth + 1) : i + 1]) / len(values[max(0, i - smooth + 1) : i + 1])
                    for i in range(len(values))]
        out[key] = (steps, smoothed)
    return out


def _selected(key: str, wanted: tuple[str, ...]) -> bool:
    return not wanted or any(key == w or key.startswith(w.rstrip("/") + "/") for w in wanted)


def plot(config: PlotConfig) -> list[str]:
    """Writes one PNG per metric namespace and returns their paths.

    Args:
        config: The :class:`PlotConfig`.

    Returns:
        Paths of the written PNG files.

    Raises:
        ValueError: If the run directory has no metrics.jsonl records.

    Example:
        >>> plot(PlotConfig(run_dir="runs/grpo"))  # doctest: +SKIP
        ['runs/grpo/plots/reward.png', ...]
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(config.run_dir)
    if not records:
        raise ValueError(f"{config.run_dir!r} has no metrics.jsonl records; is it a run directory?")
    data = {k: v for k, v in series(records, config.smooth).items() if _selected(k, config.keys)}
    groups: dict[str, list[str]] = defaultdict(list)
    for key in sorted(data):
        groups[key.split("/")[0] if "/" in key else "misc"].append(key)
    out_dir = config.output or os.path.join(config.run_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for group, keys in groups.items():
        cols = min(3, len(keys))
        rows = math.ceil(len(keys) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
        for ax, key in zip(axes.flat, keys, strict=False):
            steps, values = data[key]
            ax.plot(steps, values, lw=1.5)
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(keys) :]:
            ax.axis("off")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{group}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    print(f"wrote {len(paths)} plots to {out_dir}")
    return paths
