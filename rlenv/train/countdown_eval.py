"""Held-out countdown evaluation and the before/after report of ``rlenv run`` (:mod:`rlenv.train.recipes`).

Key idea: every phase of an experiment is scored on the same ``n`` problems of the environment's
``split="test"`` stream (no training phase draws from it): greedy and sampled accuracy, accuracy on
non-shortcut targets (neither the sum nor the product of all numbers), format rate, mean completion tokens
and tokens spent per solved problem, beside the always-add / always-multiply baselines; the figures become
one Markdown table and the phases' learning curves one PNG.

A *trace audit* says where the step-by-step thinking goes wrong (:func:`audit_traces`): the share of wrong
``a op b=c`` lines per operation, of wrong ``ok`` / ``no`` verdicts and of miscopied targets. Two runs with
the same accuracy can fail for different reasons (sessions 3-5 of docs/recipes-history.md: subtractions in
one, verdicts on near misses in another); the audit tells which skill a budget change should buy.

Left out on purpose: pass@k over several samples per problem (``rlenv eval`` computes it for any env).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from rlenv.train.traces import apply_op, parse_line, search_trace

__all__ = ["audit_traces", "baselines", "evaluate_countdown", "format_audit", "format_search", "format_table",
           "heldout_items", "plot_curves", "search_bucket", "search_buckets", "search_fits_trace"]


def _countdown_env(split: str, env_kwargs: Mapping[str, Any]):
    import gymnasium as gym

    import rlenv  # noqa: F401  (registers the environments)

    return gym.make("rlenv/Countdown-v0", split=split, **env_kwargs).unwrapped


def heldout_items(
    n: int, seed: int, env_kwargs: Mapping[str, Any], split: str = "test"
) -> list[dict[str, Any]]:
    """Items ``0..n-1`` of a countdown split (the test split by default): ``prompt``, ``nums``, ``target``.

    Example:
        >>> items = heldout_items(2, 0, {"template": "r1zero"})
        >>> sorted(items[0])
        ['nums', 'prompt', 'target']
    """
    env = _countdown_env(split, env_kwargs)
    items = []
    for index in range(n):
        prompt, info = env.reset(seed=seed, options={"index": index})
        items.append({"prompt": prompt, "nums": list(info["nums"]), "target": int(info["target"])})
    env.close()
    return items


def baselines(items: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Accuracy of the two shortcut policies: always add / always multiply every number.

    Example:
        >>> baselines([{"nums": [1, 2, 3], "target": 6}, {"nums": [2, 3, 4], "target": 24}])
        {'always_add': 0.5, 'always_multiply': 1.0}
    """
    n = max(1, len(items))
    return {
        "always_add": sum(sum(it["nums"]) == it["target"] for it in items) / n,
        "always_multiply": sum(math.prod(it["nums"]) == it["target"] for it in items) / n,
    }


_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
_AUDIT_CHARS = 16384  # thinking characters audited per completion (model output is bounded work)


