"""Countdown item generation: rlenv vs reasoning-gym, measured side by side in one run.

Prints, for the same task settings (reasoning-gym's defaults: 4-6 numbers in 1..100, targets 100..999):

* items/s of ``rlenv.tasks.countdown.generate`` and of reasoning-gym's ``countdown`` data set (median of
  ``--repeats`` runs each, and the ratio);
* the share of "shortcut" targets (the sum or the product of all numbers): ours, the naive random-fold
  construction (``naive_item``), and reasoning-gym's;
* how many items two data sets of seeds 42 and 43 share (ours vs reasoning-gym's ``Random(seed + idx)``).

Usage::

    python benchmarks/bench_envs.py                # ~30 s
    python benchmarks/bench_envs.py --peer-items 30 --our-items 2000

Machines are shared and noisy: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from rlenv.tasks import countdown as cd

PEER_SETTINGS = {"min_numbers": 4, "max_numbers": 6, "min_value": 1, "max_value": 100, "min_target": 100,
                 "max_target": 999}


def _rate(fn, n: int, repeats: int) -> float:
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(n, r)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def _peer_items(n: int, seed: int) -> list[dict]:
    import reasoning_gym

    ds = reasoning_gym.create_dataset("countdown", size=n, seed=seed, **PEER_SETTINGS)
    return [{"nums": ds[i]["metadata"]["numbers"], "target": ds[i]["metadata"]["target"]} for i in range(n)]


def _shortcut(items: list[dict]) -> tuple[float, float]:
    n = len(items)
    return (sum(it["target"] == sum(it["nums"]) for it in items) / n,
            sum(it["target"] == math.prod(it["nums"]) for it in items) / n)


def _key(item: dict) -> tuple:
    return tuple(item["nums"]), item["target"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--our-items", type=int, default=5000, help="items per timing run, ours")
    parser.add_argument("--peer-items", type=int, default=60, help="items per timing run, reasoning-gym")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs per generator (median reported)")
    args = parser.parse_args()

    config = cd.CountdownConfig(**PEER_SETTINGS)
    ours = _rate(lambda n, r: cd.generate(n, seed=r, config=config), args.our_items, args.repeats)
    ours_default = _rate(lambda n, r: cd.generate(n, seed=r), args.our_items, args.repeats)
    try:
        peer = _rate(_peer_items, args.peer_items, args.repeats)
    except ImportError:
        peer = math.nan
        print("reasoning-gym is not installed (pip install reasoning-gym): peer columns are nan")

    print(f"\n## countdown generation, items/s (median of {args.repeats} runs)")
    print("| generator | settings | items/s |\n|---|---|---|")
    print(f"| reasoning-gym countdown | 4-6 numbers, targets 100-999 | {peer:,.0f} |")
    print(f"| rlenv countdown | 4-6 numbers, targets 100-999 | {ours:,.0f} |")
    print(f"| rlenv countdown | default (3-4 numbers, targets 10-100) | {ours_default:,.0f} |")
    print(f"ratio rlenv / reasoning-gym (same settings): {ours / peer:,.0f}x")

    n_short, level1 = 3000, cd.CountdownConfig.for_difficulty(1)
    rows = [("rlenv (default)", cd.generate(n_short, seed=0)),
            ("rlenv, difficulty 1 (3 numbers)", cd.generate(n_short, seed=0, config=level1)),
            ("naive fold, default settings", [cd.naive_item(i) for i in range(n_short)]),
            ("naive fold, difficulty 1", [cd.naive_item(i, config=level1) for i in range(n_short)]),
            ("rlenv, reasoning-gym settings", cd.generate(n_short, seed=0, config=config))]
    print("\n## shortcut targets (sum / product of all numbers)")
    print("| generator | items | sum | product |\n|---|---|---|---|")
    for name, items in rows:
        s, p = _shortcut(items)
        print(f"| {name} | {len(items)} | {s:.1%} | {p:.1%} |")
    if not math.isnan(peer):
        s, p = _shortcut(_peer_items(200, 0))
        print(f"| reasoning-gym | 200 | {s:.1%} | {p:.1%} |")

    n_overlap = args.peer_items
    a, b = {_key(x) for x in cd.generate(1000, seed=42)}, {_key(x) for x in cd.generate(1000, seed=43)}
    print("\n## items shared by the data sets of seeds 42 and 43")
    print(f"rlenv: {len(a & b)} of 1000")
    if not math.isnan(peer):
        pa = [_key(x) for x in _peer_items(n_overlap, 42)]
        pb = {_key(x) for x in _peer_items(n_overlap, 43)}
        print(f"reasoning-gym: {sum(k in pb for k in pa)} of {n_overlap}")


if __name__ == "__main__":
    main()
