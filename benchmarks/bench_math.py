"""Benchmark: ``rewards.math_accuracy`` vs Math-Verify (as TRL's ``accuracy_reward`` calls it), same run.

(a) GSM8K: the 5,276 labelled model solutions (gsm8k_test_model_solutions.jsonl, gold from gsm8k_test.jsonl):
    agreement with their ``is_correct`` labels.
(b) MATH-500: every ``solution`` against its own ``answer`` (accepted) and against a different problem's
    answer (rejected).
(c) Throughput on the same pairs, single process, one call per sample: rewards/s, p50 / p99 latency.
(d) The hand-labelled R1-style completions of tests/rewards/test_math_graded.py: agreement with the labels.

Math-Verify is given the gold wrapped in ``$…$`` (its best case) and, for comparison, the raw dataset gold.

Usage::

    python benchmarks/bench_math.py [--limit N] [--dump disagreements.jsonl] [--skip-peer]

Data path: ``$RLENV_DATA`` or ``../shared/data`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewards.math import extract_gold, math_accuracy  # noqa: E402

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def data_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("RLENV_DATA", ROOT.parent / "shared" / "data"))


def load_jsonl(path: pathlib.Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k_pairs(d: pathlib.Path, limit: int | None) -> list[dict]:
    golds = {r["question"]: r["answer"] for r in load_jsonl(d / "gsm8k_test.jsonl")}
    pairs = []
    for row in load_jsonl(d / "gsm8k_test_model_solutions.jsonl")[:limit]:
        gold = golds[row["question"]]
        for model in MODELS:
            sol = row[model]
            pairs.append({"completion": sol["solution"], "gold": gold, "label": bool(sol["is_correct"]),
                          "model": model})
    return pairs


def math500_pairs(d: pathlib.Path, limit: int | None) -> tuple[list[dict], list[dict]]:
    rows = load_jsonl(d / "math500_test.jsonl")[:limit]
    own = [{"completion": r["solution"], "gold": r["answer"], "label": True} for r in rows]
    other = []
    n = len(rows)
    for i, r in enumerate(rows):
        for k in range(n // 2, n):  # the first different answer half the set away
            j = (i + k) % n
            if rows[j]["answer"].replace(" ", "") != r["answer"].replace(" ", ""):
                other.append({"completion": r["solution"], "gold": rows[j]["answer"], "label": False})
                break
    return own, other


def graded_pairs() -> list[dict]:
    """The hand-labelled R1-style completions of tests/rewards/test_math_graded.py."""
    import importlib.util

    path = ROOT / "tests" / "rewards" / "test_math_graded.py"
    spec = importlib.util.spec_from_file_location("graded", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [{"completion": c, "gold": g, "label": label == 1.0} for g, c, label in module.CASES]


def run_ours(pairs: list[dict]) -> tuple[list[float | None], list[float]]:
    values, latencies = [], []
    for p in pairs:
        t = time.perf_counter()
        values.append(math_accuracy([p["completion"]], answer=[p["gold"]])[0])
        latencies.append(time.perf_counter() - t)
    return values, latencies


def mv_gold(p: dict, wrapped: bool) -> str:
    gold = extract_gold(p["gold"]) if wrapped else p["gold"]
    return f"${gold}$" if wrapped else gold


def run_peer(pairs: list[dict], wrapped: bool) -> tuple[list[float | None], list[float]]:
    from trl.rewards import accuracy_reward

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    values, latencies = [], []
    for p in pairs:
        t = time.perf_counter()
        completion = [[{"role": "assistant", "content": p["completion"]}]]
        try:
            values.append(accuracy_reward(completion, [mv_gold(p, wrapped)])[0])
        except Exception:  # Math-Verify raises on some inputs; count as a wrong reward
            values.append(0.0)
        latencies.append(time.perf_counter() - t)
    return values, latencies


def agreement(values: list[float | None], pairs: list[dict]) -> float:
    ok = sum(1 for v, p in zip(values, pairs, strict=True) if (v == 1.0) == p["label"])
    return ok / len(pairs)


def pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="rows per data set (default: all)")
    ap.add_argument("--dump", type=str, default=None, help="write our disagreements to this JSONL file")
    ap.add_argument("--skip-peer", action="store_true", help="do not run Math-Verify")
    args = ap.parse_args()
    d = data_dir()
    if not (d / "gsm8k_test_model_solutions.jsonl").exists():
        sys.exit(f"data not found under {d} (set RLENV_DATA)")
    sets = {"GSM8K labelled (agree)": gsm8k_pairs(d, args.limit)}
    own, other = math500_pairs(d, args.limit)
    sets["MATH-500 own answer (accept)"] = own
    sets["MATH-500 other answer (reject)"] = other
    sets["hand-labelled R1-style (agree)"] = graded_pairs()

    math_accuracy(["\\boxed{\\sqrt{2}}"], answer=["\\sqrt{2}"])  # start the worker pool outside the timing
    rows, all_ours, all_peer, dump = [], [], [], []
    for name, pairs in sets.items():
        timed = not name.startswith("hand-labelled")  # throughput is measured on the data-set pairs
        ours, lat_ours = run_ours(pairs)
        all_ours += lat_ours if timed else []
        row = [name, len(pairs), agreement(ours, pairs)]
        if not args.skip_peer:
            peer_w, lat_peer = run_peer(pairs, wrapped=True)
            peer_raw, _ = run_peer(pairs, wrapped=False)
            all_peer += lat_peer if timed else []
            row += [agreement(peer_w, pairs), agreement(peer_raw, pairs)]
        rows.append(row)
        for v, p in zip(ours, pairs, strict=True):
            if (v == 1.0) != p["label"]:
                dump.append({"set": name, "ours": v, **p})

    print(f"\n{'set':34s} {'n':>6s} {'ours':>8s} {'MV $gold$':>10s} {'MV raw':>8s}")
    for row in rows:
        peer = f" {pct(row[3]):>10s} {pct(row[4]):>8s}" if len(row) > 3 else ""
        print(f"{row[0]:34s} {row[1]:6d} {pct(row[2]):>8s}{peer}")

    def lat(xs: list[float]) -> str:
        q = statistics.quantiles(xs, n=100)
        return f"{len(xs) / sum(xs):9.0f}/s  p50 {1e3 * q[49]:7.3f} ms  p99 {1e3 * q[98]:8.3f} ms"

    print(f"\nthroughput on the {len(all_ours)} GSM8K + MATH-500 pairs (single process, one call per sample)")
    print(f"  ours:        {lat(all_ours)}")
    if all_peer:
        print(f"  Math-Verify: {lat(all_peer)}")
        print(f"  ratio (ours / Math-Verify rewards per second): {sum(all_peer) / sum(all_ours):.1f}x")
    print(f"\nour disagreements: {len(dump)}")
    if args.dump:
        with open(args.dump, "w") as f:
            for item in dump:
                f.write(json.dumps(item) + "\n")
        print(f"written to {args.dump}")


if __name__ == "__main__":
    main()
