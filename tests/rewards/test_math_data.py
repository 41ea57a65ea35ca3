"""Optional checks against real data (GSM8K labelled model solutions, MATH-500); skipped when it is absent.

The data path is ``$RLENV_DATA`` or ``../shared/data`` relative to the repository root. Both full sets take
about a second (the fast path decides nearly all of them in-process).
"""

import json
import os
import pathlib

import pytest

from rewards import math_accuracy

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("RLENV_DATA", ROOT.parent / "shared" / "data"))
MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")

needs_data = pytest.mark.skipif(
    not (DATA / "gsm8k_test_model_solutions.jsonl").exists(), reason=f"real data not found under {DATA}"
)


def _jsonl(name: str) -> list[dict]:
    with open(DATA / name) as f:
        return [json.loads(line) for line in f if line.strip()]


def _gsm8k_agreement(limit: int | None) -> float:
    golds = {r["question"]: r["answer"] for r in _jsonl("gsm8k_test.jsonl")}
    completions, answers, labels = [], [], []
    for row in _jsonl("gsm8k_test_model_solutions.jsonl")[:limit]:
        for model in MODELS:
            completions.append(row[model]["solution"])
            answers.append(golds[row["question"]])
            labels.append(bool(row[model]["is_correct"]))
    values = math_accuracy(completions, answer=answers)
    return sum((v == 1.0) == label for v, label in zip(values, labels, strict=True)) / len(labels)


def _math500(limit: int | None) -> tuple[float, float]:
    rows = _jsonl("math500_test.jsonl")[:limit]
    own = math_accuracy([r["solution"] for r in rows], answer=[r["answer"] for r in rows])
    shifted = [rows[(i + len(rows) // 2) % len(rows)]["answer"] for i in range(len(rows))]
    pairs = [(r["solution"], s) for r, s in zip(rows, shifted, strict=True)
             if s.replace(" ", "") != r["answer"].replace(" ", "")]
    other = math_accuracy([c for c, _ in pairs], answer=[s for _, s in pairs])
    return sum(v == 1.0 for v in own) / len(own), sum(v == 0.0 for v in other) / len(other)


@needs_data
def test_gsm8k_labelled_solutions():
    # all 5,276 labelled solutions: about a second
    assert _gsm8k_agreement(limit=None) >= 0.995


@needs_data
def test_math500_accepts_own_and_rejects_other_answers():
    accepted, rejected = _math500(limit=None)
    assert accepted >= 0.995 and rejected >= 0.995
