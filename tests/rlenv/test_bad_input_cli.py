"""Bad input raises with a hint; Text spaces admit real LLM output; the CLI sample / score commands."""

import json

import gymnasium as gym
import pytest

import rlenv
from rlenv.envs._base import UnicodeText
from rlenv.train.cli import main


@pytest.mark.parametrize("env_id", sorted(rlenv.ENV_IDS))
def test_non_string_action_and_step_before_reset(env_id):
    env = gym.make(env_id)
    with pytest.raises(gym.error.ResetNeeded):
        env.step("text")
    raw = env.unwrapped
    with pytest.raises(gym.error.ResetNeeded):
        raw.step("text")
    env.reset(seed=0)
    for action in (None, 3, b"bytes", ["list"]):
        with pytest.raises(TypeError, match="completion text"):
            env.step(action)


def test_unknown_ids_and_bad_kwargs():
    with pytest.raises(gym.error.NameNotFound, match="Did you mean: `Countdown`"):
        gym.make("rlenv/Countdwn-v0")
    with pytest.raises(ValueError, match="split"):
        gym.make("rlenv/Math-v0", split="validation")
    with pytest.raises(ValueError, match="template"):
        gym.make("rlenv/Math-v0", template="alpaca")
    with pytest.raises(ValueError, match="difficulty"):
        gym.make("rlenv/Countdown-v0", difficulty=0)
    env = gym.make("rlenv/Countdown-v0")
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": -1})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"idx": 1})


def test_text_spaces_admit_real_llm_output():
    space = gym.make("rlenv/Math-v0").action_space
    assert isinstance(space, gym.spaces.Text)
    for text in (
        "",
        "\n\n",
        "日本語 και ελληνικά 😀",
        "\ud800 lone surrogate",
        "x" * 500_000,
        "<think>\t</think>",
    ):
        assert text in space
    assert 3 not in space and "x" * (space.max_length + 1) not in space
    assert all(space.sample() in space for _ in range(20))
    assert UnicodeText(10) == UnicodeText(10) != UnicodeText(11)


def test_cli_sample(capsys):
    assert main(["sample", "rlenv/Countdown-v0", "-n", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- rlenv/Countdown-v0 item") == 2 and "Using the numbers" in out
    assert main(["sample", "rlenv/Math-v0", "-n", "3", "--json", "--template", "chat"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and rows[0]["prompt"][0]["role"] == "system"
    with pytest.raises(gym.error.NameNotFound):
        main(["sample", "rlenv/Mat-v0"])


def test_cli_score(tmp_path, capsys):
    rows = rlenv.export_rows("rlenv/Countdown-v0", 4, seed=0)
    lines = [{**r, "completion": f"<think>.</think><answer>{r['solution']}</answer>"} for r in rows[:2]]
    lines.append({**rows[2], "completion": "no idea"})
    lines.append({"index": 3, "completion": f"<think>.</think><answer>{rows[3]['solution']}</answer>"})
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out_path = tmp_path / "scores.jsonl"
    assert main(["score", "rlenv/Countdown-v0", str(path), "--output", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "4 completions" in out and "solved (total >= 1): 75.0%" in out
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["accuracy", "format", "total"]
    scores = [json.loads(line)["total"] for line in out_path.read_text().splitlines()]
    assert scores == [1.0, 1.0, 0.0, 1.0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"completion": "x"}) + "\n")
    with pytest.raises(ValueError, match="index"):
        main(["score", "rlenv/Countdown-v0", str(bad)])
