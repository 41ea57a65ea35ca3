"""HumanEval in the sandbox: canonical solutions pass; the same programs with `return None` bodies fail.

Reads ``humaneval.jsonl.gz`` from ``$RLENV_DATA`` or ``../shared/data`` (skipped when absent). All 164
problems, twice (canonical and stubbed), take a few seconds on 2 cores.
"""

import ast
import gzip
import json
import os
import pathlib

import pytest

from rewards.code import LocalSandbox, make_code_reward

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("RLENV_DATA", ROOT.parent / "shared" / "data")) / "humaneval.jsonl.gz"

pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"HumanEval not found at {DATA}")


def _rows():
    with gzip.open(DATA, "rt") as f:
        return [json.loads(line) for line in f]


def _stubbed(row) -> str:
    """The canonical program with the entry point's body replaced by ``return None``."""
    tree = ast.parse(row["prompt"] + row["canonical_solution"])
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == row["entry_point"]:
            node.body = [ast.Return(ast.Constant(None))]
    return ast.unparse(tree)


def _score(rows, programs):
    with LocalSandbox() as box:
        reward = make_code_reward("binary", backend=box)
        completions = [f"<think>solve it</think>\n```python\n{p}\n```" for p in programs]
        return reward.explain_all(
            completions, test=[r["test"] for r in rows], entry_point=[r["entry_point"] for r in rows]
        )


def _check(rows):
    canonical = _score(rows, [r["prompt"] + r["canonical_solution"] for r in rows])
    failed = {r["task_id"]: res.detail for r, res in zip(rows, canonical, strict=True) if res.value != 1.0}
    assert failed == {}
    stubbed = _score(rows, [_stubbed(r) for r in rows])
    passed = [r["task_id"] for r, res in zip(rows, stubbed, strict=True) if res.value != 0.0]
    assert passed == []


def test_humaneval_all_164():
    rows = _rows()
    assert len(rows) == 164
    _check(rows)
