"""Smoke test of every training command through the ``rlenv`` CLI (tyro), on tiny settings."""

import json
import os

import pytest

from rlenv.train.cli import main
from rlenv.train.metrics import read_metrics
from tests.train.conftest import TOY_ENV


@pytest.fixture(scope="module")
def grpo_run(tiny_hf_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli_grpo")
    argv = [
        "train",
        "--policy",
        f"hf:{tiny_hf_dir}",
        "--env-id",
        TOY_ENV,
        "--run-dir",
        str(run_dir),
        "--steps",
        "2",
        "--prompts-per-step",
        "2",
        "--num-generations",
        "2",
        "--max-new-tokens",
        "6",
        "--stop-strings",
        "--no-progress",
        "--dynamic-sampling",
        "--mask-truncated",
        "--overlong-buffer",
        "2",
    ]
    assert main(argv) == 0
    return run_dir


def test_train_command(grpo_run):
    records = read_metrics(str(grpo_run))
    assert [r["step"] for r in records] == [1, 2]
    assert "rollout/dropped_groups" in records[0]
    with open(os.path.join(grpo_run, "config.json")) as f:
        assert json.load(f)["dynamic_sampling"] is True


def test_plot_command(grpo_run, tmp_path):
    assert main(["plot", str(grpo_run), "--output", str(tmp_path)]) == 0
    assert {"reward.png", "loss.png", "perf.png"} <= set(os.listdir(tmp_path))


def test_eval_command(tiny_hf_dir, tmp_path):
    out = tmp_path / "eval.json"
    argv = [
        "eval",
        "--policy",
        f"hf:{tiny_hf_dir}",
        "--env-id",
        TOY_ENV,
        "--num-items",
        "2",
        "--num-samples",
        "2",
        "--ks",
        "1",
        "2",
        "--max-new-tokens",
        "6",
        "--stop-strings",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["pass_at_k"]) == {"1", "2"} and len(result["items"]) == 2


def test_sft_command(tiny_hf_dir, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"count a: {i} ", "completion": "aaa"}) + "\n" for i in range(6))
    )
    argv = [
        "sft",
        "--policy",
        f"hf:{tiny_hf_dir}",
        "--data",
        str(data),
        "--run-dir",
        str(tmp_path / "run"),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "step-00000002" / "model")


def test_pretrain_command_bundled(tmp_path):
    argv = [
        "pretrain",
        "--run-dir",
        str(tmp_path),
        "--steps",
        "2",
        "--corpus-size",
        "8",
        "--seq-len",
        "32",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert read_metrics(str(tmp_path))[-1]["loss/lm"] > 0


def test_distill_command(tiny_hf_dir, tmp_path):
    argv = [
        "distill",
        "--teacher",
        f"hf:{tiny_hf_dir}",
        "--policy",
        f"hf:{tiny_hf_dir}",
        "--env-id",
        TOY_ENV,
        "--run-dir",
        str(tmp_path),
        "--num-prompts",
        "4",
        "--samples-per-prompt",
        "4",
        "--max-new-tokens",
        "8",
        "--stop-strings",
        "--accept-threshold",
        "0.0",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    rows = (tmp_path / "distill.jsonl").read_text().splitlines()
    assert len(rows) == 4  # threshold 0 accepts everything; one kept per prompt


def test_bad_choice_is_rejected():
    with pytest.raises(SystemExit):
        main(["train", "--loss-type", "mean"])
