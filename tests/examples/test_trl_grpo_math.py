"""Smoke test of examples/trl_grpo_math.py: Math-v0 rows + our rewards inside TRL's GRPOTrainer, tiny, CPU."""

import importlib.util
import pathlib
import sys

import pytest

pytest.importorskip("trl")
pytest.importorskip("tokenizers")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "trl_grpo_math.py"


def _load():
    spec = importlib.util.spec_from_file_location("trl_grpo_math", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_our_rewards_accept_trls_call_on_exported_rows():
    import rewards
    import rlenv

    ds = rlenv.to_hf_dataset("rlenv/Math-v0", 4, seed=0, difficulty=1)
    completions = [f"<think>.</think><answer>{a}</answer>" for a in ds["answer"]]
    # exactly the keyword arguments GRPOTrainer passes: prompts, completions, completion_ids, the extra
    # dataset columns, and trainer_state / log_metric
    kwargs = {k: list(ds[k]) for k in ds.column_names if k != "prompt"}
    extra = {"completion_ids": [[1, 2]] * 4, "trainer_state": None, "log_metric": None}
    assert (
        rewards.math_accuracy(prompts=list(ds["prompt"]), completions=completions, **kwargs, **extra)
        == [1.0] * 4
    )
    assert (
        rewards.think_format(prompts=list(ds["prompt"]), completions=completions, **kwargs, **extra)
        == [1.0] * 4
    )


def test_example_trains_a_grpo_step(tmp_path):
    example = _load()
    config = example.ExampleConfig(
        items=2, steps=1, num_generations=2, max_completion_length=8, output_dir=str(tmp_path)
    )
    metrics = example.run(config)
    assert "rewards/math_accuracy/mean" in metrics and "rewards/think_format/mean" in metrics
    assert 0.0 <= metrics["reward"] <= 1.0
