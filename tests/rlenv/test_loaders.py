"""Offline loaders on small files the tests write, a datasets.Dataset object, and envs over file sources."""

import gzip
import json
import os
from pathlib import Path

import gymnasium as gym
import pytest

from rlenv.tasks import loaders

GSM8K = [
    {"question": "Tom has 3 apples and buys 2. How many?", "answer": "3 + 2 = <<3+2=5>>5\n#### 5"},
    {"question": "A car costs $1,200 and a bike $300. Total?", "answer": "1200 + 300 = 1500\n#### 1,500"},
]
MATH = [
    {"problem": "Half of 1?", "solution": "It is $\\boxed{\\frac{1}{2}}$.", "level": "Level 1"},
    {"problem": "What is 2+2?", "solution": "4", "answer": "4"},
]
HUMANEVAL = [
    {
        "task_id": "HumanEval/0",
        "prompt": 'def add(a, b):\n    """Add a and b."""\n',
        "canonical_solution": "    return a + b\n",
        "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    }
]
MBPP = [
    {
        "task_id": 11,
        "text": "Write a function to remove the first and last occurrence of a char.",
        "code": "",
        "test_setup_code": "",
        "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
    }
]


def _write_jsonl(path: Path, rows, gz=False):
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_gsm8k_and_math_loaders(tmp_path):
    rows = loaders.load_gsm8k(_write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K))
    assert [r["answer"] for r in rows] == ["5", "1500"] and rows[0]["problem"] == GSM8K[0]["question"]
    math_rows = loaders.load_math(_write_jsonl(tmp_path / "math.jsonl.gz", MATH, gz=True))
    assert [r["answer"] for r in math_rows] == ["\\frac{1}{2}", "4"] and math_rows[0]["level"] == "Level 1"
    json_path = tmp_path / "math.json"
    json_path.write_text(json.dumps(MATH))
    assert loaders.load_math(json_path) == math_rows


def test_plain_jsonl_with_column_mapping(tmp_path):
    path = _write_jsonl(tmp_path / "custom.jsonl", [{"q": "3*3?", "final": 9}, {"q": "1-1?", "final": 0}])
    rows = loaders.load_jsonl(path, {"problem": "q", "answer": "final"})
    assert rows == [{"problem": "3*3?", "answer": "9"}, {"problem": "1-1?", "answer": "0"}]
    with pytest.raises(ValueError, match="lacks column"):
        loaders.load_jsonl(path)


def test_code_loaders(tmp_path):
    he = loaders.load_humaneval(_write_jsonl(tmp_path / "he.jsonl.gz", HUMANEVAL, gz=True))[0]
    assert he["entry_point"] == "add" and "check(candidate)" in he["test"] and "def add" in he["problem"]
    mbpp = loaders.load_mbpp(_write_jsonl(tmp_path / "mbpp.jsonl", MBPP))[0]
    assert (
        mbpp["entry_point"] == "remove_Occ"
        and len(mbpp["tests"]) == 2
        and MBPP[0]["test_list"][0] in mbpp["problem"]
    )


def test_datasets_object_source():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(GSM8K)
    assert [r["answer"] for r in loaders.load_gsm8k(ds)] == ["5", "1500"]
    env = gym.make("rlenv/Math-v0", source="gsm8k", data=ds)
    assert {env.reset(seed=0, options={"index": i})[1]["answer"] for i in range(2)} == {"5", "1500"}


def test_math_env_over_a_file_replays_and_covers_every_row(tmp_path):
    path = _write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K * 3)
    env = gym.make("rlenv/Math-v0", source="gsm8k", data=str(path))
    served = [env.reset(seed=1, options={"index": i})[1]["row"] for i in range(6)]
    assert sorted(served) == list(range(6))  # one epoch visits every row once
    assert env.reset(seed=1, options={"index": 4})[1]["row"] == served[4]
    _, info = env.reset(seed=1, options={"index": 0})
    _, reward, *_ = env.step(f"<think>.</think><answer>{info['answer']}</answer>")
    assert reward == 1.0


def test_code_env_over_humaneval_and_mbpp_files(tmp_path):
    he = gym.make("rlenv/Code-v0", source="humaneval", data=_write_jsonl(tmp_path / "he.jsonl", HUMANEVAL))
    _, info = he.reset(seed=0)
    assert info["entry_point"] == "add" and he.unwrapped.columns(info).keys() == {"test", "entry_point"}
    mbpp = gym.make("rlenv/Code-v0", source="mbpp", data=_write_jsonl(tmp_path / "m.jsonl", MBPP))
    assert mbpp.unwrapped.columns(mbpp.reset(seed=0)[1]).keys() == {"tests", "entry_point"}


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="no such data file"):
        loaders.load_gsm8k(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="####"):
        loaders.load_gsm8k([{"question": "q", "answer": "no marker"}])
    with pytest.raises(ValueError, match="boxed"):
        loaders.load_math([{"problem": "p", "solution": "no box"}])
    with pytest.raises(TypeError):
        loaders.load_records(42)
    with pytest.raises(ValueError, match="data="):
        gym.make("rlenv/Math-v0", source="gsm8k")
    with pytest.raises(ValueError, match="source"):
        gym.make("rlenv/Math-v0", source="aime")


@pytest.mark.parametrize(("load", "rows", "match"), [
    (loaders.load_gsm8k, [{"question": "q", "answer": None}], "'answer' must be a non-empty string"),
    (loaders.load_gsm8k, [{"question": "q", "answer": "x\n####  "}], "empty '#### answer'"),
    (loaders.load_jsonl, [{"problem": "p", "answer": None}], "answer must be a non-empty"),
    (loaders.load_jsonl, [{"problem": None, "answer": 3}], "'problem' must be a non-empty string"),
    (loaders.load_humaneval, [{"prompt": None, "test": "t", "entry_point": "f"}], "'prompt' must be"),
])
def test_malformed_rows_are_refused_by_row(load, rows, match):
    # a missing answer must not become the gold string "None" (a model answering None would score)
    with pytest.raises(ValueError, match=match):
        load(rows)


def test_a_bad_json_line_is_named_and_a_blank_answer_falls_back_to_the_box(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\n{not json\n')
    with pytest.raises(ValueError, match=r"rows\.jsonl line 2 is not JSON"):
        loaders.load_gsm8k(path)
    row = {"problem": "p", "answer": " ", "solution": "so \\boxed{3}"}
    assert loaders.load_math([row])[0]["answer"] == "3"


def test_real_gsm8k_when_available():
    root = Path(os.environ.get("RLENV_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
    path = root / "gsm8k_test.jsonl"
    if not path.is_file():
        pytest.skip("real data not present")
    rows = loaders.load_gsm8k(path)
    assert len(rows) == 1319 and all(r["answer"].lstrip("-").replace(".", "").isdigit() for r in rows)
