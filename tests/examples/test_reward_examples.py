"""Smoke tests of the reward examples: each runs as a script and prints what its docstring promises."""

import pathlib
import runpy
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _run(name: str) -> str:
    command = [sys.executable, str(EXAMPLES / name)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    return out.stdout


def test_property_test_your_reward():
    out = _run("property_test_your_reward.py")
    # draft 1 is caught crashing on model output, draft 2 and the combination pass
    assert "draft 1 under check_reward -> " in out and "unexpected" not in out
    assert "draft 2 passes" in out and "combined reward passes too: [1.5]" in out


def test_verl_reward_file_is_loadable_as_verl_does():
    # verl imports the file by path and looks the function up by name
    module = runpy.run_path(str(EXAMPLES / "verl_reward.py"))
    compute_score = module["compute_score"]
    truth = {"target": 24, "numbers": [3, 6, 7]}
    assert compute_score("countdown", "<answer>(7 - 3) * 6</answer>", truth) == 1.0
    assert compute_score("countdown", "<answer>7**6**3</answer>", truth) == 0.1  # TinyZero scoring
    out = _run("verl_reward.py")
    assert "power tower  score=0.1  reason=invalid_syntax" in out


def test_openrlhf_reward_file():
    module = runpy.run_path(str(EXAMPLES / "openrlhf_reward.py"))
    out = module["reward_func"](["P<answer>3 * 8</answer>"], ["P"], ['{"target": 24, "numbers": [3, 8]}'])
    assert [float(v) for v in out["rewards"]] == [1.0]
    assert "rewards: [1.0, 0.1, 0.0]" in _run("openrlhf_reward.py")