def audit_traces(
    texts: Sequence[str], targets: Sequence[int], solved: Sequence[bool] | None = None
) -> dict[str, float]:
    """Where step-by-step countdown thinking goes wrong, over the ``a op b=c`` lines inside ``<think>``.

    Args:
        texts: Completions (the thinking is the text before ``</think>``, or the whole completion without
            one; its last 16,384 characters are audited).
        targets: Each completion's target.
        solved: Whether each completion's answer is right (adds ``audit/solved_wrong_ok``).

    Returns:
        ``audit/lines`` (arithmetic lines per completion); per operation ``audit/wrong_add``, ``_sub``,
        ``_mul``, ``_div`` (share of its lines whose result is wrong) and ``audit/lines_add``...;
        ``audit/checked`` (lines with ``vs T ok|no`` per completion), ``audit/wrong_verdict`` (share of those
        whose verdict disagrees with ``c == T``), ``audit/false_ok`` (share saying ``ok`` for ``c != T``) and
        ``audit/wrong_target`` (share whose restated ``T`` is not the target); with ``solved``,
        ``audit/solved_wrong_ok``: the share of solved completions whose thinking says ``ok`` on a line that
        is wrong (bad arithmetic, or a value that is not the target): the answer is right, its stated
        derivation is not. Shares are 0 without lines.

    Raises:
        ValueError: ``texts`` and ``targets`` (or ``solved``) differ in length.

    Example:
        >>> audit = audit_traces(["<think>\\n49+31=80 [80 42]\\n80-42=39 vs 60 ok\\n</think>"], [60])
        >>> audit["audit/wrong_sub"], audit["audit/false_ok"], audit["audit/wrong_target"]
        (1.0, 1.0, 0.0)
    """
    if len(texts) != len(targets) or (solved is not None and len(solved) != len(texts)):
        raise ValueError(f"{len(texts)} texts, {len(targets)} targets, {len(solved or texts)} solved flags")
    lines = dict.fromkeys(_OPS.values(), 0)
    wrong = dict.fromkeys(_OPS.values(), 0)
    checked = wrong_verdict = false_ok = wrong_target = solved_wrong_ok = 0
    for index, (text, target) in enumerate(zip(texts, targets, strict=True)):
        thinking = text.split("</think>", 1)[0][-_AUDIT_CHARS:]
        bad_ok = False
        for parsed in filter(None, map(parse_line, thinking.splitlines())):
            a, op, b, c, restated, verdict = parsed
            lines[_OPS[op]] += 1
            holds = apply_op(a, op, b) == c
            wrong[_OPS[op]] += not holds
            bad_ok |= verdict == "ok" and not (holds and c == int(target))
            if restated is not None:
                checked += 1
                wrong_verdict += (verdict == "ok") != (c == restated)
                false_ok += verdict == "ok" and c != restated
                wrong_target += restated != int(target)
        solved_wrong_ok += bad_ok and solved is not None and bool(solved[index])
    n = max(1, len(texts))
    audit = {"audit/lines": sum(lines.values()) / n, "audit/checked": checked / n}
    for name in _OPS.values():
        audit[f"audit/lines_{name}"] = lines[name] / n
        audit[f"audit/wrong_{name}"] = wrong[name] / max(1, lines[name])
    for key, count in (
        ("wrong_verdict", wrong_verdict),
        ("false_ok", false_ok),
        ("wrong_target", wrong_target),
    ):
        audit[f"audit/{key}"] = count / max(1, checked)
    if solved is not None:
        audit["audit/solved_wrong_ok"] = solved_wrong_ok / max(1, sum(map(bool, solved)))
    return audit


_SEARCH_BUCKETS = (("1-3", 3), ("4-7", 7), ("8-16", 16))
_SEARCH_FALLBACK = "over 16"
_SEARCH_NAMES = (*(name for name, _ in _SEARCH_BUCKETS), _SEARCH_FALLBACK)


def search_bucket(nums: Sequence[int], target: int) -> str:
    """How long the solver's own search for a problem is, the trace an r1 policy is taught to write.

    Returns:
        "1-3", "4-7" or "8-16" (lines of :func:`rlenv.train.traces.search_trace`), or "over 16" when the
        search needs more lines than a search trace holds (SFT then writes the direct style) or finds none.

    Example:
        >>> search_bucket([49, 31, 42], 60), search_bucket([1, 2, 3], 6)
        ('4-7', '1-3')
    """
    found = search_trace(nums, target)
    if found is None:
        return _SEARCH_FALLBACK
    return next(name for name, top in _SEARCH_BUCKETS if len(found[0]) <= top)


def search_fits_trace(info: Mapping[str, Any]) -> bool:
    """Whether the solver's own search for a countdown item fits in a search trace (at most 16 lines).

    A GRPO prompt filter (``GRPOConfig.prompt_filter``): the r1 policy never solves the other items (SFT
    shows it the direct style for them), so their groups carry no gradient and their rollouts run to the
    length cap.

    Example:
        >>> search_fits_trace({"nums": [49, 31, 42], "target": 60})
        True
        >>> search_fits_trace({"nums": [1, 2], "target": 7})  # no solution at all
        False
    """
    return search_trace(info["nums"], int(info["target"])) is not None


