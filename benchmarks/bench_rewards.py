"""Throughput of the countdown and format rewards against the naive peers, measured in the same run.

Peers (re-implemented here verbatim in logic, minus their debug printing, so nothing is installed):

* countdown: TinyZero's ``verl/utils/reward_score/countdown.py`` — regex extraction of the last
  ``<answer>``, a regex number check, a character whitelist, then ``eval`` with ``__builtins__`` removed.
* format: open-r1's ``format_reward`` — ``re.match(r"^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$",
  re.DOTALL | re.MULTILINE)``.

Inputs: a seeded mix of R1-style countdown completions (3-5 numbers; correct, wrong value, reused / missing
numbers, no tags, invalid syntax) with a few hundred characters of reasoning each. Hostile inputs are left out
of the peer run on purpose: a power tower such as ``44**35**19`` never returns under TinyZero's ``eval``.

Run: ``python benchmarks/bench_rewards.py [--n 20000] [--repeats 5]``. Prints completions/s (median of the
repeats) and the cost ratio ours / peer (< 1 means we are cheaper). Machines are shared: read the ratios.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time

from rewards import countdown_accuracy, think_format


def tinyzero_extract(solution_str: str) -> str | None:
    matches = list(re.finditer(r"<answer>(.*?)</answer>", solution_str))
    return matches[-1].group(1).strip() if matches else None


def tinyzero_validate(equation: str, available: list[int]) -> bool:
    try:
        numbers = [int(n) for n in re.findall(r"\d+", equation)]
        return sorted(numbers) == sorted(available)
    except Exception:  # the peer's own behaviour
        return False


def tinyzero_evaluate(equation: str) -> float | None:
    try:
        if not re.match(r"^[\d+\-*/().\s]+$", equation):
            raise ValueError("Invalid characters in equation.")
        return eval(equation, {"__builtins__": None}, {})  # the peer's unsafe core, on trusted bench inputs
    except Exception:
        return None


def tinyzero_compute_score(solution_str: str, ground_truth: dict, format_score: float = 0.1) -> float:
    equation = tinyzero_extract(solution_str)
    if equation is None:
        return 0.0
    if not tinyzero_validate(equation, ground_truth["numbers"]):
        return format_score
    result = tinyzero_evaluate(equation)
    if result is None:
        return format_score
    return 1.0 if abs(result - ground_truth["target"]) < 1e-5 else format_score


_OPEN_R1_FORMAT = re.compile(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", re.DOTALL | re.MULTILINE)


def open_r1_format(completions: list[str]) -> list[float]:
    return [1.0 if _OPEN_R1_FORMAT.match(c) else 0.0 for c in completions]


def make_inputs(
    n: int, seed: int = 0, open_r1_layout: bool = False
) -> tuple[list[str], list[list[int]], list[int]]:
    rng = random.Random(seed)
    words = ["let", "me", "try", "adding", "the", "two", "largest", "then", "subtract", "the", "rest",
             "maybe", "multiply", "instead", "check", "3 < 5"]  # fmt: skip
    texts, nums_col, targets = [], [], []
    for _ in range(n):
        nums = [rng.randint(1, 99) for _ in range(rng.randint(3, 5))]
        order = nums[:]
        rng.shuffle(order)
        ops = [rng.choice("+-*") for _ in order[1:]]
        equation = str(order[0])
        value = order[0]
        for op, v in zip(ops, order[1:], strict=True):
            equation = f"({equation} {op} {v})"
            value = value + v if op == "+" else value - v if op == "-" else value * v
        kind = rng.randrange(6)
        target = value if kind in (0, 1, 2) else value + rng.randint(1, 9)
        if kind == 3:
            equation = equation.replace(str(order[0]), str(order[-1]), 1)
        if kind == 4:
            equation = f"{equation} ** 1"
        reasoning = " ".join(rng.choice(words) for _ in range(rng.randint(40, 120)))
        # TinyZero's layout (its answer regex does not cross newlines); open-r1's wants newlines inside tags
        body = f"<think>\n{reasoning}\n</think>\n<answer>{equation}</answer>"
        if open_r1_layout:
            body = f"<think>\n{reasoning}\n</think>\n<answer>\n{equation}\n</answer>"
        texts.append(body if kind != 5 else reasoning + " " + equation)
        nums_col.append(nums)
        targets.append(target)
    return texts, nums_col, targets


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="completions per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported")
    args = parser.parse_args()
    texts, nums, targets = make_inputs(args.n)
    truths = [{"numbers": n, "target": t} for n, t in zip(nums, targets, strict=True)]

    ours = countdown_accuracy(texts, nums=nums, target=targets)
    peer = [tinyzero_compute_score(s, g) for s, g in zip(texts, truths, strict=True)]
    agree = sum((o == 1.0) == (p == 1.0) for o, p in zip(ours, peer, strict=True)) / len(texts)

    rows = []
    t_ours = median_seconds(lambda: countdown_accuracy(texts, nums=nums, target=targets), args.repeats)
    t_peer = median_seconds(
        lambda: [tinyzero_compute_score(s, g) for s, g in zip(texts, truths, strict=True)], args.repeats
    )
    rows.append(("countdown_accuracy", "TinyZero eval checker", t_ours, t_peer))
    formatted, _, _ = make_inputs(args.n, open_r1_layout=True)
    assert think_format(formatted) == open_r1_format(formatted), "both format rewards must agree here"
    t_ours = median_seconds(lambda: think_format(formatted), args.repeats)
    t_peer = median_seconds(lambda: open_r1_format(formatted), args.repeats)
    rows.append(("think_format", "open-r1 format_reward", t_ours, t_peer))

    n = len(texts)
    print(f"{n} completions x {args.repeats} repeats (median); TinyZero agrees on correct: {agree:.4f}")
    print(f"{'reward':<20} {'ours /s':>12} {'peer':<24} {'peer /s':>12} {'cost ours/peer':>15}")
    for name, peer_name, ours_s, peer_s in rows:
        ratio = ours_s / peer_s
        print(f"{name:<20} {n / ours_s:>12,.0f} {peer_name:<24} {n / peer_s:>12,.0f} {ratio:>15.2f}")


if __name__ == "__main__":
    main()