def search_buckets(items: Sequence[Mapping[str, Any]], correct: Sequence[bool]) -> dict[str, float]:
    """Accuracy per :func:`search_bucket`: ``search/<bucket>/n`` and ``search/<bucket>/accuracy``.

    Where a policy fails depends on how far down the solver's search order the solution lies: this separates
    what more training could fix from problems the trace design leaves out ("over 16").

    Example:
        >>> search_buckets([{"nums": [1, 2, 3], "target": 6}], [True])["search/1-3/accuracy"]
        1.0
    """
    if len(items) != len(correct):
        raise ValueError(f"{len(items)} items but {len(correct)} correctness flags")
    counts, right = dict.fromkeys(_SEARCH_NAMES, 0), dict.fromkeys(_SEARCH_NAMES, 0)
    for item, ok in zip(items, correct, strict=True):
        name = search_bucket(item["nums"], int(item["target"]))
        counts[name] += 1
        right[name] += bool(ok)
    out: dict[str, float] = {}
    for name in _SEARCH_NAMES:
        out[f"search/{name}/n"] = float(counts[name])
        out[f"search/{name}/accuracy"] = right[name] / max(1, counts[name])
    return out


def format_search(rows: Mapping[str, Mapping[str, float]]) -> str:
    """One line per phase: greedy accuracy per :func:`search_bucket` (problems in brackets); "" without.

    Example:
        >>> row = {"greedy/search/1-3/n": 2.0, "greedy/search/1-3/accuracy": 0.5}
        >>> print(format_search({"sft": row}).splitlines()[1])
        - after SFT: 1-3 lines 50% (2)
    """
    out = []
    for phase, row in rows.items():
        cells = [
            f"{name} lines {row[f'greedy/search/{name}/accuracy']:.0%} ({row[f'greedy/search/{name}/n']:.0f})"
            for name in _SEARCH_NAMES
            if row.get(f"greedy/search/{name}/n")
        ]
        if cells:
            out.append(f"- {_PHASE_NAMES.get(phase, phase)}: {', '.join(cells)}")
    if not out:
        return ""
    return ("greedy accuracy by the length of the solver's own search for the problem (problems):\n"
            + "\n".join(out))


def format_audit(rows: Mapping[str, Mapping[str, float]]) -> str:
    """One line per phase with its greedy trace-audit figures (see :func:`audit_traces`); "" without lines.

    Example:
        >>> keys = ("lines", "lines_add", "wrong_add", "lines_sub", "wrong_sub", "checked", "wrong_verdict",
        ...         "false_ok", "wrong_target")
        >>> row = dict(zip([f"greedy/audit/{k}" for k in keys], [6.0, 3.0, 0.07, 2.0, 0.5, 3, 0.1, 0.08, 0.02]))
        >>> print(format_audit({"sft": row}).splitlines()[1])
        - after SFT: 6.0 lines (wrong: + 7%, - 50%, * -, / -); 3.0 checks (wrong verdict 10%, ok for a miss 8%, wrong target 2%)
    """  # noqa: E501
    out = []
    for phase, row in rows.items():
        a = {k.removeprefix("greedy/audit/"): v for k, v in row.items() if k.startswith("greedy/audit/")}
        if not a.get("lines"):
            continue
        ops = ", ".join(
            f"{op} {a[f'wrong_{n}']:.0%}" if a.get(f"lines_{n}") else f"{op} -" for op, n in _OPS.items()
        )
        checks = (
            f"wrong verdict {a['wrong_verdict']:.0%}, ok for a miss {a['false_ok']:.0%}, "
            f"wrong target {a['wrong_target']:.0%}"
            if a.get("checked")
            else "none"
        )
        lucky = a.get("solved_wrong_ok")
        unfaithful = "" if lucky is None else f"; solved with a wrong ok line {lucky:.0%}"
        out.append(
            f"- {_PHASE_NAMES.get(phase, phase)}: {a['lines']:.1f} lines (wrong: {ops}); "
            f"{a.get('checked', 0.0):.1f} checks ({checks}){unfaithful}"
        )
    if not out:
        return ""
    return "trace audit, greedy, per problem (thinking lines `a op b=c [vs T ok|no]`):\n" + "\n".join(out)


def evaluate_countdown(policy: Any, items: Sequence[Mapping[str, Any]], *, temperature: float,
                       max_new_tokens: int, seed: int = 0, batch_size: int = 64, desc: str = "eval",
                       shard: bool = False) -> dict[str, float]:
    """Accuracy, non-shortcut accuracy, format rate and token costs of one sample per held-out item.

    Args:
        policy: A :class:`rlenv.train.policy.Policy`.
        items: Rows with ``prompt``, ``nums`` and ``target`` (see :func:`heldout_items`).
        temperature: 0 for greedy decoding.
        max_new_tokens: Completion length cap.
        seed: Sampling seed.
        batch_size: Prompts per generate call.
        desc: Progress-bar label.
        shard: Inside a data-parallel process group, split the batches over the ranks (every rank must
            call; every rank gets the figures of all items). Batch ``k`` is generated with seed ``seed + k
            * batch_size`` wherever it runs, so the figures are one process's up to floating-point order.

    Returns:
        ``accuracy``, ``nonshortcut_accuracy``, ``format_rate``, ``mean_tokens``, ``tokens_per_solved``
        (all completion tokens divided by the problems solved; inf when none), ``n``, the
        :func:`audit_traces` figures of the completions and the accuracy per :func:`search_bucket`.

    Example:
        >>> from rlenv.train.policy import load_policy
        >>> items = heldout_items(2, seed=0, env_kwargs={"template": "compact"})
        >>> figures = evaluate_countdown(load_policy("tiny"), items, temperature=0.0, max_new_tokens=4)
        >>> figures["accuracy"], figures["mean_tokens"]
        (0.0, 4.0)
    """
    from tqdm.auto import tqdm

    from rlenv.train.distributed import all_gather_objects, rank_and_world

    rank, world = rank_and_world() if shard else (0, 1)
    starts = range(0, len(items), batch_size)[rank::world]
    mine = [
        (start, _generate_and_score(policy, items[start : start + batch_size], temperature, max_new_tokens,
                                    seed + start))
        for start in tqdm(starts, desc=desc, leave=False, disable=rank != 0)
    ]
    batches = sorted(b for part in all_gather_objects(mine) for b in part) if world > 1 else mine
    correct, formatted, tokens, shortcut, texts = (
        [v for _, batch in batches for v in batch[k]] for k in range(5)
    )
    n = len(items)
    hard = [c for c, s in zip(correct, shortcut, strict=True) if not s]
    solved = sum(correct)
    return {
        "accuracy": solved / n,
        "nonshortcut_accuracy": sum(hard) / max(1, len(hard)),
        "format_rate": sum(formatted) / n,
        "mean_tokens": sum(tokens) / n,
        "tokens_per_solved": sum(tokens) / solved if solved else float("inf"),
        "n": float(n),
    } | audit_traces(texts, [it["target"] for it in items], correct) | search_buckets(items, correct)


def _generate_and_score(policy: Any, batch: Sequence[Mapping[str, Any]], temperature: float,
                        max_new_tokens: int, seed: int) -> tuple[list, list, list, list, list]:
    """One sample per item: (correct, formatted, completion tokens, is-shortcut, text) lists."""
    import rewards
    from rewards.format import think_format
    from rlenv.tasks.countdown import is_shortcut
    from rlenv.train.policy import SamplingParams

    prompts = [it["prompt"] for it in batch]
    out = policy.generate(prompts, 1, SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature,
                                                     seed=seed))
    cols = {"nums": [it["nums"] for it in batch], "target": [it["target"] for it in batch]}
    correct = [v == 1.0 for v in rewards.countdown_accuracy(out.texts, prompts=prompts, **cols)]
    formatted = [v == 1.0 for v in think_format(out.texts, prompts=prompts)]
    tokens = [len(ids) for ids in out.completion_ids]
    shortcut = [is_shortcut(it["nums"], it["target"]) for it in batch]
    return correct, formatted, tokens, shortcut, list(out.texts)


# ---------------------------------------------------------------------------------------------------------
# The before/after table and the learning curves

_COLUMNS = (
    ("greedy acc", "greedy/accuracy", "pct"),
    ("sampled acc", "sampled/accuracy", "pct"),
    ("non-shortcut (greedy)", "greedy/nonshortcut_accuracy", "pct"),
    ("format", "greedy/format_rate", "pct"),
    ("mean tokens", "greedy/mean_tokens", "num"),
    ("tokens/solved", "greedy/tokens_per_solved", "num"),
    ("wall", "wall_s", "time"),
)
_PHASE_NAMES = {"base": "base (pretrained)", "sft": "after SFT", "grpo": "after GRPO"}


def _cell(value: float, kind: str) -> str:
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "time":
        return f"{value / 60:.1f} min"
    return "-" if math.isinf(value) else f"{value:.0f}"


def format_table(rows: Mapping[str, Mapping[str, float]], baseline: Mapping[str, float]) -> str:
    """The before/after table as Markdown.

    Example:
        >>> row = {"greedy/accuracy": 0.5, "sampled/accuracy": 0.4, "greedy/nonshortcut_accuracy": 0.45,
        ...        "greedy/format_rate": 1.0, "greedy/mean_tokens": 60.0, "greedy/tokens_per_solved": 120.0,
        ...        "wall_s": 90.0}
        >>> print(format_table({"sft": row}, {"always_add": 0.01, "always_multiply": 0.01}).splitlines()[2])
        | after SFT | 50.0% | 40.0% | 45.0% | 100.0% | 60 | 120 | 1.5 min |
    """
    header = "| phase | " + " | ".join(name for name, _, _ in _COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(_COLUMNS) + 1)]
    for phase, row in rows.items():
        cells = " | ".join(_cell(row[key], kind) for _, key, kind in _COLUMNS)
        lines.append(f"| {_PHASE_NAMES.get(phase, phase)} | {cells} |")
    train = sum(row["wall_s"] for row in rows.values())
    cpu = sum(row.get("cpu_s", 0.0) for row in rows.values())
    evaluation = sum(row.get("eval_s", 0.0) for row in rows.values())
    lines.append(f"\nbaselines on the same items: always add {baseline['always_add']:.1%}, always multiply "
                 f"{baseline['always_multiply']:.1%}; wall time: training {train / 60:.1f} min "
                 f"(CPU time {cpu / 60:.1f} min, ranks included), evaluation {evaluation / 60:.1f} min")
    return "\n".join(lines)


_CURVE_KEYS = {
    "pretrain": ("loss/lm",),
    "sft": ("loss/lm",),
    "grpo": ("rollout/accuracy", "rollout/format_rate", "reward/total"),
}


def plot_curves(run_dir: str, phases: Sequence[str]) -> str | None:
    """Writes ``curves.png``: one panel per phase with its main metrics against the step.

    Returns:
        The PNG path, or None when no phase logged metrics.

    Example:
        >>> plot_curves("/nonexistent-run", ["grpo"]) is None
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlenv.train.metrics import read_metrics

    logged = {p: read_metrics(os.path.join(run_dir, p)) for p in phases}
    logged = {p: m for p, m in logged.items() if m}
    if not logged:
        return None
    fig, axes = plt.subplots(1, len(logged), figsize=(5 * len(logged), 3.5), squeeze=False)
    for ax, (phase, records) in zip(axes[0], logged.items(), strict=True):
        for key in _CURVE_KEYS.get(phase, ()):
            points = [(r.get("step", i), r[key]) for i, r in enumerate(records) if key in r]
            if points:
                ax.plot(*zip(*points, strict=True), label=key)
        ax.set_title(phase)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(run_dir, "curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
